//! Proving identity cannot be done by guessing, and what it asserts is what PDS and the GP
//! system say (issue 15 items 5, 6, 7 and 14), over HTTP against the PDS and GP simulators.

use citizen_id::integrations::pds::{self, PdsPatient};

use crate::on_both_databases;
use crate::proofing::{details, send_amnv_code};
use crate::support::flows::sign_in;
use crate::support::protocol::{assertion, authorize_url, challenge, exchange};
use crate::support::web::{Page, WebClient};
use crate::support::{Citizen, TestApp, TestPartner, within_one_window};

fn patient(family: &str) -> PdsPatient {
    pds::dataset::documented_patients().into_iter().find(|p| p.family_name == family && p.superseded_by.is_none()).unwrap()
}


fn with(fields: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    fields.iter().map(|(k, v)| (*k, if *k == name { value.to_string() } else { v.clone() })).collect()
}

async fn post_details(web: &mut WebClient, fields: &[(&'static str, String)]) -> Page {
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    web.post("/prove-identity/details", &refs).await
}

/// The error summary of a form page: (field, message) pairs.
fn problems(page: &Page) -> Vec<(String, String)> {
    let Some(summary) = page.html.split("nhsuk-error-summary__list").nth(1) else { return vec![] };
    let summary = summary.split("</ul>").next().unwrap_or("");
    summary
        .split("<li><a href=\"#")
        .skip(1)
        .filter_map(|li| {
            let (field, rest) = li.split_once("\">")?;
            Some((field.to_string(), rest.split("</a>").next()?.to_string()))
        })
        .collect()
}

/// A citizen at P0, signed in, on the details page of proving from the account pages.
async fn prover(app: &TestApp, mobile: Option<&str>) -> (Citizen, WebClient) {
    let citizen = match mobile {
        Some(m) => app.citizen_with_mobile(m).await,
        None => app.citizen().await,
    };
    let mut web = WebClient::new(&app.base);
    sign_in(app, &mut web, &citizen).await;
    let page = web.get("/prove-identity").await;
    assert_eq!(page.heading(), "Enter your details");
    (citizen, web)
}

async fn level(app: &TestApp, citizen: &Citizen) -> (String, Option<String>) {
    let a = app.state.db.account(&citizen.id).await.unwrap().unwrap();
    (a.proofing_level, a.nhs_number)
}

/// The finding: a stranger's date of birth found by trying every day of a year. Now the
/// sixth try of the day is refused before PDS is asked, even with the right date, and the page
/// says when to come back and what else to do.
async fn guessing_a_date_of_birth_is_stopped_after_five_tries(app: TestApp) {
    let sarah = patient("Thompson");
    let (attacker, mut web) = prover(&app, None).await;
    within_one_window(citizen_id::clock::DAY, 60 * citizen_id::clock::SECOND).await;
    for (day, remaining) in (1..=5).zip((0..5).rev()) {
        let page = post_details(&mut web, &with(&details(&sarah), "dob_day", &day.to_string())).await;
        assert_eq!(page.status, 200, "try {day}");
        let told = match remaining {
            0 => "That was your last try for today.".to_string(),
            1 => "You can try 1 more time today.".to_string(),
            n => format!("You can try {n} more times today."),
        };
        assert!(page.contains(&told), "try {day}: {:?}", problems(&page));
    }
    let asked = app.pds_sim.requests_served();
    let page = post_details(&mut web, &details(&sarah)).await;
    assert_eq!(page.status, 429);
    assert_eq!(page.heading(), "You have tried to match your details too many times");
    assert!(page.contains("You can try again in "), "says when");
    assert!(page.contains("Adding your NHS number helps"), "says what else");
    assert!(page.contains("/prove-identity/stop"), "offers the way back to the service");
    assert_eq!(app.pds_sim.requests_served(), asked, "counted before PDS is asked: PDS never saw the sixth");
    assert_eq!(level(&app, &attacker).await, ("P0".to_string(), None), "nothing bound to the attacker");
    // Refused tries do not count: the wait stays what the page said.
    post_details(&mut web, &details(&sarah)).await;
    let events = app.state.db.audit_events_for(&attacker.id).await.unwrap();
    assert!(events.iter().filter(|(e, _)| e == "identity.match_limited").count() >= 2, "{events:?}");
}

/// Twenty guesses at once from one account: exactly five are let through to PDS.
async fn parallel_guesses_get_no_more_than_the_allowance(app: TestApp) {
    use citizen_id::proofing::uplift::{DemographicsOutcome, prove_with_demographics};
    let sarah = patient("Thompson");
    let citizen = app.citizen().await;
    let account = app.state.db.account(&citizen.id).await.unwrap().unwrap();
    within_one_window(citizen_id::clock::DAY, 60 * citizen_id::clock::SECOND).await;
    let guesses: Vec<_> = (1..=20)
        .map(|day| citizen_id::proofing::matching::Demographics {
            given_name: "Sarah".into(),
            family_name: "Thompson".into(),
            birth_date: domain::BirthDate::parse_iso(&format!("1985-04-{day:02}"), (2100, 1, 1)).unwrap(),
            postcode: domain::Postcode::parse(sarah.postcode.as_deref().unwrap()).unwrap(),
            nhs_number: None,
        })
        .collect();
    let outcomes = futures_util::future::join_all(guesses.iter().map(|g| prove_with_demographics(&app.state, &account, g, "192.0.2.7"))).await;
    let through = outcomes.iter().filter(|o| matches!(o, Ok(DemographicsOutcome::NoMatch { .. }))).count();
    let refused = outcomes.iter().filter(|o| matches!(o, Ok(DemographicsOutcome::TooManyAttempts { .. }))).count();
    assert_eq!((through, refused), (5, 15), "{outcomes:?}");
}

/// Many accounts from one address share that address's allowance (20 a day).
async fn one_address_gets_twenty_tries_a_day_across_accounts(app: TestApp) {
    let sarah = patient("Thompson");
    within_one_window(citizen_id::clock::DAY, 120 * citizen_id::clock::SECOND).await;
    let mut day = 0;
    for _ in 0..4 {
        let (_, mut web) = prover(&app, None).await;
        for _ in 0..5 {
            day += 1;
            let page = post_details(&mut web, &with(&details(&sarah), "dob_day", &day.to_string())).await;
            assert_eq!(page.status, 200, "try {day}");
        }
    }
    let (fifth, mut web) = prover(&app, None).await;
    let asked = app.pds_sim.requests_served();
    let page = post_details(&mut web, &details(&sarah)).await;
    assert_eq!((page.status.as_u16(), page.heading().as_str()), (429, "You have tried to match your details too many times"));
    assert_eq!(app.pds_sim.requests_served(), asked);
    assert_eq!(level(&app, &fifth).await.0, "P0", "a fresh account from the same address gets no more tries");
}

/// Whichever detail is wrong (or when several people share the details) the answer is the same:
/// one message on one field, so a guess tells nothing about which part was right.
async fn every_no_match_gets_the_same_answer(app: TestApp) {
    let sarah = patient("Thompson");
    let twin = pds::dataset::documented_patients().into_iter().find(|p| p.nhs_number.as_str() == "9990000077").unwrap();
    let oliver = patient("Bennett");
    let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        ("first name", with(&details(&sarah), "given_name", "Sandra")),
        ("last name", with(&details(&sarah), "family_name", "Thomson")),
        ("date of birth", with(&details(&sarah), "dob_day", "15")),
        ("postcode", with(&details(&sarah), "postcode", "LS2 7AA")),
        ("NHS number of someone else", with(&details(&sarah), "nhs_number", oliver.nhs_number.as_str())),
        ("several people", details(&twin)),
    ];
    let mut answers = Vec::new();
    // Five tries a day per account: three each on two accounts.
    for chunk in cases.chunks(3) {
        let (_, mut web) = prover(&app, None).await;
        for (what, fields) in chunk {
            let page = post_details(&mut web, fields).await;
            assert_eq!(page.status, 200, "{what}");
            let said: Vec<(String, String)> =
                problems(&page).into_iter().map(|(f, m)| (f, m.chars().filter(|c| !c.is_ascii_digit()).collect())).collect();
            assert!(!page.contains("more than one"), "{what}: several matches are not told apart");
            answers.push((what.to_string(), said));
        }
    }
    let first = answers[0].1.clone();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].1.starts_with("We could not match these details with an NHS record"), "{first:?}");
    for (what, said) in &answers {
        assert_eq!(said, &first, "the answer for a wrong {what} differs");
    }
}

