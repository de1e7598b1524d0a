//! GP linkage keys (SPEC F6 POL, F12): the real HTTP client against the simulator on a
//! loopback port, so the wire format, status mapping and timeouts are exercised for real.

use std::time::Duration;

use citizen_id::integrations::gp::client::HttpGpLinkageClient;
use citizen_id::integrations::gp::simulator::{self, SimHandle, SimMode};
use citizen_id::integrations::gp::{
    GpCredentials, GpCredentialsError, GpError, GpLinkageClient, LinkageRecord,
    documented_credentials,
};

/// A simulator seeded with the documented credentials and a client for it.
async fn gp(timeout: Duration) -> (HttpGpLinkageClient, SimHandle) {
    let addr = "127.0.0.1:0".parse().unwrap();
    let (addr, sim) = simulator::spawn(addr, documented_credentials())
        .await
        .unwrap();
    let client =
        HttpGpLinkageClient::new(reqwest::Client::new(), &format!("http://{addr}/"), timeout)
            .unwrap();
    (client, sim)
}

async fn default_gp() -> (HttpGpLinkageClient, SimHandle) {
    gp(Duration::from_secs(5)).await
}

fn documented(nhs: &str) -> LinkageRecord {
    documented_credentials()
        .into_iter()
        .find(|r| r.nhs_number == nhs)
        .unwrap()
}

fn creds(r: &LinkageRecord) -> GpCredentials {
    r.credentials().unwrap()
}

#[test]
fn documented_credentials_are_well_formed_and_use_valid_nhs_numbers() {
    let records = documented_credentials();
    let nhs: Vec<&str> = records.iter().map(|r| r.nhs_number.as_str()).collect();
    assert_eq!(nhs, ["9990000018", "9990000026", "9990000093"]);
    for r in &records {
        domain::NhsNumber::parse(&r.nhs_number).expect("Modulus 11");
        let c = creds(r);
        assert_eq!(
            (c.ods_code(), c.account_id(), c.linkage_key()),
            (&*r.ods_code, &*r.account_id, &*r.linkage_key)
        );
    }
}

