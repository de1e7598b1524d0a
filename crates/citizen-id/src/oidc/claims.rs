//! The claims each scope releases about a citizen (Federation spec 3.4.1.1 Table 2, 3.6.2.1
//! Table 11, 4.2 Table 16; scopes-and-claims.md), and which of them the ID token carries.
//!
//! Pure functions over a `Subject` (the account as partners see it): no I/O. A claim with no value is left out, never sent
//! as `null` or `""` (spec 3.6.2.1: "it SHALL NOT be present with a null or empty string value").
//!
//! Verified demographics (`nhs_number`, `family_name`, `birthdate`, `given_name`) come from
//! identity proofing, so they are released only for an account proofed to P5 or above
//! (scopes-and-claims.md: `profile`, `basic_demographics` and `profile_extended` are "No" at P0;
//! Table 11: `given_name` "only ... where the user's identity has been verified").
//! Scopes whose data the store does not hold yet (`landline`, `gp_*`, `delegation`) release
//! nothing rather than something made up.

use domain::{Credential, ProofingLevel, Scope, ScopeSet, Vector};
use serde_json::{Map, Value};

use crate::proofing::uplift::StoredGpCredentials;
use crate::store::accounts::{AccountRecord, Subject};

/// The user claims Table 16 allows in the ID token (when their scope was granted); every other
/// claim is served only at the UserInfo endpoint.
pub const ID_TOKEN_USER_CLAIMS: [&str; 4] = ["nhs_number", "family_name", "birthdate", "identity_proofing_level"];

/// The account's proofing level; an unreadable stored value counts as the lowest (P0), so a
/// corrupt row can never release more.
pub fn proofing_level(account: &AccountRecord) -> ProofingLevel {
    level_of(&account.proofing_level)
}

/// A stored proofing level, read the same careful way.
pub fn level_of(stored: &str) -> ProofingLevel {
    ProofingLevel::parse(stored).unwrap_or_default()
}

/// Whether the account's mobile number matched a contact number on PDS (Table 11
/// `phone_number_pds_matched`, spec v1.12).
///
/// Set by IDVM or AMNV and never cleared ("once set to true this claim will not be further
/// updated").
pub fn phone_number_pds_matched(account: &Subject) -> bool {
    account.phone_pds_matched
}