/// Names are letters, spaces, hyphens and apostrophes: a FHIR search character is a field
/// error on the form and never reaches PDS; so is a malformed postcode.
async fn search_characters_in_a_name_never_reach_pds(app: TestApp) {
    let sarah = patient("Thompson");
    let (citizen, mut web) = prover(&app, None).await;
    let asked = app.pds_sim.requests_served();
    for name in ["*", "Tho*", "Th?mpson", "Thompson,Bennett", "$Thompson", "Thompson|x", "Thomp\\son", "Thompson:exact", "Th0mpson", "Thom_pson", "'-'"] {
        let page = post_details(&mut web, &with(&details(&sarah), "family_name", name)).await;
        assert_eq!(page.status, 400, "{name}");
        assert_eq!(
            problems(&page),
            [("family_name".to_string(), "Your last name must only include letters, spaces, hyphens and apostrophes".to_string())],
            "{name}"
        );
    }
    let page = post_details(&mut web, &with(&details(&sarah), "given_name", "S*")).await;
    assert_eq!(problems(&page)[0].0, "given_name");
    for postcode in ["LS1*", "LS1 4A?", "*"] {
        let page = post_details(&mut web, &with(&details(&sarah), "postcode", postcode)).await;
        assert_eq!((page.status.as_u16(), problems(&page)[0].0.as_str()), (400, "postcode"), "{postcode}");
    }
    assert_eq!(app.pds_sim.requests_served(), asked, "none of these was sent to PDS");
    // Refused input is not a try: the day's five are all still there, and real names pass.
    let page = post_details(&mut web, &with(&details(&sarah), "given_name", "Sarah")).await;
    assert_ne!(page.status, 400, "{:?}", problems(&page));
    assert_eq!(level(&app, &citizen).await.1.as_deref(), Some(sarah.nhs_number.as_str()));
}

