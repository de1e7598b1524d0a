//! PDS: the real FHIR client against the bundled simulator over HTTP (SPEC F12), one scenario
//! per test, using the documented sandpit patients.

use std::time::{Duration, Instant};

use citizen_id::integrations::pds::simulator::{self, SimHandle, SimMode};
use citizen_id::integrations::pds::{
    HttpPdsClient, PdsClient, PdsError, PdsPatient, SearchQuery, dataset, is_uuid,
};
use domain::NhsNumber;
use serde_json::Value;

async fn start_with(
    patients: Vec<PdsPatient>,
    timeout: Duration,
) -> (HttpPdsClient, SimHandle, String) {
    let (addr, handle) = simulator::spawn("127.0.0.1:0".parse().unwrap(), patients)
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let client = HttpPdsClient::new(reqwest::Client::new(), &base, timeout).unwrap();
    (client, handle, base)
}

async fn start() -> (HttpPdsClient, SimHandle) {
    let (client, handle, _) =
        start_with(dataset::documented_patients(), Duration::from_secs(5)).await;
    (client, handle)
}

fn nhs(s: &str) -> NhsNumber {
    NhsNumber::parse(s).unwrap()
}

fn query(
    given: &str,
    family: &str,
    birthdate: &str,
    postcode: &str,
    fuzzy: bool,
    max_results: u8,
) -> SearchQuery {
    SearchQuery {
        family: family.into(),
        given: given.into(),
        birthdate: birthdate.into(),
        postcode: postcode.into(),
        fuzzy,
        max_results,
    }
}

fn numbers(found: &[PdsPatient]) -> Vec<&str> {
    found.iter().map(|p| p.nhs_number.as_str()).collect()
}

#[tokio::test]
async fn gets_a_patient_by_nhs_number_with_version_and_request_id() {
    let (pds, sim) = start().await;
    let p = pds.get_patient(&nhs("9990000018")).await.unwrap();
    assert_eq!(p.nhs_number.as_str(), "9990000018");
    assert_eq!(
        (p.given_name(), p.family_name.as_str()),
        ("Sarah", "Thompson")
    );
    assert_eq!(p.birth_date, "1985-03-14");
    assert_eq!(p.postcode.as_deref(), Some("LS1 4AP"));
    assert_eq!(p.gp_ods_code.as_deref(), Some("A12345"));
    assert_eq!(
        p.mobile.as_deref(),
        Some("+447700900001"),
        "PDS's national form is normalised to E.164"
    );
    assert_eq!(p.email.as_deref(), Some("sarah.thompson@example.com"));
    assert!(!p.restricted && !p.deceased && p.superseded_by.is_none());
    assert_eq!(p.version, "1");

    let first = sim
        .last_request_id()
        .expect("the simulator saw an X-Request-ID");
    assert!(
        is_uuid(&first) && first.as_bytes()[14] == b'4',
        "a v4 UUID: {first}"
    );
    pds.get_patient(&nhs("9990000018")).await.unwrap();
    let ids = sim.request_ids();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "a fresh X-Request-ID per request");
}

#[tokio::test]
async fn given_names_keep_middle_names_apart() {
    let (pds, _sim) = start().await;
    let p = pds.get_patient(&nhs("9990000026")).await.unwrap();
    assert_eq!(p.given_name(), "Oliver");
    assert_eq!(
        p.middle_names(),
        ["James".to_string(), "Matthew".to_string()]
    );
}

#[tokio::test]
async fn exact_search_finds_one_patient_ignoring_case() {
    let (pds, _sim) = start().await;
    let found = pds
        .search(&query(
            "Sarah",
            "Thompson",
            "1985-03-14",
            "LS1 4AP",
            false,
            5,
        ))
        .await
        .unwrap();
    assert_eq!(numbers(&found), ["9990000018"]);
    let found = pds
        .search(&query(
            "sarah",
            "THOMPSON",
            "1985-03-14",
            "ls14ap",
            false,
            1,
        ))
        .await
        .unwrap();
    assert_eq!(numbers(&found), ["9990000018"]);
}

#[tokio::test]
async fn fuzzy_search_tolerates_initials_and_punctuation() {
    let (pds, _sim) = start().await;
    let initial = query("S", "Thompson", "1985-03-14", "LS1 4AP", false, 5);
    assert!(
        pds.search(&initial).await.unwrap().is_empty(),
        "an initial is not an exact match"
    );
    let found = pds
        .search(&SearchQuery {
            fuzzy: true,
            ..initial
        })
        .await
        .unwrap();
    assert_eq!(numbers(&found), ["9990000018"]);

    let spaced = query("Mohammed", "Ahmed Khan", "1988-04-18", "E1 6AN", false, 5);
    assert!(pds.search(&spaced).await.unwrap().is_empty());
    let found = pds
        .search(&SearchQuery {
            fuzzy: true,
            ..spaced
        })
        .await
        .unwrap();
    assert_eq!(numbers(&found), ["9990000107"]);
}

