//! What `serve` shows the public and what it keeps for the operator (issue 15 items 11 and 14):
//! `/metrics` only on its own listener, the service's own answers to an oversized body, no
//! plain-http redirect URIs outside the sandpit, and GP credentials only after two factors.

use serde_json::Value;

use crate::support::protocol::{assertion, authorize_url, challenge, code, exchange, signed_in};
use crate::support::web::WebClient;
use crate::support::{Backend, TestApp};
use crate::on_both_databases;
use citizen_id::config::{Mode, Settings};

/// `serve`'s settings where they differ from the sandpit's: production mode, and `/metrics` on
/// a listener of its own (on a free loopback port here; 127.0.0.1:9464 by default).
fn like_serve(s: &mut Settings) {
    s.mode = Mode::Production;
    s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
}

async fn serve(backend: Backend) -> Option<TestApp> {
    TestApp::start_with_settings(backend, &like_serve).await
}

async fn metrics_are_not_on_the_public_listener(app: TestApp) {
    // Something worth counting first: a sign-in for a partner.
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    code(&app, &mut web, &p, &[]).await;

    let public = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    let page = public.text().await.unwrap();
    assert!(page.contains("Page not found") && !page.contains("citizen_id_"), "the public listener knows no /metrics");

    let metrics_addr = app.metrics_addr.expect("serve has a metrics listener");
    assert!(metrics_addr.ip().is_loopback());
    let res = reqwest::get(format!("http://{metrics_addr}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4");
    let body = res.text().await.unwrap();
    assert!(body.contains(&format!("citizen_id_sign_ins_total{{client_id=\"{}\"}}", p.client_id)), "{body}");
    // The operator's listener serves nothing else.
    for path in ["/", "/health", "/authorize", "/.well-known/openid-configuration"] {
        assert_eq!(reqwest::get(format!("http://{metrics_addr}{path}")).await.unwrap().status(), 404, "{path}");
    }
}

/// What 70 KB to each kind of endpoint gets back (the limit is 64 KiB).
async fn oversized_bodies_get_the_services_own_answers(app: TestApp) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let big = format!("grant_type=authorization_code&code={}", "a".repeat(70 * 1024));
    let form = "application/x-www-form-urlencoded";
    // The partner's endpoints: the protocol's JSON error.
    for (method, path) in [(reqwest::Method::POST, "/token"), (reqwest::Method::PATCH, "/userinfo")] {
        let res = http.request(method.clone(), app.url(path)).header("content-type", form).bearer_auth("x").body(big.clone()).send().await.unwrap();
        assert_eq!(res.status(), 413, "{method} {path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{method} {path}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{method} {path}: {body}");
        assert_eq!(body["error_description"], "The request body is too large");
    }
    // A citizen's pages: the service's page, never axum's "length limit exceeded".
    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    for (path, heading) in [
        ("/signin", "Sorry, there is a problem"),
        ("/register", "Sorry, there is a problem"),
        // A browser is at /authorize too: with the request unread, the partner's redirect URI is
        // unchecked, so a page, as for any unreadable authorization request.
        ("/authorize", "Sorry, there is a problem with the service you came from"),
    ] {
        let page = web.post_raw(path, form, big.clone().into_bytes()).await;
        assert_eq!(page.status, 413, "{path}");
        assert_eq!(page.heading(), heading, "{path}");
        assert!(!page.contains("length limit exceeded"), "{path}");
    }
    let res = http.post(app.url("/signin")).header("content-type", form).body(big.clone()).send().await.unwrap();
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("'nonce-"), "the page's own styles and scripts still load");
    // The passkey ceremonies speak JSON.
    let res = http.post(app.url("/passkeys/signin/start")).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request");
}

/// The reference: "HTTP URIs are NOT permitted". A registration holding one (made in a sandpit,
/// or before this rule) is refused at `/authorize` in `serve` as an unregistered redirect URI.
async fn serve_refuses_an_http_redirect_uri_at_authorize(app: TestApp) {
    let p = app.partner_redirecting_to("openid email", &["P0.Cp.Cd"], "http://localhost:3000/cb").await;
    let page = WebClient::new(&app.base).get(&authorize_url(&app, &p, &[])).await;
    assert_eq!((page.status.as_u16(), page.left_to.as_deref()), (400, None), "never redirected to http");
    assert_eq!(page.heading(), "Sorry, there is a problem with the service you came from");
    assert!(page.contains("is not registered for it"), "{}", page.html);
}

async fn the_sandpit_takes_an_http_localhost_redirect_uri(app: TestApp) {
    let p = app.partner_redirecting_to("openid email", &["P0.Cp.Cd"], "http://localhost:3000/cb").await;
    let page = WebClient::new(&app.base).get(&authorize_url(&app, &p, &[])).await;
    assert_eq!((page.status.as_u16(), page.heading().as_str()), (200, "Sign in"));
}

/// scopes-and-claims.md note 6: the scope "is protected by a high level of authentication"; a
/// P9 sign-in with a password alone (`P9.Cp`) gets no GP credentials, `P9.Cp.Cd` does.
async fn gp_credentials_need_two_factors(app: TestApp) {
    let scope = "openid gp_integration_credentials";
    let p = app.partner("openid", &["P9.Cp", "P9.Cp.Cd"]).await;
    let mut record = app.state.db.partner(&p.client_id).await.unwrap().unwrap();
    record.scopes = scope.split(' ').map(String::from).collect();
    record.im1 = true;
    app.state.db.update_partner(&record).await.unwrap();
    let citizen = app.citizen().await;
    let now = citizen_id::clock::now_ms();
    app.state.db.set_proofing_level(&citizen.id, "P9", now).await.unwrap();
    let creds = serde_json::json!({ "gp_user_id": "1234567890", "gp_linkage_key": "LINKAGEKEY1", "gp_ods_code": "A12345" });
    let sealed = app.state.kek.seal(&format!("gp_credentials:{}", citizen.id), creds.to_string().as_bytes());
    app.state.db.set_gp_credentials(&citizen.id, &sealed, now).await.unwrap();
    let mut web = signed_in(&app, &p, &citizen).await;
    app.state.db.save_consent(&citizen.id, &p.client_id, scope, now).await.unwrap();

    let mut released = Vec::new();
    for vtr in [r#"["P9.Cp"]"#, r#"["P9.Cp.Cd"]"#] {
        let c = challenge();
        let page = web.get(&authorize_url(&app, &p, &[("vtr", vtr), ("scope", scope), ("code_challenge", &c), ("code_challenge_method", "S256")])).await;
        let issued = page.param("code").unwrap_or_else(|| panic!("{vtr}: no code: {}", page.heading()));
        let (status, tokens) = exchange(&app, &p, &issued, &assertion(&app, &p)).await;
        assert_eq!(status, 200, "{tokens}");
        let info: Value = reqwest::Client::new()
            .get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        released.push(info.get("gp_integration_credentials").cloned());
    }
    assert_eq!(released[0], None, "not after P9.Cp");
    assert_eq!(released[1], Some(creds), "after P9.Cp.Cd");
}

macro_rules! like_serve {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(serve(Backend::Sqlite).await.expect("sqlite")).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = serve(Backend::Postgres).await {
                    super::$name(app).await
                }
            }
        }
    )*};
}

like_serve!(metrics_are_not_on_the_public_listener, oversized_bodies_get_the_services_own_answers, serve_refuses_an_http_redirect_uri_at_authorize);
on_both_databases!(the_sandpit_takes_an_http_localhost_redirect_uri, gp_credentials_need_two_factors);
