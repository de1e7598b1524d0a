//! The full authorization code flow, driven by the `openidconnect` relying-party library with
//! private_key_jwt (Federation spec 3.1): discovery, authorize, registration and sign-in
//! through the real forms, consent, token, ID token validation, userinfo, refresh rotation.

use openidconnect::{OAuth2TokenResponse as _, TokenResponse as _};

use crate::on_both_databases;
use crate::support::flows::{register, sign_in};
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

on_both_databases!(full_code_flow_with_a_real_relying_party, single_sign_on_across_partners);