#[tokio::test]
async fn no_match_is_an_empty_list() {
    let (pds, _sim) = start().await;
    let q = query("Sarah", "Thompson", "1985-03-15", "LS1 4AP", true, 5);
    assert_eq!(pds.search(&q).await, Ok(vec![]));
}

#[tokio::test]
async fn several_matches_are_all_returned_within_max_results() {
    let (pds, _sim) = start().await;
    let found = pds
        .search(&query(
            "Thomas",
            "Wright",
            "2001-01-15",
            "CF10 1EP",
            false,
            5,
        ))
        .await
        .unwrap();
    let mut got = numbers(&found);
    got.sort();
    assert_eq!(got, ["9990000077", "9990000085"]);
}

#[tokio::test]
async fn more_matches_than_max_results_is_too_many_matches() {
    let (pds, _sim, base) =
        start_with(dataset::documented_patients(), Duration::from_secs(5)).await;
    let q = query("Thomas", "Wright", "2001-01-15", "CF10 1EP", false, 1);
    assert_eq!(pds.search(&q).await, Err(PdsError::TooManyMatches));

    // The wire shape: HTTP 200, an empty searchset whose entry is the OperationOutcome.
    let url =
        format!("{base}/Patient?family=Wright&given=Thomas&birthdate=eq2001-01-15&_max-results=1");
    let res = reqwest::Client::new()
        .get(url)
        .header("X-Request-ID", uuid())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["total"], 0);
    assert_eq!(
        body["entry"][0]["resource"]["issue"][0]["details"]["coding"][0]["code"],
        "TOO_MANY_MATCHES"
    );
}

#[tokio::test]
async fn restricted_patient_has_no_address_contact_details_or_gp() {
    let (pds, _sim) = start().await;
    let p = pds.get_patient(&nhs("9990000034")).await.unwrap();
    assert!(p.restricted);
    assert_eq!(
        (
            p.given_name(),
            p.family_name.as_str(),
            p.birth_date.as_str()
        ),
        ("Emily", "Clarke", "1978-11-23")
    );
    assert_eq!(
        (p.postcode, p.mobile, p.email, p.gp_ods_code),
        (None, None, None, None)
    );

    // As in PDS, a search naming a postcode never returns a restricted patient...
    let with_postcode = query("Emily", "Clarke", "1978-11-23", "BS1 4DJ", false, 5);
    assert!(pds.search(&with_postcode).await.unwrap().is_empty());
    // ...while one without a postcode does, with the same details withheld.
    let found = pds
        .search(&SearchQuery {
            postcode: String::new(),
            ..with_postcode
        })
        .await
        .unwrap();
    assert_eq!(numbers(&found), ["9990000034"]);
    assert!(found[0].restricted && found[0].postcode.is_none() && found[0].mobile.is_none());
}

#[tokio::test]
async fn deceased_patient_is_flagged() {
    let (pds, _sim) = start().await;
    assert!(pds.get_patient(&nhs("9990000042")).await.unwrap().deceased);
    assert!(!pds.get_patient(&nhs("9990000018")).await.unwrap().deceased);
}

#[tokio::test]
async fn superseded_number_answers_with_the_current_record() {
    let (pds, _sim) = start().await;
    let p = pds.get_patient(&nhs("9990000050")).await.unwrap();
    assert_eq!(
        p.nhs_number.as_str(),
        "9990000069",
        "the record's own, newer number"
    );
    assert!(p.superseded_by.is_none());
    let found = pds
        .search(&query("Priya", "Patel", "1995-09-30", "B1 1BB", false, 5))
        .await
        .unwrap();
    assert_eq!(
        numbers(&found),
        ["9990000069"],
        "searches never return the superseded record"
    );
}

#[tokio::test]
async fn invalid_and_unknown_nhs_numbers() {
    let (pds, _sim) = start().await;
    assert_eq!(
        pds.get_patient_by_id("9990000019").await,
        Err(PdsError::InvalidResourceId),
        "bad check digit"
    );
    assert_eq!(
        pds.get_patient_by_id("12345").await,
        Err(PdsError::InvalidResourceId)
    );
    assert_eq!(
        pds.get_patient_by_id("999 000 0018").await,
        Err(PdsError::InvalidResourceId)
    );
    assert_eq!(
        pds.get_patient(&nhs("9990000115")).await,
        Err(PdsError::NotFound)
    );
}