/// Every claim `scopes` release about `account` (the UserInfo response body, minus `sub`, `iss`
/// and `aud`). `client_user_metadata` is the partner's stored value for this citizen, if any.
/// `gp_credentials` are the account's opened GP online credentials, if it has any (only
/// partners with IM1 access can be granted their scope; authorize enforces that).
pub fn user_claims(
    account: &Subject,
    scopes: &ScopeSet,
    client_user_metadata: Option<&str>,
    gp_credentials: Option<&StoredGpCredentials>,
) -> Map<String, Value> {
    let mut claims = Map::new();
    let level = level_of(&account.proofing_level);
    let verified = level >= ProofingLevel::P5;
    for scope in scopes.iter() {
        match scope {
            // Table 2: profile = nhs_number, birthdate, family_name, identity_proofing_level.
            // Table 16: nhs_number "if ... known".
            Scope::Profile => {
                put_text(&mut claims, "nhs_number", released_nhs_number(account, scopes));
                put_demographics(&mut claims, account, verified, level);
            }
            // Table 2 (v1.14): basic_demographics is profile without the NHS number.
            Scope::BasicDemographics => put_demographics(&mut claims, account, verified, level),
            // Table 2 / Table 11: given_name, for verified identities only.
            Scope::ProfileExtended => {
                if verified {
                    put_text(&mut claims, "given_name", account.given_name.as_deref());
                }
            }
            // Table 11: email and email_verified. Registration verifies the address with a
            // one-time code before the account exists, so it is always verified.
            Scope::Email => {
                if put_text(&mut claims, "email", Some(&account.email)) {
                    claims.insert("email_verified".into(), Value::Bool(true));
                }
            }
            // Table 11: phone_number (E.164, as stored), verified at registration like the email.
            Scope::Phone => {
                if put_text(&mut claims, "phone_number", account.mobile.as_deref()) {
                    claims.insert("phone_number_verified".into(), Value::Bool(true));
                    claims.insert("phone_number_pds_matched".into(), Value::Bool(phone_number_pds_matched(account)));
                }
            }
            // Table 11: client_user_metadata, "if no value is held for the RP then this claim is
            // not returned".
            Scope::ClientMetadata => {
                put_text(&mut claims, "client_user_metadata", client_user_metadata);
            }
            // scopes-and-claims.md: gp_registration_details {gp_ods_code} from P5, as PDS holds it.
            Scope::GpRegistrationDetails => {
                if let Some(ods) = account.gp_ods_code.as_deref().filter(|_| verified) {
                    claims.insert("gp_registration_details".into(), serde_json::json!({ "gp_ods_code": ods }));
                }
            }
            // Table 11: gp_integration_credentials, only at P9 (note 6: IM1 partners only).
            Scope::GpIntegrationCredentials => {
                if let Some(creds) = gp_credentials.filter(|_| level == ProofingLevel::P9) {
                    claims.insert("gp_integration_credentials".into(), serde_json::to_value(creds).unwrap_or(Value::Null));
                }
            }
            // Table: landline_number and landline_number_verified at every level, when held.
            // A landline cannot take a text message, so it is not verified (yet): say so.
            Scope::Landline => {
                if put_text(&mut claims, "landline_number", account.landline.as_deref()) {
                    claims.insert("landline_number_verified".into(), Value::Bool(false));
                }
            }
            Scope::Openid | Scope::Delegation => {}
        }
    }
    claims
}

/// The GP online credentials a grant signed in with `vot` may release: none unless the sign-in
/// met a two-factor vector.
///
/// scopes-and-claims.md note 6: `gp_integration_credentials` "is protected by a high level of
/// authentication"; vectors-of-trust.md calls `Cp.Cd`, `Cp.Ck` and `Cm` two-factor ("2FA")
/// and `Cp` alone "authenticated using password". The table there makes the claim "No" below
/// P9, and a "No" in that table is a claim left out, not a refused request; so a `P9.Cp` grant
/// is answered the same way: the scope is accepted and the claim withheld (a partner that
/// wants it asks for `P9.Cp.Cd` or `P9.Cm`).
pub fn gp_credentials_after(vot: &str, credentials: Option<StoredGpCredentials>) -> Option<StoredGpCredentials> {
    credentials.filter(|_| is_two_factor(vot))
}

/// Whether the vector a sign-in met (`vot`) used two factors: a password with a device
/// (`Cp.Cd`, `Cp.Ck`), or a device-bound key on its own (`Cm`, a passkey: possession and a
/// biometric or PIN). An unreadable `vot` counts as one factor, so it never releases more.
pub fn is_two_factor(vot: &str) -> bool {
    let Ok(vector) = Vector::parse(vot) else { return false };
    let c = vector.credentials();
    c.contains(Credential::Cm) || (c.contains(Credential::Cp) && (c.contains(Credential::Cd) || c.contains(Credential::Ck)))
}

/// The NHS number the `profile` scope releases (Table 2, Table 16 "if ... known"; the access
/// token's Table 17 claim): only for an identity verified to P5 or above, never empty.
pub fn released_nhs_number<'a>(account: &'a Subject, scopes: &ScopeSet) -> Option<&'a str> {
    let verified = level_of(&account.proofing_level) >= ProofingLevel::P5;
    account.nhs_number.as_deref().map(str::trim).filter(|n| verified && !n.is_empty() && scopes.contains(Scope::Profile))
}

