//! The full authorization code flow, driven by the `openidconnect` relying-party library with
//! private_key_jwt (Federation spec 3.1): discovery, authorize, registration and sign-in
//! through the real forms, consent, token, ID token validation, userinfo, refresh rotation; and
//! the partner metadata kept through PATCH /userinfo.

use openidconnect::{OAuth2TokenResponse as _, TokenResponse as _};

use crate::on_both_databases;
use crate::support::flows::{register, sign_in};
use crate::support::protocol::{assertion, code, exchange, signed_in, userinfo};
use crate::support::rp::{Rp, access_token, refresh_token};
use crate::support::web::WebClient;
use crate::support::TestApp;

async fn full_code_flow_with_a_real_relying_party(app: TestApp) {
    let partner = app.partner("openid profile email phone", &["P0.Cp.Cd", "P9.Cp.Cd"]).await;
    let rp = Rp::discover(&app, &partner).await;
    let started = rp.start(&["email", "phone"], r#"["P0.Cp.Cd"]"#);
    let mut web = WebClient::new(&app.base);

    let page = web.get(&started.url).await;
    assert_eq!(page.heading(), "Sign in", "an unknown browser is asked to sign in");
    let page = register(&app, &mut web, "new.citizen@example.com", "07700 900123").await;
    assert_eq!(page.heading(), "Share your details with Test partner");
    assert!(page.contains("Your email address"));
    let page = web.post("/consent", &[("decision", "agree")]).await;
    assert_eq!(page.param("state").as_deref(), Some(started.state.as_str()));
    let code = page.param("code").expect("code in the partner redirect");

    let tokens = rp.exchange(&code, started.verifier).await;
    let claims = rp.verify_id_token(&tokens, &started.nonce);
    assert_eq!(claims["vot"], "P0.Cp.Cd");
    assert_eq!(claims["identity_proofing_level"], "P0");
    assert_eq!(claims["vtm"], format!("{}/trustmark/127.0.0.1", app.base));
    assert_eq!(tokens.expires_in().map(|d| d.as_secs()), Some(300));
    let sub = claims["sub"].as_str().unwrap().to_string();

    let info = rp.userinfo(&access_token(&tokens), &sub).await;
    assert_eq!(info.email().map(|e| e.as_str()), Some("new.citizen@example.com"));
    assert_eq!(info.phone_number().map(|p| p.as_str()), Some("+447700900123"));

    // Refresh rotates: the new token works once, the old one is refused and kills the family.
    let first = refresh_token(&tokens);
    let refreshed = rp.refresh(&first).await.expect("refresh");
    assert!(refreshed.id_token().is_none(), "no ID token on refresh (spec Table 8)");
    let second = refresh_token(&refreshed);
    assert_ne!(first.secret(), second.secret());
    assert_eq!(rp.refresh(&first).await.unwrap_err(), "invalid_grant");
    assert_eq!(rp.refresh(&second).await.unwrap_err(), "invalid_grant", "reuse revoked the whole family");
}

async fn single_sign_on_across_partners(app: TestApp) {
    let one = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let two = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    let rp1 = Rp::discover(&app, &one).await;
    let started = rp1.start(&["email"], r#"["P0.Cp.Cd"]"#);
    web.get(&started.url).await;
    let page = sign_in(&app, &mut web, &citizen).await;
    let page = if page.left_to.is_none() { web.post("/consent", &[("decision", "agree")]).await } else { page };
    assert!(page.param("code").is_some());

    // The second partner: no sign-in page, only its own consent; with prompt=none, an error.
    let rp2 = Rp::discover(&app, &two).await;
    let started = rp2.start(&["email"], r#"["P0.Cp.Cd"]"#);
    let page = web.get(&format!("{}&prompt=none", started.url)).await;
    assert_eq!(page.param("error").as_deref(), Some("consent_required"));
    let page = web.get(&started.url).await;
    assert_eq!(page.heading(), "Share your details with Test partner");
    let page = web.post("/consent", &[("decision", "agree")]).await;
    let code = page.param("code").expect("SSO issued a code");
    let tokens = rp2.exchange(&code, started.verifier).await;
    assert_eq!(rp2.verify_id_token(&tokens, &started.nonce)["sub"], citizen.id.as_str());

    // prompt=login forces a new sign-in even with a session.
    let started = rp2.start(&["email"], r#"["P0.Cp.Cd"]"#);
    let page = web.get(&format!("{}&prompt=login", started.url)).await;
    assert_eq!(page.heading(), "Sign in");
}

/// Many exchanges at once, as a busy partner sends them (on SQLite the store runs concurrent
/// redemptions together in one transaction, `store::group_commit`): each code yields the tokens
/// of its own authorization request, and a code sent twice yields one set of tokens, whose grant
/// the second use then revokes.
async fn concurrent_exchanges_each_get_their_own_tokens(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let mut codes = Vec::new();
    for i in 0..24 {
        codes.push(code(&app, &mut web, &p, &[("nonce", &format!("nonce-{i}"))]).await);
    }
    // Every code once, and the last four a second time, all in flight together.
    let sent: Vec<usize> = (0..24).chain(20..24).collect();
    let assertions: Vec<String> = sent.iter().map(|_| assertion(&app, &p)).collect();
    let answers = futures_util::future::join_all(sent.iter().zip(&assertions).map(|(&i, a)| exchange(&app, &p, &codes[i], a))).await;

    let nonce_of = |body: &serde_json::Value| {
        let payload = body["id_token"].as_str().and_then(|t| t.split('.').nth(1)).and_then(citizen_id::crypto::b64url_decode).unwrap();
        serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["nonce"].as_str().unwrap().to_string()
    };
    for i in 0..24 {
        let mine: Vec<&(u16, serde_json::Value)> = sent.iter().zip(&answers).filter(|(s, _)| **s == i).map(|(_, a)| a).collect();
        let ok: Vec<_> = mine.iter().filter(|(status, _)| *status == 200).collect();
        assert_eq!(ok.len(), 1, "code {i}: one set of tokens, got {mine:?}");
        let body = &ok[0].1;
        assert_eq!(nonce_of(body), format!("nonce-{i}"), "code {i} got another request's ID token");
        let (status, _) = userinfo(&app, body["access_token"].as_str().unwrap()).await;
        if i < 20 {
            assert_eq!(status, 200, "code {i}");
        } else {
            let refused = mine.iter().find(|(status, _)| *status != 200).expect("the second use is refused");
            assert_eq!((refused.0, refused.1["error"].as_str()), (400, Some("invalid_grant")), "code {i}");
            assert_eq!(status, 401, "code {i}: a code used twice revokes its grant");
        }
    }
}

/// The reference's lifetimes (spec 4.4): code 10 minutes, access token 5 minutes, ID token 60
/// minutes, refresh token 30 days, as issued and as stored.
async fn tokens_live_as_the_reference_says(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (code_ttl,): (i64,) = sqlx::query_as("SELECT c.expires_at - g.created_at FROM authorization_codes c JOIN grants g ON g.id = c.grant_id")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(code_ttl, 10 * 60 * 1000, "code");
    let (status, tokens) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["expires_in"], 300);
    let lifetime = |jwt: &str| {
        let claims = citizen_id::oidc::keys::split_jws(jwt).unwrap().1;
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
    };
    assert_eq!(lifetime(tokens["access_token"].as_str().unwrap()), 5 * 60, "access token");
    assert_eq!(lifetime(tokens["id_token"].as_str().unwrap()), 60 * 60, "ID token");
    let (refresh_ttl,): (i64,) = sqlx::query_as("SELECT expires_at - created_at FROM refresh_tokens").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(refresh_ttl, 30 * 24 * 3600 * 1000, "refresh token");
}

/// An access token for `p` from a code asked for with `scope` by a signed-in browser.
async fn access_token_for(app: &TestApp, p: &crate::support::TestPartner, web: &mut WebClient, scope: &str) -> String {
    let c = code(app, web, p, &[("scope", scope)]).await;
    let (status, tokens) = exchange(app, p, &c, &assertion(app, p)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_string()
}

/// Spec 3.6.3: a partner granted `client_metadata` keeps a string of its own on the citizen's
/// record through PATCH /userinfo, and reads it back in userinfo; without the scope, or with a
/// body that is not the spec's, it is refused with the Bearer error of the right kind.
async fn partners_keep_their_metadata_through_userinfo(app: TestApp) {
    let p = app.partner("openid email client_metadata", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    app.state.db.save_consent(&citizen.id, &p.client_id, "openid email client_metadata", 0).await.unwrap();
    let with_scope = access_token_for(&app, &p, &mut web, "openid email client_metadata").await;
    let patch = |token: String, body: &'static str| {
        let url = app.url("/userinfo");
        async move {
            let res = reqwest::Client::new().patch(url).bearer_auth(token).header("content-type", "application/json").body(body).send().await.unwrap();
            let www = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
            (res.status().as_u16(), www)
        }
    };
    let read = |token: String| {
        let url = app.url("/userinfo");
        async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    assert!(read(with_scope.clone()).await.get("client_user_metadata").is_none(), "nothing stored yet");
    assert_eq!(patch(with_scope.clone(), r#"{"client_user_metadata":"appointment-prefs:v2"}"#).await, (204, None));
    assert_eq!(read(with_scope.clone()).await["client_user_metadata"], "appointment-prefs:v2");
    let (status, www) = patch(with_scope.clone(), r#"{"client_user_metadata":42}"#).await;
    assert!(status == 400 && www.as_deref().is_some_and(|w| w.contains("error=\"invalid_request\"")), "{status} {www:?}");
    // Another grant of the same partner without the scope may read nothing of it, nor write.
    let without = access_token_for(&app, &p, &mut web, "openid email").await;
    let (status, www) = patch(without.clone(), r#"{"client_user_metadata":"x"}"#).await;
    assert!(status == 403 && www.as_deref().is_some_and(|w| w.contains("error=\"insufficient_scope\"")), "{status} {www:?}");
    assert_eq!(read(with_scope).await["client_user_metadata"], "appointment-prefs:v2", "the refused write changed nothing");
}

on_both_databases!(
    tokens_live_as_the_reference_says,
    partners_keep_their_metadata_through_userinfo,
    full_code_flow_with_a_real_relying_party,
    single_sign_on_across_partners,
    concurrent_exchanges_each_get_their_own_tokens
);
