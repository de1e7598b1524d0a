//! The uplift routes. Each records the route, the time and the levels before and after in the
//! audit trail, and counts the route in metrics (`citizen_id_uplifts_total{route}`).

use domain::ProofingLevel;
use serde_json::json;

use super::matching::{self, Demographics, MatchOutcome};
use crate::accounts::messages::{Template, compose};
use crate::accounts::signin::audit;
use crate::clock::{self, DAY};
use crate::integrations::gp::{GpCredentials, GpError};
use crate::integrations::pds::PdsError;
use crate::oidc::claims::proofing_level;
use crate::state::AppState;
use crate::store::accounts::{AccountRecord, ProofedIdentity, Subject};
use crate::store::{StoreError, StoreResult};

#[derive(Debug, PartialEq, Eq)]
pub enum DemographicsOutcome {
    /// Matched: the account is now at `level` (P5, or P9 through IDVM).
    Matched { level: ProofingLevel },
    NoMatch,
    Several,
    /// The NHS number already has another account: the hard stop of F7.
    Duplicate,
    /// PDS did not answer; nothing was stored and the citizen may try again.
    PdsUnavailable,
}

async fn record_uplift(state: &AppState, account_id: &str, ip: &str, route: &str, from: ProofingLevel, to: ProofingLevel) {
    metrics::counter!("citizen_id_uplifts_total", "route" => route.to_string()).increment(1);
    audit(state, "identity.uplifted", Some(account_id), ip, json!({ "route": route, "from": from.as_str(), "to": to.as_str() })).await;
}

/// Demographics first: a unique PDS match makes the account P5; IDVM (the verified mobile is
/// the one on PDS) makes it P9 at once.
pub async fn prove_with_demographics(state: &AppState, account: &AccountRecord, typed: &Demographics, ip: &str) -> StoreResult<DemographicsOutcome> {
    let found = match matching::find(state.pds.as_ref(), typed).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "PDS lookup failed");
            return Ok(DemographicsOutcome::PdsUnavailable);
        }
    };
    let patient = match found {
        MatchOutcome::Unique(p) => p,
        MatchOutcome::NoMatch => return Ok(DemographicsOutcome::NoMatch),
        MatchOutcome::Several => return Ok(DemographicsOutcome::Several),
    };
    let nhs = patient.nhs_number.as_str().to_string();
    if let Some(existing) = state.db.account_by_nhs_number(&nhs).await?
        && existing.id != account.id
    {
        duplicate_hint(state, &existing, ip).await?;
        return Ok(DemographicsOutcome::Duplicate);
    }
    let before = proofing_level(account);
    let idvm = account.mobile.is_some() && account.mobile == patient.mobile;
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
                duplicate_hint(state, &existing, ip).await?;
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

/// Tells the holder of an existing account that someone tried to prove their identity again.
async fn duplicate_hint(state: &AppState, existing: &AccountRecord, ip: &str) -> StoreResult<()> {
    let hint = compose(&state.kek, Template::DuplicateAccountHint, &existing.email, json!({}));
    state.db.enqueue(&hint, clock::now_ms()).await?;
    audit(state, "identity.duplicate_stopped", Some(&existing.id), ip, json!({})).await;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum AmnvStart {
    /// A code went to the PDS mobile ending in these digits.
    Sent { last_digits: String },
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
        crate::accounts::codes::SendOutcome::Sent => Ok(AmnvStart::Sent { last_digits: mobile[mobile.len().saturating_sub(4)..].to_string() }),
        crate::accounts::codes::SendOutcome::TooMany => Ok(AmnvStart::TooMany),
    }
}

/// AMNV's code was right: `phone_number_pds_matched` becomes true, for good.
pub async fn finish_amnv(state: &AppState, account: &AccountRecord, ip: &str) -> StoreResult<()> {
    state.db.set_phone_pds_matched(&account.id, clock::now_ms()).await?;
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
    if state.db.peek_hits(&bucket, window).await? >= POL_ATTEMPTS_PER_DAY {
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
            Ok(PolOutcome::Proven)
        }
        Err(GpError::Unavailable(e)) => {
            tracing::warn!(error = %e, "GP linkage check failed");
            Ok(PolOutcome::GpUnavailable)
        }
        Err(_) => {
            let used = state.db.hit(&bucket, window).await?;
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
