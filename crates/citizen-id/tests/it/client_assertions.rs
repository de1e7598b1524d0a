//! The token endpoint's rules for client assertions and refresh scopes as partner libraries
//! meet them (issue 15 item 12): lifetimes up to an hour (Authlib's default), `aud` the token
//! endpoint or the issuer alone (openid-client v6, draft-ietf-oauth-rfc7523bis), `iat`
//! required, each `jti` remembered until its `exp`, and a refresh that asks for more than the
//! grant refused before its token is spent.

use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::protocol::*;
use crate::support::web::WebClient;
use crate::support::{TestApp, TestPartner};

const MINUTE: i64 = 60;

/// Claims of an assertion issued now, living `lifetime` seconds.
fn living(app: &TestApp, p: &TestPartner, lifetime: i64) -> Value {
    let mut c = claims(app, p);
    c["exp"] = json!(c["iat"].as_i64().unwrap() + lifetime);
    c
}

/// A fresh code for `p` from the signed-in browser `web`, and its exchange with `assertion`:
/// (status, error, description). One sign-in serves a whole test.
async fn exchange_with(app: &TestApp, web: &mut WebClient, p: &TestPartner, assertion: &str) -> (u16, Value, Value) {
    let c = code(app, web, p, &[]).await;
    let (status, body) = exchange(app, p, &c, assertion).await;
    (status, body["error"].clone(), body["error_description"].clone())
}

/// A partner and a browser signed in to it.
async fn partner_and_browser(app: &TestApp) -> (TestPartner, WebClient) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let web = signed_in(app, &p, &app.citizen().await).await;
    (p, web)
}

/// Whether the replay table holds `jti`.
async fn remembered(app: &TestApp, jti: &str) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM client_assertions WHERE jti = $1").bind(jti).fetch_one(app.state.db.pool()).await.unwrap();
    n == 1
}

/// Authlib signs `exp = iat + 3600`: accepted. The jti is kept (a replay refused) until the
/// assertion's exp and the skew have passed, and purged only after.
async fn assertions_may_live_an_hour_and_their_jti_is_kept_as_long(app: TestApp) {
    let (p, mut web) = partner_and_browser(&app).await;
    let claims = living(&app, &p, 60 * MINUTE);
    let jti = claims["jti"].as_str().unwrap().to_string();
    let hour = assertion_with(&p, claims);
    let (status, error, _) = exchange_with(&app, &mut web, &p, &hour).await;
    assert_eq!((status, error), (200, Value::Null), "a 60-minute assertion is accepted");
    let now_ms = citizen_id::clock::now_ms();
    let retention = citizen_id::store::purge::Retention::from_lifetimes(&app.state.settings.lifetimes);
    // 59 minutes on, the purge keeps the jti and a replay is refused. (The code is fetched
    // first: the purge also ends the browser's session, idle for 59 minutes.)
    let c = code(&app, &mut web, &p, &[]).await;
    app.state.db.purge_expired(now_ms + 59 * MINUTE * 1000, retention).await.unwrap();
    assert!(remembered(&app, &jti).await, "kept while the assertion lives");
    let (status, body) = exchange(&app, &p, &c, &hour).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "a replay within the hour");
    assert_eq!(body["error_description"], "The client_assertion jti has been used before");
    // Once exp and the skew have passed, the row goes (the assertion would be refused as expired).
    app.state.db.purge_expired(now_ms + 62 * MINUTE * 1000, retention).await.unwrap();
    assert!(!remembered(&app, &jti).await, "purged after exp");
}