#[tokio::test]
async fn creates_a_linkage_key_then_retrieves_it() {
    let (client, sim) = default_gp().await;
    let created = client
        .create_linkage_key("A12345", "9434765919")
        .await
        .unwrap();
    assert_eq!(
        (created.nhs_number.as_str(), created.ods_code.as_str()),
        ("9434765919", "A12345")
    );
    assert_eq!(created.linkage_key.len(), 15);
    assert!(
        created
            .linkage_key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert_eq!(created.account_id.len(), 9);
    assert!(created.account_id.bytes().all(|b| b.is_ascii_digit()));

    let got = client
        .get_linkage_key("a12345", "943 476 5919")
        .await
        .unwrap();
    assert_eq!(got, created);
    assert_eq!(sim.record("A12345", "9434765919"), Some(created.clone()));

    // Creating again (say, a retry after a lost response) hands back the same key.
    let again = client
        .create_linkage_key("A12345", "9434765919")
        .await
        .unwrap();
    assert_eq!(again, created);
}

#[tokio::test]
async fn retrieves_a_documented_linkage_key() {
    let (client, _sim) = default_gp().await;
    let got = client
        .get_linkage_key("G78901", "9990000093")
        .await
        .unwrap();
    assert_eq!(got, documented("9990000093"));
}

#[tokio::test]
async fn get_without_a_linkage_key_is_not_found() {
    let (client, _sim) = default_gp().await;
    let err = client
        .get_linkage_key("A12345", "9434765919")
        .await
        .unwrap_err();
    assert_eq!(err, GpError::NotFound);
}

#[tokio::test]
async fn verify_matches_the_patients_own_credentials() {
    let (client, _sim) = default_gp().await;
    for r in documented_credentials() {
        client.verify(&creds(&r), &r.nhs_number).await.unwrap();
    }
}

#[tokio::test]
async fn verify_matches_a_newly_created_linkage_key() {
    let (client, _sim) = default_gp().await;
    let created = client
        .create_linkage_key("G78901", "9434765919")
        .await
        .unwrap();
    client.verify(&creds(&created), "9434765919").await.unwrap();
}

#[tokio::test]
async fn verify_with_a_wrong_linkage_key_is_a_mismatch() {
    let (client, _sim) = default_gp().await;
    let r = documented("9990000018");
    let wrong = GpCredentials::parse(&r.ods_code, &r.account_id, "AAAAAAAAAAAAAAA").unwrap();
    assert_eq!(
        client.verify(&wrong, "9990000018").await,
        Err(GpError::Mismatch)
    );
}

#[tokio::test]
async fn verify_with_a_wrong_account_id_is_a_mismatch() {
    let (client, _sim) = default_gp().await;
    let r = documented("9990000018");
    let wrong = GpCredentials::parse(&r.ods_code, "100000999", &r.linkage_key).unwrap();
    assert_eq!(
        client.verify(&wrong, "9990000018").await,
        Err(GpError::Mismatch)
    );
}

#[tokio::test]
async fn verify_with_another_patients_credentials_is_a_mismatch() {
    let (client, _sim) = default_gp().await;
    // Same practice: 9990000026's credentials presented for 9990000018.
    let other = creds(&documented("9990000026"));
    assert_eq!(
        client.verify(&other, "9990000018").await,
        Err(GpError::Mismatch)
    );
    // A patient with no linkage at that practice at all.
    assert_eq!(
        client.verify(&other, "9434765919").await,
        Err(GpError::Mismatch)
    );
}

#[tokio::test]
async fn verify_accepts_the_key_as_a_citizen_types_it() {
    let (client, _sim) = default_gp().await;
    let r = documented("9990000018");
    let typed = GpCredentials::parse(" a12345", "100 000 001", "k7qf 2m9x-tr4b 8wn").unwrap();
    client.verify(&typed, &r.nhs_number).await.unwrap();
}

#[tokio::test]
async fn unknown_practice_is_reported_by_every_operation() {
    let (client, _sim) = default_gp().await;
    let r = documented("9990000018");
    let elsewhere = GpCredentials::parse("Z99999", &r.account_id, &r.linkage_key).unwrap();
    assert_eq!(
        client.verify(&elsewhere, "9990000018").await,
        Err(GpError::PracticeUnknown)
    );
    assert_eq!(
        client.get_linkage_key("Z99999", "9990000018").await,
        Err(GpError::PracticeUnknown)
    );
    assert_eq!(
        client.create_linkage_key("Z99999", "9990000018").await,
        Err(GpError::PracticeUnknown)
    );
}

#[tokio::test]
async fn malformed_input_is_refused_before_sending() {
    let (client, _sim) = default_gp().await;
    let err = client
        .get_linkage_key("A12345", "9000000001")
        .await
        .unwrap_err();
    assert!(matches!(err, GpError::Invalid(_)), "{err:?}");
    let err = client
        .create_linkage_key("../x", "9990000018")
        .await
        .unwrap_err();
    assert!(matches!(err, GpError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let (client, sim) = default_gp().await;
    sim.set_mode(SimMode::Fail500);
    let r = documented("9990000018");
    let err = client.verify(&creds(&r), "9990000018").await.unwrap_err();
    assert!(
        matches!(&err, GpError::Unavailable(m) if m.contains("500")),
        "{err:?}"
    );
    assert!(err.is_transient());
    let err = client
        .get_linkage_key("A12345", "9990000018")
        .await
        .unwrap_err();
    assert!(matches!(err, GpError::Unavailable(_)), "{err:?}");

    sim.set_mode(SimMode::Ok);
    client.verify(&creds(&r), "9990000018").await.unwrap();
}

#[tokio::test]
async fn failure_mode_can_be_set_over_http() {
    let (client, sim) = default_gp().await;
    let base = client.base_url().to_owned();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/_sim/mode"))
        .json(&serde_json::json!({"mode": "fail_500"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(sim.mode(), SimMode::Fail500);
    let err = client
        .get_linkage_key("A12345", "9990000018")
        .await
        .unwrap_err();
    assert!(matches!(err, GpError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_slow_gp_system_times_out_as_unavailable() {
    let (client, sim) = gp(Duration::from_millis(200)).await;
    sim.set_slow_delay(Duration::from_secs(3));
    sim.set_mode(SimMode::Slow);
    let r = documented("9990000018");
    let started = std::time::Instant::now();
    let err = client.verify(&creds(&r), "9990000018").await.unwrap_err();
    assert!(
        matches!(&err, GpError::Unavailable(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_gp_system_is_unavailable() {
    // Bind then drop a listener so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = HttpGpLinkageClient::new(
        reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
    )
    .unwrap();
    let err = client
        .get_linkage_key("A12345", "9990000018")
        .await
        .unwrap_err();
    assert!(matches!(err, GpError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn requests_carry_a_request_id() {
    let (client, _sim) = default_gp().await;
    let base = client.base_url().to_owned();
    let http = reqwest::Client::new();
    // Without the header the simulator refuses the call...
    let res = http
        .get(format!("{base}/practices/A12345/linkage-keys/9990000018"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // ...so the client's successful call proves it sent one; the simulator echoes it.
    client
        .get_linkage_key("A12345", "9990000018")
        .await
        .unwrap();
    let res = http
        .get(format!("{base}/practices/A12345/linkage-keys/9990000018"))
        .header("X-Request-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}

#[test]
fn parses_well_formed_credentials() {
    let c = GpCredentials::parse("A12345", "100000001", "K7QF2M9XTR4B8WN").unwrap();
    assert_eq!(
        (c.ods_code(), c.account_id(), c.linkage_key()),
        ("A12345", "100000001", "K7QF2M9XTR4B8WN")
    );
}

#[test]
fn normalises_a_lowercase_linkage_key_with_spaces() {
    let c = GpCredentials::parse("G78901", "200000003", " w9gn 4t7k-ax3r m6s ").unwrap();
    assert_eq!(c.linkage_key(), "W9GN4T7KAX3RM6S");
    assert_eq!(c, creds(&documented("9990000093")));
}

#[test]
fn refuses_a_bad_ods_code_with_a_plain_message() {
    for bad in ["A1", "A1234567", "A12 45", "A12-45"] {
        let err = GpCredentials::parse(bad, "100000001", "K7QF2M9XTR4B8WN").unwrap_err();
        assert_eq!(err, GpCredentialsError::OdsCodeInvalid, "{bad:?}");
    }
    let err = GpCredentials::parse("", "100000001", "K7QF2M9XTR4B8WN").unwrap_err();
    assert_eq!(err.to_string(), "Enter your GP surgery's ODS code");
    assert_eq!(err.field(), "ods_code");
}

#[test]
fn debug_output_hides_secrets() {
    let r = documented("9990000018");
    let shown = format!("{r:?} {:?}", creds(&r));
    assert!(
        !shown.contains(&r.linkage_key) && !shown.contains(&r.nhs_number),
        "{shown}"
    );
}
