//! The uplift routes. Each records the route, the time and the levels before and after in the
//! audit trail, and counts the route in metrics (`citizen_id_uplifts_total{route}`).

use domain::ProofingLevel;
use serde_json::json;

use super::matching::{self, Demographics, MatchOutcome};
use crate::accounts::limits::{self, Quota};
use crate::accounts::messages::{Template, compose};
use crate::accounts::signin::audit;
use crate::clock::{self, DAY};
use crate::integrations::gp::{GpCredentials, GpError};
use crate::integrations::pds::{PdsError, PdsPatient};
use crate::oidc::claims::proofing_level;
use crate::state::AppState;
use crate::store::accounts::{AccountRecord, ProofedIdentity, Subject};
use crate::store::{StoreError, StoreResult};

#[derive(Debug, PartialEq, Eq)]
pub enum DemographicsOutcome {
    /// Matched: the account is now at `level` (P5, or P9 through IDVM).
    Matched { level: ProofingLevel },
    /// No single living person matched, whichever detail was wrong and however many people
    /// shared the details: one answer, so a guess learns nothing beyond "not yet".
    /// `remaining` more attempts are allowed today.
    NoMatch { remaining: i64 },
    /// The NHS number already has another account: the hard stop of F7.
    Duplicate,
    /// Too many attempts today (for this account or from this IP); PDS was not asked. One more
    /// is allowed in `retry_in` ms.
    TooManyAttempts { retry_in: i64 },
    /// PDS did not answer; nothing was stored and the citizen may try again.
    PdsUnavailable,
}

async fn record_uplift(state: &AppState, account_id: &str, ip: &str, route: &str, from: ProofingLevel, to: ProofingLevel) {
    metrics::counter!("citizen_id_uplifts_total", "route" => route.to_string()).increment(1);
    audit(state, "identity.uplifted", Some(account_id), ip, json!({ "route": route, "from": from.as_str(), "to": to.as_str() })).await;
}

/// Counts one matching attempt against the account's and the IP's daily allowance, before PDS
/// is asked. Demographics are guessable (a date of birth is one of ~36,500), and a match binds
/// an NHS record to the account, so attempts are few per day (ASVS 5.0 V2.4.1: anti-automation
/// against excessive calls to a function; as NIST SP 800-63B-4 rate-limits guessable secrets).
/// Attempts refused by a form check never reach here and do not count.
async fn count_attempt(state: &AppState, account: &AccountRecord, ip: &str) -> StoreResult<Quota> {
    let limits = &state.settings.limits;
    let buckets =
        [(format!("prove:acct:{}", account.id), limits.proving_per_account_per_day), (format!("prove:ip:{ip}"), limits.proving_per_ip_per_day)];
    limits::per_day(state, &buckets).await
}

/// IDVM is offered by the toolkit (user-journeys.md, P9) "only to medium level verified (P5)
/// users who are registered for Patient Online (POL) at their GP and their phone number
/// matches the one against their GP record": the verified mobile must be the PDS mobile, and
/// the GP practice on PDS must hold a GP online (NL01) linkage for this NHS number. A GP
/// system that cannot answer means no IDVM now; the citizen is offered the other routes.
async fn idvm_allowed(state: &AppState, account: &AccountRecord, patient: &PdsPatient) -> bool {
    if account.mobile.is_none() || account.mobile != patient.mobile || patient.restricted {
        return false;
    }
    let Some(ods) = patient.gp_ods_code.as_deref() else { return false };
    match state.gp.get_linkage_key(ods, patient.nhs_number.as_str()).await {
        Ok(_) => true,
        Err(GpError::NotFound | GpError::PracticeUnknown) => false,
        Err(e) => {
            tracing::warn!(error = %e, "GP linkage retrieve failed; IDVM not offered");
            false
        }
    }
}

