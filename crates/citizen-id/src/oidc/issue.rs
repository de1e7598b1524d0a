//! The end of the authorization request: once the citizen is signed in, decide what is still
//! needed (sign-in, a stronger credential, proof of identity, consent) and, when nothing is,
//! issue the authorization code (Federation spec 3.4.5.1).

use domain::{ProofingLevel, ScopeSet};

use super::authorize::{AuthorizeRequest, Prompt};
use super::error::{AuthorizeError, ErrorCode};
use crate::clock;
use crate::crypto::{secret_key, time_ordered_token};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::grants::{GrantRecord, NewAuthorizationCode};
use crate::web::session::Authenticated;

/// What the citizen must do next for this request.
#[derive(Debug)]
pub enum NextStep {
    SignIn,
    /// The account's proofing level is below every vector asked for (step-up, F6).
    ProveIdentity { needed: ProofingLevel },
    Consent,
    /// Back to the partner: with a code, or with an error.
    Redirect(String),
}

/// Decides the next step; issues the code when everything is in place.
pub async fn next_step(state: &AppState, request: &AuthorizeRequest, auth: Option<&Authenticated>) -> Result<NextStep, StoreError> {
    let none = request.prompt == Prompt::None;
    let fail = |code: ErrorCode, d: &str| Ok(NextStep::Redirect(request.error(code, d).redirect_location().unwrap_or_default()));
    let Some(auth) = auth else {
        return if none { fail(ErrorCode::SsoLoginRequired, "The user is not signed in") } else { Ok(NextStep::SignIn) };
    };
    let Some(account) = state.db.account(&auth.account_id).await? else {
        return if none { fail(ErrorCode::SsoLoginRequired, "The user is not signed in") } else { Ok(NextStep::SignIn) };
    };
    let level = ProofingLevel::parse(&account.proofing_level).unwrap_or(ProofingLevel::P0);
    let creds = auth.credential_set();
    let vtr = request.vectors();
    let Some(vector) = vtr.best_match(level, creds).cloned() else {
        // Signed in strongly enough for some vector, but not proven to its level: step up.
        let credentials_met = vtr.vectors().iter().any(|v| creds.is_superset(v.credentials()));
        if !credentials_met {
            return if none { fail(ErrorCode::SsoLoginRequired, "A stronger sign-in is needed") } else { Ok(NextStep::SignIn) };
        }
        return if none {
            fail(ErrorCode::InteractionRequired, "The user must prove their identity to a higher level")
        } else {
            Ok(NextStep::ProveIdentity { needed: vtr.lowest_level() })
        };
    };
    let wanted = request.scopes();
    let consented = state.db.consent(&account.id, &request.client_id).await?;
    let covered = consented.and_then(|s| ScopeSet::parse(&s).ok()).is_some_and(|given| wanted.is_subset_of(&given));
    if !covered {
        return if none { fail(ErrorCode::ConsentRequired, "The user has not agreed to share these details") } else { Ok(NextStep::Consent) };
    }
    let location = issue_code(state, request, auth, vector.as_str()).await?;
    Ok(NextStep::Redirect(location))
}

/// Stores a grant and a single-use code (hashed), and returns the partner redirect.
pub async fn issue_code(state: &AppState, request: &AuthorizeRequest, auth: &Authenticated, vot: &str) -> Result<String, StoreError> {
    let now = clock::now_ms();
    // Time-ordered, like the code's key and the ID token's jti below: their rows' index entries
    // are appended rather than scattered (`crypto::time_ordered_token`).
    let code = time_ordered_token(now, 32);
    let grant = GrantRecord {
        id: time_ordered_token(now, 12),
        account_id: auth.account_id.clone(),
        client_id: request.client_id.clone(),
        scope: request.scope.clone(),
        vot: vot.to_string(),
        auth_time: auth.auth_time,
    };
    let new_code = NewAuthorizationCode {
        code_hash: secret_key(&code),
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        expires_at: now + state.settings.lifetimes.authorization_code,
        id_token_jti: time_ordered_token(now, 12),
    };
    state.db.insert_grant_with_code(&grant, &new_code, now).await?;
    metrics::counter!("citizen_id_sign_ins_total", "client_id" => request.client_id.clone()).increment(1);
    let mut url = url::Url::parse(&request.redirect_uri).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    url.query_pairs_mut().append_pair("code", &code).append_pair("state", &request.state);
    Ok(url.into())
}

/// The redirect for a citizen who declined or abandoned (`access_denied`).
pub fn denied(request: &AuthorizeRequest, description: &str) -> String {
    AuthorizeError::Redirect {
        redirect_uri: request.redirect_uri.clone(),
        state: Some(request.state.clone()),
        error: super::error::OAuthError::new(ErrorCode::AccessDenied, description),
    }
    .redirect_location()
    .unwrap_or_default()
}
