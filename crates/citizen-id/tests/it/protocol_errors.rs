//! Negative protocol tests, each asserting the exact error and channel (Federation spec
//! Tables 5, 10 and 13; RFC 6749, RFC 7523, RFC 7636, RFC 9700).

use serde_json::json;

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::protocol::*;
use crate::support::web::WebClient;

async fn authorize_errors_use_the_right_channel(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let mut web = WebClient::new(&app.base);
    // Untrusted client or redirect URI: an error page, never a redirect.
    for extra in [[("client_id", "nobody")], [("redirect_uri", "https://evil.example/cb")]] {
        let page = web.get(&authorize_url(&app, &p, &extra)).await;
        assert_eq!(page.status, 400);
        assert!(page.left_to.is_none(), "must not redirect for {extra:?}");
        assert_eq!(page.heading(), "Sorry, there is a problem with the service you came from");
    }
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("state", "")], "invalid_request"),
        (&[("nonce", "")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("vtr", r#"["P9.Cp.Cd"]"#)], "invalid_request"),
        (&[("scope", "email")], "invalid_scope"),
        (&[("scope", "openid phone")], "invalid_scope"),
        (&[("code_challenge", &challenge()), ("code_challenge_method", "plain")], "invalid_request"),
        (&[("prompt", "none")], "sso_login_required"),
    ];
    for (extra, want) in cases {
        let page = web.get(&authorize_url(&app, &p, extra)).await;
        assert_eq!(page.param("error").as_deref(), Some(*want), "case {extra:?}");
        let state_expected = if extra.iter().any(|(k, _)| *k == "state") { None } else { Some("state-123") };
        assert_eq!(page.param("state").as_deref(), state_expected, "case {extra:?}");
    }
}

async fn codes_are_single_use_bound_and_expire(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let other = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;

    // Reuse: the second exchange fails and the first exchange's tokens are revoked.
    let c = code(&app, &mut web, &p, &[]).await;
    let (status, first) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&app, &access).await.0, 200);
    let (status, again) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));
    let (status, www) = userinfo(&app, &access).await;
    assert_eq!(status, 401);
    assert!(www.unwrap().contains("invalid_token"));
    let (_, refreshed) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap()), ("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion(&app, &p))],
    )
    .await;
    assert_eq!(refreshed["error"], "invalid_grant", "the refresh token of a replayed code is revoked too");

    // Expired.
    let c = code(&app, &mut web, &p, &[]).await;
    sqlx::query("UPDATE authorization_codes SET expires_at = 0").execute(app.state.db.pool()).await.unwrap();
    assert_eq!(exchange(&app, &p, &c, &assertion(&app, &p)).await.1["error"], "invalid_grant");

    // Redeemed by another client.
    let c = code(&app, &mut web, &p, &[]).await;
    let (_, body) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", &other.redirect_uri), ("code_verifier", VERIFIER), ("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion(&app, &other))],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");

    // redirect_uri mismatch.
    let c = code(&app, &mut web, &p, &[]).await;
    let (_, body) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", "https://rp.example/other"), ("code_verifier", VERIFIER), ("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion(&app, &p))],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");

    // Wrong PKCE verifier, and a verifier for a code issued without a challenge (downgrade).
    let c = code(&app, &mut web, &p, &[]).await;
    let (_, body) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", &p.redirect_uri), ("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-000"), ("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion(&app, &p))],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    let c = code(&app, &mut web, &p, &[("code_challenge", ""), ("code_challenge_method", "")]).await;
    assert_eq!(exchange(&app, &p, &c, &assertion(&app, &p)).await.1["error"], "invalid_grant");
}

async fn client_assertions_are_checked(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let other = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let now = citizen_id::clock::now_secs();
    let mut wrong_aud = claims(&app, &p);
    wrong_aud["aud"] = json!("https://elsewhere.example/token");
    let mut expired = claims(&app, &p);
    expired["exp"] = json!(now - 120);
    expired["iat"] = json!(now - 300);
    let replayed = assertion(&app, &p);
    let other_key = citizen_id::oidc::keys::sign_with(&other.signer.key, "demo-1", &claims(&app, &p)).unwrap();
    let bad: Vec<(&str, String)> = vec![
        ("wrong aud", assertion_with(&p, wrong_aud)),
        ("expired", assertion_with(&p, expired)),
        ("alg none", forged("none", &claims(&app, &p))),
        ("HS256", forged("HS256", &claims(&app, &p))),
        ("another key", other_key),
    ];
    for (case, a) in bad {
        let c = code(&app, &mut web, &p, &[]).await;
        let (status, body) = exchange(&app, &p, &c, &a).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{case}");
    }
    let c = code(&app, &mut web, &p, &[]).await;
    assert_eq!(exchange(&app, &p, &c, &replayed).await.0, 200);
    let c = code(&app, &mut web, &p, &[]).await;
    let (status, body) = exchange(&app, &p, &c, &replayed).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "a repeated jti is a replay");
    // The refused request left the code as it was: the partner's next, fresh assertion works.
    assert_eq!(exchange(&app, &p, &c, &assertion(&app, &p)).await.0, 200, "a replayed assertion does not spend the code");

    let (status, body) = token(&app, &[("grant_type", "password")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
}

async fn userinfo_refuses_expired_and_tampered_tokens(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (_, body) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    let access = body["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = access.split('.').map(String::from).collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&citizen_id::crypto::b64url_decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = citizen_id::crypto::b64url(payload.to_string().as_bytes());
    let (status, www) = userinfo(&app, &parts.join(".")).await;
    assert_eq!(status, 401);
    assert!(www.unwrap().contains("error=\"invalid_token\""));

    let mut expired = serde_json::from_slice::<serde_json::Value>(&citizen_id::crypto::b64url_decode(access.split('.').nth(1).unwrap()).unwrap()).unwrap();
    expired["exp"] = json!(citizen_id::clock::now_secs() - 10);
    let token = app.state.keys.sign(&expired).unwrap();
    assert_eq!(userinfo(&app, &token).await.0, 401);
    assert_eq!(userinfo(&app, "not-a-jwt").await.0, 401);
    // RFC 6750 3.1: no credentials at all is a bare challenge, with no error code.
    let res = reqwest::Client::new().get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
}

on_both_databases!(
    authorize_errors_use_the_right_channel,
    codes_are_single_use_bound_and_expire,
    client_assertions_are_checked,
    userinfo_refuses_expired_and_tampered_tokens,
);
