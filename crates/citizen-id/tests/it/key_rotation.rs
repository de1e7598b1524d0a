//! Key rotation while the service runs (issue items 1 and 3): `citizen-id keys rotate`, run by
//! an operator against the server's database, reaches the running server without a restart; the
//! new key is in its JWKS before any token carries it, then signs, and tokens signed by the old
//! key keep working while it stays published.

use std::time::{Duration, Instant};

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::protocol::*;

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    citizen_id::oidc::keys::split_jws(jwt).expect("a JWS").0["kid"].as_str().expect("a kid").to_string()
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(app.url("/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn eventually<F: std::future::Future<Output = bool>>(limit: Duration, mut check: impl FnMut() -> F) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn a_rotation_by_the_cli_reaches_the_running_server(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let mut tokens = async || {
        let c = code(&app, &mut web, &p, &[]).await;
        let (status, tokens) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
        assert_eq!(status, 200, "{tokens}");
        (tokens["access_token"].as_str().unwrap().to_string(), tokens["id_token"].as_str().unwrap().to_string())
    };
    let (old_access, old_id) = tokens().await;
    let old_kid = kid_of(&old_id);
    assert_eq!(published_kids(&app).await, std::slice::from_ref(&old_kid));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citizen-id"))
        .args(["keys", "rotate", "--publish-ahead", "3"])
        .env("DATABASE_URL", &app.state.settings.database_url)
        .env("CITIZEN_ID_KEY_ENCRYPTION_SECRET", &app.state.settings.key_encryption_secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_kid = String::from_utf8(out.stdout).unwrap().split('\t').next().unwrap().to_string();

    // Published first, while the old key still signs...
    assert!(eventually(Duration::from_secs(2), || async { published_kids(&app).await.contains(&new_kid) }).await, "the server never published the new key");
    assert_eq!(kid_of(&tokens().await.1), old_kid, "the new key signed before it was published for its lead time");
    // ...then the signer.
    let started = Instant::now();
    let mut signer = old_kid.clone();
    while signer != new_kid && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        signer = kid_of(&tokens().await.1);
    }
    assert_eq!(signer, new_kid, "the running server never signed with the new key");
    // The old key's tokens still work, and its key is still published.
    assert_eq!(userinfo(&app, &old_access).await.0, 200);
    let kids = published_kids(&app).await;
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "{kids:?}");
}

on_both_databases!(a_rotation_by_the_cli_reaches_the_running_server);