/// What the name check lets through still matches as before: a typographic apostrophe (sent
/// as a plain one), and a superseded NHS number, which answers with the current record.
async fn real_names_and_superseded_numbers_still_match(app: TestApp) {
    let grace = patient("O'Neill");
    let (citizen, mut web) = prover(&app, None).await;
    let page = post_details(&mut web, &with(&details(&grace), "family_name", "O\u{2019}Neill")).await;
    assert_eq!(page.heading(), "Prove your identity to a high level", "{:?}", problems(&page));
    assert_eq!(level(&app, &citizen).await.1.as_deref(), Some(grace.nhs_number.as_str()));

    let priya = patient("Patel");
    let (citizen, mut web) = prover(&app, None).await;
    let page = post_details(&mut web, &with(&details(&priya), "nhs_number", "999 000 0050")).await;
    assert_eq!(page.heading(), "Prove your identity to a high level", "{:?}", problems(&page));
    assert_eq!(level(&app, &citizen).await, ("P5".to_string(), Some("9990000069".to_string())), "bound to the current number");
}

/// The hard stop (F7): the hint goes to the address on the account holding the NHS number,
/// never to the one trying; the one trying is told, on the page and by email, that it stopped.
async fn a_duplicate_is_told_to_the_holder_and_the_prover_hears_it_stopped(app: TestApp) {
    let sarah = patient("Thompson");
    let (holder, mut web) = prover(&app, None).await;
    post_details(&mut web, &details(&sarah)).await;
    assert_eq!(level(&app, &holder).await.1.as_deref(), Some(sarah.nhs_number.as_str()));

    let (other, mut web) = prover(&app, None).await;
    let page = post_details(&mut web, &details(&sarah)).await;
    assert_eq!((page.status.as_u16(), page.heading().as_str()), (409, "You already have an account"));
    assert!(page.contains("we have stopped this attempt"), "the page says it stopped");
    app.wait_for_template(&holder.email, "duplicate-account-hint").await;
    app.wait_for_template(&other.email, "proving-stopped").await;
    assert!(!app.templates_sent_to(&other.email).contains(&"duplicate-account-hint".to_string()), "the hint never goes to the prover");
    assert!(!app.templates_sent_to(&holder.email).contains(&"proving-stopped".to_string()));
    assert_eq!(level(&app, &other).await, ("P0".to_string(), None));
}

