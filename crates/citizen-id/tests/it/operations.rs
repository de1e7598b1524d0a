//! What an operator's Prometheus sees at `/metrics` (issue item 7): requests by route and
//! status, latency histograms, sign-ins, codes sent, tokens issued and refused, and the token
//! endpoint's batched writes; no personal data among the labels.

use crate::on_both_databases;
use crate::support::TestApp;
use crate::support::protocol::*;

/// The value of the sample `name` whose labels include every pair of `labels`, from Prometheus
/// text; None when no such sample is there.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        let has_all = labels.iter().all(|(k, v)| label_text.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
        (series_name == name && has_all).then(|| value.parse().ok()).flatten()
    })
}

async fn metrics_count_what_happened(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (status, first) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    assert_eq!(status, 200, "{first}");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion(&app, &p)),
    ];
    assert_eq!(token(&app, &refresh).await.0, 200);
    // The code again: refused.
    assert_eq!(exchange(&app, &p, &c, &assertion(&app, &p)).await.0, 400);

    let res = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4");
    let body = res.text().await.unwrap();
    let at_least = |name: &str, labels: &[(&str, &str)], min: f64| {
        let value = sample(&body, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{body}"));
        assert!(value >= min, "{name} {labels:?} = {value}, expected at least {min}");
    };
    // Requests by route and status, and their latency.
    at_least("citizen_id_http_requests_total", &[("route", "/token"), ("method", "POST"), ("status", "200")], 2.0);
    at_least("citizen_id_http_requests_total", &[("route", "/token"), ("status", "400")], 1.0);
    at_least("citizen_id_http_requests_total", &[("route", "/authorize"), ("method", "GET")], 1.0);
    at_least("citizen_id_http_request_duration_seconds_count", &[("route", "/token")], 3.0);
    at_least("citizen_id_http_request_duration_seconds_bucket", &[("route", "/token"), ("le", "+Inf")], 3.0);
    // Sign-ins (per partner), codes sent, tokens issued and refused (by error).
    at_least("citizen_id_sign_ins_total", &[("client_id", &p.client_id)], 1.0);
    at_least("citizen_id_codes_sent_total", &[], 1.0);
    at_least("citizen_id_tokens_issued_total", &[], 2.0);
    at_least("citizen_id_token_errors_total", &[("error", "invalid_grant")], 1.0);
    // The token endpoint's writes and the transactions they ran in (`store::group_commit`).
    at_least("citizen_id_code_redemptions_total", &[], 2.0);
    at_least("citizen_id_code_redemption_transactions_total", &[], 1.0);
    at_least("citizen_id_refresh_rotations_total", &[], 1.0);
    // Nothing that names the citizen.
    for personal in [&citizen.email, &citizen.mobile, &citizen.id] {
        assert!(!body.contains(personal.as_str()), "personal data in /metrics");
    }
}

on_both_databases!(metrics_count_what_happened);

#[test]
fn samples_are_found_by_name_and_labels() {
    let body = "# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\nx{a=\"1\",b=\"20\"} 5\ny 7\n";
    assert_eq!(sample(body, "x", &[("b", "20")]), Some(5.0));
    assert_eq!(sample(body, "x", &[("a", "1"), ("b", "2")]), Some(3.0));
    assert_eq!(sample(body, "y", &[]), Some(7.0));
    assert_eq!(sample(body, "x", &[("c", "1")]), None);
    assert_eq!(sample(body, "z", &[]), None);
}

/// Log output kept in memory for the test to read.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;
    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}

/// Issue item 7: the production log format is JSON lines, lines written while serving a request
/// carry its request id, and nothing in them names the citizen or repeats a secret, through a
/// sign-in with a wrong password and a wrong code, a refused form, a registration attempt for an
/// existing email, a code exchange, userinfo and a refused token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_with_request_ids_and_no_personal_data() {
    use crate::support::web::WebClient;
    use crate::support::{Backend, PASSWORD};
    let captured = Captured::default();
    tracing::subscriber::set_global_default(citizen_id::ops::telemetry::json_logs(captured.clone()))
        .expect("this test installs its process's log subscriber: run it with cargo nextest, a process per test");
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let p = app.partner("openid email phone", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    app.state.db.save_consent(&citizen.id, &p.client_id, "openid email phone", 0).await.unwrap();

    let mut web = WebClient::new(&app.base);
    web.get("/signin").await;
    assert_eq!(web.post("/signin", &[("email", &citizen.email), ("password", "not-the-password-9")]).await.status, 401);
    web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    let sms = app.next_code(&citizen.mobile).await;
    let wrong = if sms == "000000" { "000001" } else { "000000" };
    web.post("/signin/code", &[("code", wrong)]).await;
    web.post("/signin/code", &[("code", &sms)]).await;
    // A form without its CSRF token, and a registration for an email that has an account.
    let refused = reqwest::Client::new().post(app.url("/signin")).form(&[("email", citizen.email.as_str()), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let mut other = WebClient::new(&app.base);
    other.get("/register").await;
    other.post("/register", &[("email", &citizen.email)]).await;
    app.wait_for_template(&citizen.email, "account-already-exists").await;

    let c = code(&app, &mut web, &p, &[]).await;
    let (status, tokens) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.0, 200);
    // The code again, with a request id of the partner's own: refused, and logged with that id.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", p.redirect_uri.as_str()),
        ("code_verifier", VERIFIER),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion(&app, &p)),
    ];
    let again = reqwest::Client::new().post(app.url("/token")).header("x-request-id", "partner-req-42").form(&form).send().await.unwrap();
    assert_eq!((again.status().as_u16(), again.headers()["x-request-id"].to_str().unwrap()), (400, "partner-req-42"));

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).expect("UTF-8 logs");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["message"].is_string()), "every line has a level and a message");
    let refusal = lines.iter().find(|l| l["message"] == "token request refused").expect("the refused token request is logged");
    assert_eq!((refusal["error"].as_str(), refusal["span"]["request_id"].as_str()), (Some("invalid_grant"), Some("partner-req-42")));
    assert!(lines.iter().any(|l| l["message"] == "form refused by CSRF checks" && l["span"]["request_id"].is_string()));

    // Timestamps aside (their digits could match a code by chance), nothing personal or secret.
    let without_times: String = lines
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l.as_object_mut().unwrap().remove("timestamp");
            l.to_string()
        })
        .collect();
    // The store keeps the mobile in E.164; a citizen types it in the national form too.
    let national = format!("0{}", citizen.mobile.trim_start_matches("+44"));
    let secrets = [
        ("email", citizen.email.as_str()),
        ("mobile", citizen.mobile.as_str()),
        ("mobile without its country code", citizen.mobile.trim_start_matches("+44")),
        ("mobile in the national form", national.as_str()),
        ("password", citizen.password.as_str()),
        ("SMS code", sms.as_str()),
        ("authorization code", c.as_str()),
        ("access token", access),
        ("refresh token", tokens["refresh_token"].as_str().unwrap()),
        ("ID token", tokens["id_token"].as_str().unwrap()),
        ("citizen id", citizen.id.as_str()),
    ];
    for (what, secret) in secrets {
        assert!(!without_times.contains(secret), "the logs contain the {what}");
    }
}
