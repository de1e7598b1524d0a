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