/// A partner asking for P9 with the phone scope; the citizen signs in and lands on the details.
async fn p9_request(app: &TestApp, mobile: &str) -> (TestPartner, Citizen, WebClient) {
    let scope = "openid profile phone";
    let p = app.partner(scope, &["P9.Cp.Cd", "P5.Cp.Cd"]).await;
    let citizen = app.citizen_with_mobile(mobile).await;
    app.state.db.save_consent(&citizen.id, &p.client_id, scope, 0).await.unwrap();
    let mut web = WebClient::new(&app.base);
    let c = challenge();
    web.get(&authorize_url(app, &p, &[("vtr", r#"["P9.Cp.Cd"]"#), ("scope", scope), ("code_challenge", &c), ("code_challenge_method", "S256")])).await;
    let page = sign_in(app, &mut web, &citizen).await;
    assert_eq!(page.heading(), "Enter your details");
    (p, citizen, web)
}

fn id_token_claims(tokens: &serde_json::Value) -> serde_json::Value {
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
    serde_json::from_slice(&citizen_id::crypto::b64url_decode(payload).unwrap()).unwrap()
}

async fn userinfo_of(app: &TestApp, tokens: &serde_json::Value) -> serde_json::Value {
    let res = reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The finding: the account's own number (+447700900222) went to the partner as PDS-matched
/// after a code to the PDS number (07700 900002). Now the number the code proved is the one
/// the partner gets, with the flag.
async fn amnv_asserts_the_number_on_pds(app: TestApp) {
    let oliver = patient("Bennett");
    let on_pds = oliver.mobile.clone().unwrap();
    let (p, citizen, mut web) = p9_request(&app, "+447700900222").await;
    let page = post_details(&mut web, &details(&oliver)).await;
    assert_eq!(page.heading(), "Prove your identity to a high level");
    let page = send_amnv_code(&mut web).await;
    assert!(page.contains("ending 0002"), "{}", page.heading());
    let code = app.next_code(&on_pds).await;
    let page = web.post("/prove-identity/mobile", &[("code", &code)]).await;
    assert_eq!(page.heading(), "Prove your identity to a high level", "AMNV does not raise the level");
    app.wait_for_template("+447700900222", "mobile-changed").await;
    // P9 through the GP online details, then the partner reads the claims.
    let creds = citizen_id::integrations::gp::documented_credentials().into_iter().find(|c| c.nhs_number == oliver.nhs_number.as_str()).unwrap();
    let page = web.post("/prove-identity/gp", &[("ods_code", &creds.ods_code), ("account_id", &creds.account_id), ("linkage_key", &creds.linkage_key)]).await;
    let code = page.param("code").unwrap_or_else(|| panic!("expected a code, got {}", page.heading()));
    let (status, tokens) = exchange(&app, &p, &code, &assertion(&app, &p)).await;
    assert_eq!(status, 200, "{tokens}");
    let info = userinfo_of(&app, &tokens).await;
    assert_eq!(info["phone_number_pds_matched"], true, "{info}");
    assert_eq!(info["phone_number"], on_pds.as_str(), "the flag describes the number released with it");
    let claims = id_token_claims(&tokens);
    if claims.get("phone_number").is_some() {
        assert_eq!(claims["phone_number"], on_pds.as_str());
    }
    assert_eq!(app.state.db.account(&citizen.id).await.unwrap().unwrap().mobile.as_deref(), Some(on_pds.as_str()));
}

/// IDVM (P9 at once) needs GP online registration (toolkit, user-journeys.md): Sarah has a GP
/// online linkage at her practice and is lifted; Mohammed, whose mobile also equals his PDS
/// mobile but who has no linkage, stays P5 and is offered the other routes; so is Sarah when the
/// GP system cannot answer.
async fn idvm_only_for_citizens_registered_for_gp_online_services(app: TestApp) {
    let sarah = patient("Thompson");
    let (p, citizen, mut web) = p9_request(&app, sarah.mobile.as_deref().unwrap()).await;
    let page = post_details(&mut web, &details(&sarah)).await;
    let code = page.param("code").unwrap_or_else(|| panic!("Sarah is lifted by IDVM, got {}", page.heading()));
    let (_, tokens) = exchange(&app, &p, &code, &assertion(&app, &p)).await;
    assert_eq!(id_token_claims(&tokens)["identity_proofing_level"], "P9");
    assert_eq!(level(&app, &citizen).await.0, "P9");

    let mohammed = patient("Ahmed-Khan");
    assert!(app.gp_sim.records().iter().all(|r| r.nhs_number != mohammed.nhs_number.as_str()), "no GP online linkage");
    let (_, citizen, mut web) = p9_request(&app, mohammed.mobile.as_deref().unwrap()).await;
    let page = post_details(&mut web, &details(&mohammed)).await;
    assert_eq!(page.heading(), "Prove your identity to a high level", "offered the other routes");
    let account = app.state.db.account(&citizen.id).await.unwrap().unwrap();
    assert_eq!((account.proofing_level.as_str(), account.phone_pds_matched), ("P5", false));
    let events = app.state.db.audit_events_for(&citizen.id).await.unwrap();
    assert!(!events.iter().any(|(e, d)| e == "identity.uplifted" && d.contains("\"idvm\"")), "{events:?}");

}

/// A GP system that cannot answer gives no IDVM, and no failure either: P5 and the other routes.
async fn no_idvm_when_the_gp_system_cannot_answer(app: TestApp) {
    let sarah = patient("Thompson");
    let (_, citizen, mut web) = p9_request(&app, sarah.mobile.as_deref().unwrap()).await;
    app.gp_sim.set_mode(citizen_id::integrations::gp::simulator::SimMode::Fail500);
    let page = post_details(&mut web, &details(&sarah)).await;
    app.gp_sim.set_mode(citizen_id::integrations::gp::simulator::SimMode::Ok);
    assert_eq!(page.heading(), "Prove your identity to a high level");
    assert_eq!(level(&app, &citizen).await.0, "P5");
}

/// The finding: the If-Match sent with a PDS update was the version read at proving time, so
/// any change on PDS since made every update fail. A change on PDS after proving no longer does.
async fn a_pds_update_works_after_the_record_changed_on_pds(app: TestApp) {
    let sarah = patient("Thompson");
    let (citizen, mut web) = prover(&app, sarah.mobile.as_deref()).await;
    post_details(&mut web, &details(&sarah)).await;
    assert_eq!(level(&app, &citizen).await.0, "P9");
    // The GP practice updates Sarah's email on PDS: the record's version moves on.
    let version = app.pds_sim.change_contact(&sarah.nhs_number, sarah.mobile.clone(), Some("sarah.new@example.com".into())).unwrap();
    assert!(version >= 2);
    web.get("/settings/mobile").await;
    web.post("/settings/mobile", &[("mobile", "07700 900555"), ("remember", "yes")]).await;
    let code = app.next_code("+447700900555").await;
    let page = web.post("/settings/mobile/code", &[("code", &code)]).await;
    assert!(page.contains("Your mobile phone number has been changed"), "{}", page.heading());
    let on_pds = app.pds_sim.patient(&sarah.nhs_number).unwrap();
    assert_eq!(on_pds.mobile.as_deref(), Some("+447700900555"), "PDS updated");
    assert_eq!(on_pds.email.as_deref(), Some("sarah.new@example.com"), "the other change on PDS is kept");
}

on_both_databases!(
    guessing_a_date_of_birth_is_stopped_after_five_tries,
    one_address_gets_twenty_tries_a_day_across_accounts,
    parallel_guesses_get_no_more_than_the_allowance,
    every_no_match_gets_the_same_answer,
    search_characters_in_a_name_never_reach_pds,
    real_names_and_superseded_numbers_still_match,
    a_duplicate_is_told_to_the_holder_and_the_prover_hears_it_stopped,
    amnv_asserts_the_number_on_pds,
    idvm_only_for_citizens_registered_for_gp_online_services,
    no_idvm_when_the_gp_system_cannot_answer,
    a_pds_update_works_after_the_record_changed_on_pds,
);