/// Demographics first: a unique PDS match makes the account P5; IDVM (the verified mobile is
/// the one on PDS, and the citizen is registered for GP online services) makes it P9 at once.
pub async fn prove_with_demographics(state: &AppState, account: &AccountRecord, typed: &Demographics, ip: &str) -> StoreResult<DemographicsOutcome> {
    let remaining = match count_attempt(state, account, ip).await? {
        Quota::Allowed { remaining } => remaining,
        Quota::Exceeded { retry_in } => {
            audit(state, "identity.match_limited", Some(&account.id), ip, json!({})).await;
            return Ok(DemographicsOutcome::TooManyAttempts { retry_in });
        }
    };
    let found = match matching::find(state.pds.as_ref(), typed).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "PDS lookup failed");
            return Ok(DemographicsOutcome::PdsUnavailable);
        }
    };
    let patient = match found {
        MatchOutcome::Unique(p) => p,
        outcome @ (MatchOutcome::NoMatch | MatchOutcome::Several) => {
            let why = if matches!(outcome, MatchOutcome::Several) { "several" } else { "none" };
            audit(state, "identity.not_matched", Some(&account.id), ip, json!({ "candidates": why })).await;
            return Ok(DemographicsOutcome::NoMatch { remaining });
        }
    };
    let nhs = patient.nhs_number.as_str().to_string();
    if let Some(existing) = state.db.account_by_nhs_number(&nhs).await?
        && existing.id != account.id
    {
        duplicate_stopped(state, &existing, account, ip).await?;
        return Ok(DemographicsOutcome::Duplicate);
    }
    let before = proofing_level(account);
    let idvm = idvm_allowed(state, account, &patient).await;
    let level = if idvm { ProofingLevel::P9 } else { ProofingLevel::P5 }.max(before);
    let mut given = patient.given_names.iter();
    let identity = ProofedIdentity {
        nhs_number: nhs.clone(),
        given_name: given.next().cloned().unwrap_or_default(),
        middle_names: Some(given.cloned().collect::<Vec<_>>().join(" ")).filter(|m| !m.is_empty()),
        family_name: patient.family_name.clone(),
        birthdate: patient.birth_date.clone(),
        postcode: patient.postcode.clone(),
        gp_ods_code: patient.gp_ods_code.clone(),
        pds_version: Some(patient.version.clone()),
    };
    let now = clock::now_ms();
    match state.db.record_proofed_identity(&account.id, &identity, level.as_str(), now).await {
        Ok(()) => {}
        // Another uplift took this NHS number between our check and our write.
        Err(StoreError::Conflict) => {
            if let Some(existing) = state.db.account_by_nhs_number(&nhs).await? {
                duplicate_stopped(state, &existing, account, ip).await?;
            }
            return Ok(DemographicsOutcome::Duplicate);
        }
        Err(e) => return Err(e),
    }
    record_uplift(state, &account.id, ip, "demographics", before, ProofingLevel::P5.max(before)).await;
    if idvm {
        state.db.set_phone_pds_matched(&account.id, now).await?;
        record_uplift(state, &account.id, ip, "idvm", ProofingLevel::P5.max(before), level).await;
    }
    Ok(DemographicsOutcome::Matched { level })
}