/// 61 minutes is refused with a message that says why; the code is left for a good assertion.
async fn longer_assertions_are_refused(app: TestApp) {
    let (p, mut web) = partner_and_browser(&app).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (status, body) = exchange(&app, &p, &c, &assertion_with(&p, living(&app, &p, 61 * MINUTE))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(body["error_description"], "The client_assertion lifetime (exp - iat) is more than 60 minutes");
    // A lifetime measured from iat: issued 50 minutes ago and valid for 11 more is 61 minutes too.
    let now = citizen_id::clock::now_secs();
    let mut earlier = claims(&app, &p);
    (earlier["iat"], earlier["exp"]) = (json!(now - 50 * MINUTE), json!(now + 11 * MINUTE));
    let (status, body) = exchange(&app, &p, &c, &assertion_with(&p, earlier)).await;
    assert_eq!((status, body["error_description"].as_str()), (401, Some("The client_assertion lifetime (exp - iat) is more than 60 minutes")));
    assert_eq!(exchange(&app, &p, &c, &assertion(&app, &p)).await.0, 200, "the refusals left the code");
}

/// `iat` is required: the lifetime is measured from it.
async fn assertions_without_iat_are_refused(app: TestApp) {
    let (p, mut web) = partner_and_browser(&app).await;
    let mut no_iat = claims(&app, &p);
    no_iat.as_object_mut().unwrap().remove("iat");
    let (status, error, description) = exchange_with(&app, &mut web, &p, &assertion_with(&p, no_iat)).await;
    assert_eq!((status, error.as_str(), description.as_str()), (401, Some("invalid_client"), Some("The client_assertion has no iat")));
}

/// `aud`: the token endpoint URL (the reference) or the issuer (openid-client v6, rfc7523bis),
/// alone. An array that names anyone else is the audience-injection shape: refused, even when
/// it names us too.
async fn aud_is_the_token_endpoint_or_the_issuer_alone(app: TestApp) {
    let (p, mut web) = partner_and_browser(&app).await;
    let issuer = app.state.settings.issuer.clone();
    let endpoint = app.url("/token");
    let accepted = [json!(issuer), json!(endpoint), json!([issuer]), json!([endpoint])];
    for aud in accepted {
        let mut c = claims(&app, &p);
        c["aud"] = aud.clone();
        let (status, error, _) = exchange_with(&app, &mut web, &p, &assertion_with(&p, c)).await;
        assert_eq!((status, error), (200, Value::Null), "aud {aud}");
    }
    let refused = [
        json!([issuer, "https://other-as.example"]),
        json!([endpoint, "https://other-as.example/token"]),
        json!([issuer, endpoint]),
        json!([]),
        json!(format!("{issuer}/")),
        json!("https://other-as.example"),
    ];
    for aud in refused {
        let mut c = claims(&app, &p);
        c["aud"] = aud.clone();
        let (status, error, description) = exchange_with(&app, &mut web, &p, &assertion_with(&p, c)).await;
        assert_eq!((status, error.as_str()), (401, Some("invalid_client")), "aud {aud}");
        assert_eq!(description, "The client_assertion aud must be the token endpoint URL or the issuer, as a single value");
    }
}

/// A refresh asking for more scope than the grant is `invalid_scope` and leaves the refresh
/// token unspent: the partner's retry with the same token rotates it (before, the refusal came
/// after the rotation, and the retry was taken for a reuse that revoked the family). The
/// refused request's assertion is spent all the same.
async fn wider_refresh_scope_is_refused_before_the_token_is_spent(app: TestApp) {
    let p = app.partner("openid email profile", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (status, body) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("openid email")));
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    // profile is registered for the partner but was not granted.
    let wider = assertion(&app, &p);
    let (status, body) = refresh(&app, &rt, Some("openid email profile"), &wider).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(body["error_description"], "scope exceeds the scope originally granted");
    // The assertion of the refused request cannot be used again.
    let (status, body) = refresh(&app, &rt, None, &wider).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "the refused request spent its jti");
    // The same refresh token still rotates, and the grant is alive.
    let (status, body) = refresh(&app, &rt, None, &assertion(&app, &p)).await;
    assert_eq!((status, body["error"].as_str(), body["scope"].as_str()), (200, None, Some("openid email")), "{body}");
    let next = body["refresh_token"].as_str().unwrap();
    assert_ne!(next, rt);
    assert_eq!(userinfo(&app, body["access_token"].as_str().unwrap()).await.0, 200, "the grant was not revoked");
}

/// A refresh request for `rt` (with `scope`, when given) authenticated by `assertion`.
async fn refresh(app: &TestApp, rt: &str, scope: Option<&str>, assertion: &str) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    form.extend(scope.map(|s| ("scope", s)));
    form.extend([("client_assertion_type", JWT_BEARER), ("client_assertion", assertion)]);
    token(app, &form).await
}

on_both_databases!(
    assertions_may_live_an_hour_and_their_jti_is_kept_as_long,
    longer_assertions_are_refused,
    assertions_without_iat_are_refused,
    aud_is_the_token_endpoint_or_the_issuer_alone,
    wider_refresh_scope_is_refused_before_the_token_is_spent,
);