#[tokio::test]
async fn server_errors_are_unavailable_and_recover() {
    let (pds, sim, base) = start_with(dataset::documented_patients(), Duration::from_secs(5)).await;
    let body = serde_json::json!({ "mode": "fail_500" });
    let res = reqwest::Client::new()
        .post(format!("{base}/_sim/mode"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sim.mode(), SimMode::Fail500);
    let err = pds.get_patient(&nhs("9990000018")).await.unwrap_err();
    assert!(
        matches!(&err, PdsError::Unavailable(m) if m.contains("500")),
        "{err:?}"
    );
    assert!(err.is_transient());
    let q = query("Sarah", "Thompson", "1985-03-14", "LS1 4AP", false, 5);
    assert!(matches!(
        pds.search(&q).await,
        Err(PdsError::Unavailable(_))
    ));

    sim.set_mode(SimMode::Ok);
    assert_eq!(numbers(&pds.search(&q).await.unwrap()), ["9990000018"]);
}

#[tokio::test]
async fn a_slow_pds_times_out_as_unavailable() {
    let (pds, sim, _) =
        start_with(dataset::documented_patients(), Duration::from_millis(200)).await;
    sim.set_slow_delay(Duration::from_secs(3));
    sim.set_mode(SimMode::Slow);
    let started = Instant::now();
    let err = pds.get_patient(&nhs("9990000018")).await.unwrap_err();
    assert!(matches!(err, PdsError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the client gave up at its timeout"
    );
}

#[tokio::test]
async fn updates_contact_details_at_the_records_current_version() {
    let (pds, sim) = start().await;
    let sarah = nhs("9990000018");
    let after = pds
        .update_contact(&sarah, Some("+447700900999"), Some("s.t@example.com"))
        .await
        .unwrap();
    assert_eq!(after.mobile.as_deref(), Some("+447700900999"));
    assert_eq!(after.email.as_deref(), Some("s.t@example.com"));
    assert_eq!(after.version, "2");
    assert_eq!(
        sim.patient(&sarah).unwrap().mobile.as_deref(),
        Some("+447700900999")
    );

    // Someone else changes the record on PDS: the next update reads version 3 and succeeds,
    // where an If-Match of a version read earlier would be refused.
    assert_eq!(
        sim.change_contact(&sarah, Some("+447700900999".into()), Some("other@example.com".into())),
        Some(3)
    );
    let email_only = pds
        .update_contact(&sarah, None, Some("sarah@example.com"))
        .await
        .unwrap();
    assert_eq!(
        (email_only.mobile.as_deref(), email_only.email.as_deref(), email_only.version.as_str()),
        (Some("+447700900999"), Some("sarah@example.com"), "4")
    );

    // A patient with no mobile on PDS gets one added.
    let grace = nhs("9990000093");
    let added = pds
        .update_contact(&grace, Some("+447700900321"), None)
        .await
        .unwrap();
    assert_eq!(added.mobile.as_deref(), Some("+447700900321"));
    assert_eq!(added.email.as_deref(), Some("grace.oneill@example.com"));
}

#[tokio::test]
async fn the_simulator_refuses_a_stale_if_match() {
    let (_pds, _sim, base) =
        start_with(dataset::documented_patients(), Duration::from_secs(5)).await;
    // As PDS does: so the tests above show the client sends the current version.
    let res = reqwest::Client::new()
        .patch(format!("{base}/Patient/9990000018"))
        .header("X-Request-ID", uuid())
        .header("If-Match", "W/\"0\"")
        .header("Content-Type", "application/json-patch+json")
        .body(r#"{"patches":[{"op":"add","path":"/telecom/-","value":{"system":"email","use":"home","value":"x@example.com"}}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn the_simulator_refuses_requests_without_a_request_id() {
    let (_pds, _sim, base) =
        start_with(dataset::documented_patients(), Duration::from_secs(5)).await;
    let res = reqwest::get(format!("{base}/Patient/9990000018"))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["issue"][0]["details"]["coding"][0]["code"],
        "MISSING_VALUE"
    );
}

#[tokio::test]
async fn generated_patients_are_found_through_the_index() {
    let generated: Vec<PdsPatient> = dataset::generate(20_000, 11).collect();
    let target = generated
        .iter()
        .rev()
        .find(|p| !p.restricted && p.superseded_by.is_none())
        .unwrap()
        .clone();
    let (pds, sim, _) = start_with(generated, Duration::from_secs(5)).await;
    assert_eq!(sim.len(), 20_000);
    let q = query(
        target.given_name(),
        &target.family_name,
        &target.birth_date,
        target.postcode.as_deref().unwrap(),
        false,
        50,
    );
    let found = pds.search(&q).await.unwrap();
    assert!(numbers(&found).contains(&target.nhs_number.as_str()));
}

fn uuid() -> String {
    citizen_id::integrations::pds::random_request_id()
}