/// The hard stop of F7, told to both sides: the holder of the existing account gets the
/// reminder of how to sign in (at that account's address only, never the prover's), and the
/// account that tried is told its attempt was stopped, so a citizen whose details were used
/// elsewhere hears of it, and so does one who mistyped into someone else's record.
async fn duplicate_stopped(state: &AppState, existing: &AccountRecord, prover: &AccountRecord, ip: &str) -> StoreResult<()> {
    if existing.id == prover.id {
        return Ok(());
    }
    let hint = compose(&state.kek, Template::DuplicateAccountHint, &existing.email, json!({}));
    state.db.enqueue(&hint, clock::now_ms()).await?;
    let stopped = compose(&state.kek, Template::ProvingStopped, &prover.email, json!({}));
    state.db.enqueue(&stopped, clock::now_ms()).await?;
    audit(state, "identity.duplicate_stopped", Some(&existing.id), ip, json!({})).await;
    audit(state, "identity.proving_stopped", Some(&prover.id), ip, json!({})).await;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum AmnvStart {
    /// A code went to `mobile`, the PDS mobile (the page shows only its last digits).
    Sent { mobile: String, last_digits: String },
    /// PDS holds no mobile for this person (or the record is restricted).
    NoMobileOnPds,
    TooMany,
    PdsUnavailable,
}

/// AMNV: at P5, a code to the mobile on the PDS record.
pub async fn start_amnv(state: &AppState, account: &AccountRecord, ip: &str) -> StoreResult<AmnvStart> {
    let Some(nhs) = account.nhs_number.as_deref().and_then(|n| domain::NhsNumber::parse(n).ok()) else {
        return Ok(AmnvStart::NoMobileOnPds);
    };
    let patient = match state.pds.get_patient(&nhs).await {
        Ok(p) => p,
        Err(PdsError::NotFound | PdsError::InvalidResourceId) => return Ok(AmnvStart::NoMobileOnPds),
        Err(_) => return Ok(AmnvStart::PdsUnavailable),
    };
    let Some(mobile) = patient.mobile.filter(|_| !patient.restricted) else { return Ok(AmnvStart::NoMobileOnPds) };
    match crate::accounts::codes::send(state, crate::accounts::codes::Purpose::Amnv, &account.id, crate::accounts::codes::Recipient::To(&mobile), ip).await? {
        crate::accounts::codes::SendOutcome::Sent => {
            let last_digits = mobile[mobile.len().saturating_sub(4)..].to_string();
            Ok(AmnvStart::Sent { mobile, last_digits })
        }
        crate::accounts::codes::SendOutcome::TooMany => Ok(AmnvStart::TooMany),
    }
}

/// AMNV's code was right, so the citizen holds `mobile`, the number on their PDS record the
/// code went to. `phone_number_pds_matched` asserts that "the End-User's phone number has been
/// matched with a current entry on their NHS demographics record" (Federation spec Table 11),
/// and `phone_number` is the account's mobile, so the account's mobile becomes that number
/// (the old one is told, as for a change in Settings) and the flag is set with it: the two
/// claims never describe different numbers. The flag then stays set, as Table 11 says.
pub async fn finish_amnv(state: &AppState, account: &AccountRecord, mobile: &str, ip: &str) -> StoreResult<()> {
    let now = clock::now_ms();
    if account.mobile.as_deref() == Some(mobile) {
        state.db.set_phone_pds_matched(&account.id, now).await?;
    } else {
        let changed = account.mobile.as_deref().map(|old| compose(&state.kek, Template::MobileChanged, old, json!({})));
        state.db.set_mobile(&account.id, mobile, true, now, changed.as_ref()).await?;
        audit(state, "account.mobile_changed", Some(&account.id), ip, json!({ "route": "amnv" })).await;
    }
    metrics::counter!("citizen_id_uplifts_total", "route" => "amnv").increment(1);
    audit(state, "identity.phone_pds_matched", Some(&account.id), ip, json!({ "route": "amnv" })).await;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum PolOutcome {
    Proven,
    Wrong { remaining: i64 },
    Locked,
    GpUnavailable,
}

/// Wrong GP credentials allowed per account per day.
pub const POL_ATTEMPTS_PER_DAY: i64 = 5;

/// POL: GP online credentials checked with the GP system give P9; they are stored sealed for
/// the `gp_integration_credentials` claim.
pub async fn prove_with_gp_credentials(state: &AppState, account: &AccountRecord, creds: &GpCredentials, ip: &str) -> StoreResult<PolOutcome> {
    let now = clock::now_ms();
    let bucket = format!("pol:{}", account.id);
    let window = now - now % DAY;
    let Some(nhs) = account.nhs_number.clone() else { return Ok(PolOutcome::Wrong { remaining: 0 }) };
    // The try is taken before the GP system is asked, in one statement returning its own
    // count, so parallel guesses cannot all pass a check made before any of them counted.
    // It is given back unless the credentials were wrong (the GP system down, a success).
    let used = state.db.hit(&bucket, window).await?;
    if used > POL_ATTEMPTS_PER_DAY {
        state.db.unhit(&bucket, window).await?;
        return Ok(PolOutcome::Locked);
    }
    match state.gp.verify(creds, &nhs).await {
        Ok(()) => {
            let stored = StoredGpCredentials {
                gp_ods_code: creds.ods_code().to_string(),
                gp_user_id: creds.account_id().to_string(),
                gp_linkage_key: creds.linkage_key().to_string(),
            };
            let sealed = state.kek.seal(&format!("gp_credentials:{}", account.id), &serde_json::to_vec(&stored).expect("serialisable"));
            state.db.set_gp_credentials(&account.id, &sealed, now).await?;
            record_uplift(state, &account.id, ip, "pol", proofing_level(account), ProofingLevel::P9).await;
            // Only wrong credentials count against the day's tries.
            state.db.unhit(&bucket, window).await?;
            Ok(PolOutcome::Proven)
        }
        Err(GpError::Unavailable(e)) => {
            tracing::warn!(error = %e, "GP linkage check failed");
            state.db.unhit(&bucket, window).await?;
            Ok(PolOutcome::GpUnavailable)
        }
        Err(_) => {
            audit(state, "identity.pol_rejected", Some(&account.id), ip, json!({ "attempts": used })).await;
            Ok(if used >= POL_ATTEMPTS_PER_DAY { PolOutcome::Locked } else { PolOutcome::Wrong { remaining: POL_ATTEMPTS_PER_DAY - used } })
        }
    }
}

/// GP online credentials as sealed at rest, named as the `gp_integration_credentials` claim
/// names them (Federation spec Table 11).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StoredGpCredentials {
    pub gp_user_id: String,
    pub gp_linkage_key: String,
    pub gp_ods_code: String,
}

/// The sealed GP credentials of an account, opened (for the claim).
pub fn gp_credentials(state: &AppState, account: &Subject) -> Option<StoredGpCredentials> {
    let sealed = account.gp_credentials_sealed.as_deref()?;
    let bytes = state.kek.open(&format!("gp_credentials:{}", account.id), sealed).ok()?;
    serde_json::from_slice(&bytes).ok()
}