/// The user claims that go into the ID token: Table 16 lists `family_name`, `birthdate`,
/// `nhs_number` and `identity_proofing_level`, each only when its scope was granted. The
/// token endpoint adds `identity_proofing_level` itself for every ID token ("shall be included").
pub fn id_token_claims(account: &Subject, scopes: &ScopeSet) -> Map<String, Value> {
    user_claims(account, scopes, None, None).into_iter().filter(|(name, _)| ID_TOKEN_USER_CLAIMS.contains(&name.as_str())).collect()
}

fn put_demographics(claims: &mut Map<String, Value>, account: &Subject, verified: bool, level: ProofingLevel) {
    if verified {
        put_text(claims, "birthdate", account.birthdate.as_deref());
        put_text(claims, "family_name", account.family_name.as_deref());
    }
    claims.insert("identity_proofing_level".into(), Value::String(level.as_str().into()));
}

/// Inserts a non-empty text claim; returns whether it was inserted.
fn put_text(claims: &mut Map<String, Value>, name: &str, value: Option<&str>) -> bool {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => {
            claims.insert(name.into(), Value::String(v.into()));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(level: &str) -> Subject {
        Subject {
            id: "sub-1".into(),
            email: "jane@example.com".into(),
            mobile: Some("+447700900123".into()),
            proofing_level: level.into(),
            nhs_number: Some("9000000009".into()),
            family_name: Some("Doe".into()),
            given_name: Some("Jane".into()),
            birthdate: Some("2001-12-30".into()),
            ..Subject::default()
        }
    }

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    fn names(m: &Map<String, Value>) -> Vec<&str> {
        let mut v: Vec<&str> = m.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn profile_releases_the_default_profile() {
        let c = user_claims(&account("P9"), &scopes("openid profile"), None, None);
        assert_eq!(names(&c), ["birthdate", "family_name", "identity_proofing_level", "nhs_number"]);
        assert_eq!(c["nhs_number"], "9000000009");
        assert_eq!(c["identity_proofing_level"], "P9");
    }

    #[test]
    fn basic_demographics_never_releases_the_nhs_number() {
        let c = user_claims(&account("P9"), &scopes("openid basic_demographics"), None, None);
        assert_eq!(names(&c), ["birthdate", "family_name", "identity_proofing_level"]);
    }

    #[test]
    fn nhs_number_is_omitted_when_not_known() {
        let mut a = account("P5");
        a.nhs_number = None;
        a.family_name = Some(String::new());
        let c = user_claims(&a, &scopes("openid profile"), None, None);
        assert_eq!(names(&c), ["birthdate", "identity_proofing_level"]);
    }

    #[test]
    fn unverified_accounts_release_no_demographics() {
        let c = user_claims(&account("P0"), &scopes("openid profile profile_extended"), None, None);
        assert_eq!(names(&c), ["identity_proofing_level"]);
        assert_eq!(c["identity_proofing_level"], "P0");
        let mut corrupt = account("P7");
        corrupt.proofing_level = "nonsense".into();
        assert_eq!(names(&user_claims(&corrupt, &scopes("openid profile"), None, None)), ["identity_proofing_level"]);
    }

    #[test]
    fn email_phone_and_extended_claims() {
        let c = user_claims(&account("P9"), &scopes("openid email phone profile_extended"), None, None);
        assert_eq!(
            names(&c),
            ["email", "email_verified", "given_name", "phone_number", "phone_number_pds_matched", "phone_number_verified"]
        );
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["phone_number"], "+447700900123");
        assert_eq!(c["phone_number_verified"], true);
        assert_eq!(c["phone_number_pds_matched"], false);
        let mut no_mobile = account("P0");
        no_mobile.mobile = None;
        assert!(user_claims(&no_mobile, &scopes("openid phone"), None, None).is_empty());
    }

    #[test]
    fn client_metadata_only_when_held_and_scoped() {
        let a = account("P0");
        assert_eq!(user_claims(&a, &scopes("openid client_metadata"), Some("abc"), None)["client_user_metadata"], "abc");
        assert!(user_claims(&a, &scopes("openid client_metadata"), None, None).is_empty());
        assert!(user_claims(&a, &scopes("openid client_metadata"), Some(""), None).is_empty());
        assert!(user_claims(&a, &scopes("openid email"), Some("abc"), None).get("client_user_metadata").is_none());
    }

    #[test]
    fn openid_alone_and_unheld_scopes_release_nothing() {
        let c = user_claims(&account("P9"), &scopes("openid landline gp_registration_details gp_integration_credentials"), None, None);
        assert!(c.is_empty());
    }

    #[test]
    fn id_token_carries_only_table_16_claims() {
        let all = scopes("openid profile profile_extended email phone client_metadata");
        let c = id_token_claims(&account("P9"), &all);
        assert_eq!(names(&c), ["birthdate", "family_name", "identity_proofing_level", "nhs_number"]);
        assert!(id_token_claims(&account("P9"), &scopes("openid email")).is_empty());
    }

    #[test]
    fn gp_credentials_only_after_two_factors() {
        let creds = || Some(StoredGpCredentials { gp_user_id: "1".into(), gp_linkage_key: "K".into(), gp_ods_code: "A12345".into() });
        for vot in ["P9.Cp.Cd", "P9.Cm", "P9.Cp.Ck", "P9.Cd.Cp"] {
            assert!(gp_credentials_after(vot, creds()).is_some(), "{vot}");
        }
        for vot in ["P9.Cp", "P9", "P9.Cd", "P9.Ck", "", "nonsense", "P9.Cx"] {
            assert!(gp_credentials_after(vot, creds()).is_none(), "{vot}");
        }
        assert!(gp_credentials_after("P9.Cp.Cd", None).is_none());
    }

    /// The reference's table of scopes and claims (scopes-and-claims.md), row by row:
    /// the claims each scope releases at P0, P5 and P9. `identity_proofing_level` goes with
    /// the demographic scopes at every level (the ID token always carries it, Table 16).
    #[test]
    fn claims_by_scope_and_level_follow_the_reference_table() {
        let full = |level: &str| Subject {
            landline: Some("+441134960000".into()),
            gp_ods_code: Some("A12345".into()),
            phone_pds_matched: true,
            ..account(level)
        };
        let creds = StoredGpCredentials { gp_user_id: "1".into(), gp_linkage_key: "K".into(), gp_ods_code: "A12345".into() };
        #[rustfmt::skip]
        let table: &[(&str, [&[&str]; 3])] = &[
            ("profile", [&["identity_proofing_level"], &["birthdate", "family_name", "identity_proofing_level", "nhs_number"], &["birthdate", "family_name", "identity_proofing_level", "nhs_number"]]),
            ("basic_demographics", [&["identity_proofing_level"], &["birthdate", "family_name", "identity_proofing_level"], &["birthdate", "family_name", "identity_proofing_level"]]),
            ("profile_extended", [&[], &["given_name"], &["given_name"]]),
            ("email", [&["email", "email_verified"], &["email", "email_verified"], &["email", "email_verified"]]),
            ("phone", [&["phone_number", "phone_number_pds_matched", "phone_number_verified"]; 3]),
            ("landline", [&["landline_number", "landline_number_verified"]; 3]),
            ("gp_registration_details", [&[], &["gp_registration_details"], &["gp_registration_details"]]),
            ("gp_integration_credentials", [&[], &[], &["gp_integration_credentials"]]),
            ("client_metadata", [&["client_user_metadata"]; 3]),
        ];
        for (scope, by_level) in table {
            for (level, want) in ["P0", "P5", "P9"].iter().zip(by_level) {
                let got = user_claims(&full(level), &scopes(&format!("openid {scope}")), Some("meta"), Some(&creds));
                assert_eq!(names(&got), *want, "{scope} at {level}");
            }
        }
    }
}
