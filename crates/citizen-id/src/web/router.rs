//! Every route of the service, in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::journeys::{authorize, consent, home, passkey_pages, passkeys, prove, reauth, register, reset, settings, settings_contact, signin};
use super::{assets, demo, middleware, protocol};
use crate::ops::health;
use crate::state::AppState;

/// Form and JSON bodies are small; anything larger is refused before it is read.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let mut routes = Router::new()
        // OpenID Connect (partner-facing, Federation spec 3.3)
        .route("/.well-known/openid-configuration", get(protocol::get_discovery))
        .route("/.well-known/jwks.json", get(protocol::get_jwks))
        .route("/trustmark/{host}", get(protocol::get_trustmark))
        .route("/authorize", get(authorize::get_authorize).post(authorize::post_authorize))
        .route("/authorize/resume", get(authorize::get_resume))
        .route("/authorize/cancel", get(authorize::get_cancel))
        .route("/token", post(protocol::post_token))
        .route("/userinfo", get(protocol::get_userinfo).post(protocol::get_userinfo).patch(protocol::patch_userinfo))
        // Citizen journeys
        .route("/", get(home::get_home))
        .route("/signin", get(signin::get_signin).post(signin::post_signin))
        .route("/signin/code", get(signin::get_code).post(signin::post_code))
        .route("/signin/code/resend", post(signin::post_resend))
        .route("/signin/unlock", get(signin::get_unlock).post(signin::post_unlock))
        .route("/sign-out", post(signin::post_sign_out))
        .route("/register", get(register::get_email).post(register::post_email))
        .route("/register/email-code", get(register::get_email_code).post(register::post_email_code))
        .route("/register/password", get(register::get_password).post(register::post_password))
        .route("/register/mobile", get(register::get_mobile).post(register::post_mobile))
        .route("/register/mobile-code", get(register::get_mobile_code).post(register::post_mobile_code))
        .route("/forgot-password", get(reset::get_email).post(reset::post_email))
        .route("/forgot-password/code", get(reset::get_code).post(reset::post_code))
        .route("/forgot-password/sms-code", get(reset::get_sms_code).post(reset::post_sms_code))
        .route("/forgot-password/new-password", get(reset::get_new_password).post(reset::post_new_password))
        // Passkeys (F9): the ceremonies' JSON endpoints, then the pages around them
        .route("/passkeys/register/start", post(passkeys::post_register_start))
        .route("/passkeys/register/finish", post(passkeys::post_register_finish))
        .route("/passkeys/signin/start", post(passkeys::post_signin_start))
        .route("/passkeys/signin/finish", post(passkeys::post_signin_finish))
        .route("/account/passkeys", get(passkey_pages::get_account_passkeys))
        .route("/account/passkeys/remove", post(passkey_pages::post_remove_passkey))
        .route("/account/password/remove", post(passkey_pages::post_remove_password))
        .route("/register/passkey-offer", get(passkey_pages::get_offer))
        .route("/register/passkey-instead", get(passkey_pages::get_passkey_instead).post(passkey_pages::post_passkey_instead))
        .route("/register/create-passkey", get(passkey_pages::get_create_first))
        .route("/forgot-password/passkey", get(passkey_pages::get_recovery))
        .route("/forgot-password/passkey-created", get(passkey_pages::get_recovery_done))
        .route("/consent", get(consent::get_consent).post(consent::post_consent))
        .route("/prove-identity", get(prove::get_start))
        .route("/prove-identity/details", post(prove::post_details))
        .route("/prove-identity/gp", get(prove::get_gp).post(prove::post_gp))
        .route("/prove-identity/mobile", get(prove::get_mobile).post(prove::post_mobile))
        .route("/prove-identity/mobile/send", post(prove::post_mobile_send))
        .route("/prove-identity/stop", get(prove::get_stop))
        // Settings (F8), and confirming it's you before a sensitive change (ASVS 7.5)
        .route("/confirm-it-is-you", get(reauth::get_confirm).post(reauth::post_confirm))
        .route("/confirm-it-is-you/code", get(reauth::get_code).post(reauth::post_code))
        .route("/settings", get(settings::get_settings))
        .route("/settings/email", get(settings_contact::get_email).post(settings_contact::post_email))
        .route("/settings/email/code", post(settings_contact::post_email_code))
        .route("/settings/mobile", get(settings_contact::get_mobile).post(settings_contact::post_mobile))
        .route("/settings/mobile/code", post(settings_contact::post_mobile_code))
        .route("/settings/landline", get(settings_contact::get_landline).post(settings_contact::post_landline))
        .route("/settings/password", get(settings_contact::get_password).post(settings_contact::post_password))
        .route("/settings/services", get(settings::get_services))
        .route("/settings/services/withdraw", post(settings::post_withdraw))
        .route("/settings/sign-out-everywhere", post(settings::post_sign_out_everywhere))
        .route("/settings/download", get(settings::get_download))
        .route("/settings/delete", get(settings::get_delete).post(settings::post_delete))
        // Sandpit extras: the sample partner and the notification sink
        .route("/demo", get(demo::get_demo))
        .route("/demo/start", post(demo::post_start))
        .route("/demo/callback", get(demo::get_callback))
        .route("/dev/messages", get(home::get_dev_messages))
        // Operations
        .route("/health", get(health::get_health))
        .route("/ready", get(health::get_ready))
        .route("/assets/{*path}", get(assets::serve_asset))
        .fallback(health::not_found);
    // `serve` has /metrics on its own listener (`metrics_router`); the sandpit keeps it here.
    if state.settings.metrics_listen.is_none() {
        routes = routes.route("/metrics", get(health::get_metrics));
    }
    routes
        .layer(axum::middleware::from_fn(middleware::oversized_bodies))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::security_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The operator's listener (`metrics_listen`): `/metrics` and nothing else. It names partners
/// and counts their sign-ins, so it is not on the public listener in `serve`.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(health::get_metrics))
}
