//! Settings (F8) and erasure (F13): contact changes re-verified, connected services and
//! consent withdrawal, the data download, signing out everywhere, and deletion that leaves no
//! personal data behind.

use citizen_id::integrations::pds;
use sqlx::Row as _;

use crate::on_both_databases;
use crate::support::flows::sign_in;
use crate::support::protocol::{JWT_BEARER, assertion, code, exchange, signed_in, token, userinfo};
use crate::support::web::WebClient;
use crate::support::{Backend, Citizen, TestApp};

/// Every (table, text column) of the schema, read from the database itself.
async fn text_columns(app: &TestApp, backend: Backend) -> Vec<(String, String)> {
    let pool = app.state.db.pool();
    let mut out = Vec::new();
    match backend {
        Backend::Sqlite => {
            let tables = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetch_all(pool).await.unwrap();
            for t in tables {
                let table: String = t.get(0);
                let cols = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT name, type FROM pragma_table_info('{table}')"))).fetch_all(pool).await.unwrap();
                for c in cols {
                    let (name, ty): (String, String) = (c.get(0), c.get(1));
                    if ty.eq_ignore_ascii_case("TEXT") {
                        out.push((table.clone(), name));
                    }
                }
            }
        }
        Backend::Postgres => {
            let cols = sqlx::query("SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'text'")
                .fetch_all(pool)
                .await
                .unwrap();
            out = cols.iter().map(|c| (c.get::<String, _>(0), c.get::<String, _>(1))).collect();
        }
    }
    out
}

fn backend_of(app: &TestApp) -> Backend {
    match app.state.db.backend() {
        citizen_id::store::Backend::Sqlite => Backend::Sqlite,
        citizen_id::store::Backend::Postgres => Backend::Postgres,
    }
}

async fn deletion_leaves_no_personal_data(app: TestApp) {
    let p = app.partner("openid email phone", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (_, tokens) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    let page = web.get("/settings/delete").await;
    assert_eq!(page.heading(), "Delete your account");
    let page = web.post("/settings/delete", &[("password", "not-my-password-1")]).await;
    assert_eq!(page.status, 401, "deletion needs a fresh sign-in");
    let page = web.post("/settings/delete", &[("password", &citizen.password)]).await;
    assert_eq!(page.heading(), "Your account has been deleted");
    app.wait_for_template(&citizen.email, "account-deleted").await;

    assert_eq!(userinfo(&app, &access).await.0, 401, "access tokens die with the account");
    let (_, body) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion(&app, &p))]).await;
    assert_eq!(body["error"], "invalid_grant");

    let needles = [citizen.id.as_str(), citizen.email.as_str(), citizen.mobile.as_str()];
    for (table, column) in text_columns(&app, backend_of(&app)).await {
        for needle in needles {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1 OR {column} LIKE $2");
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(needle).bind(format!("%{needle}%")).fetch_one(app.state.db.pool()).await.unwrap().get(0);
            let allowed = if table == "audit_log" && column == "account_id" && needle == citizen.id { 1 } else { 0 };
            assert_eq!(n, allowed, "{table}.{column} still mentions the deleted citizen");
        }
    }
    let kept: String = sqlx::query("SELECT event FROM audit_log WHERE account_id = $1").bind(&citizen.id).fetch_one(app.state.db.pool()).await.unwrap().get(0);
    assert_eq!(kept, "account.deleted");
    assert_eq!(app.state.db.verify_audit_chain().await.unwrap(), None, "erasure keeps the audit chain intact");
}

async fn withdrawing_consent_stops_refresh_and_asks_again(app: TestApp) {
    let p = app.partner("openid email", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let mut web = signed_in(&app, &p, &citizen).await;
    let c = code(&app, &mut web, &p, &[]).await;
    let (_, tokens) = exchange(&app, &p, &c, &assertion(&app, &p)).await;
    let page = web.get("/settings/services").await;
    assert!(page.contains("Test partner") && page.contains("Your email address"), "{}", page.html);
    let page = web.post("/settings/services/withdraw", &[("client_id", &p.client_id)]).await;
    assert!(page.contains("You have stopped sharing your details"));
    let (_, body) = token(&app, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap()), ("client_assertion_type", JWT_BEARER), ("client_assertion", &assertion(&app, &p))]).await;
    assert_eq!(body["error"], "invalid_grant");
    let page = web.get(&crate::support::protocol::authorize_url(&app, &p, &[])).await;
    assert_eq!(page.heading(), "Share your details with Test partner", "the next sign-in asks again");
}

async fn a_new_mobile_is_verified_and_the_old_one_told(app: TestApp) {
    let citizen = app.citizen().await;
    let mut web = WebClient::new(&app.base);
    let page = web.get("/settings").await;
    assert_eq!(page.heading(), "Sign in", "settings need a sign-in");
    let page = sign_in(&app, &mut web, &citizen).await;
    assert_eq!(page.heading(), "Your Citizen ID account", "and come back to settings after it");
    web.get("/settings/mobile").await;
    let page = web.post("/settings/mobile", &[("mobile", "07700 900777")]).await;
    assert_eq!(page.heading(), "Enter the security code");
    let page = web.post("/settings/mobile/code", &[("code", "000000")]).await;
    assert_eq!(page.status, 401);
    assert_eq!(app.state.db.account(&citizen.id).await.unwrap().unwrap().mobile.as_deref(), Some(citizen.mobile.as_str()), "unchanged until verified");
    let code = app.next_code("+447700900777").await;
    let page = web.post("/settings/mobile/code", &[("code", &code)]).await;
    assert!(page.contains("Your mobile phone number has been changed"));
    assert_eq!(app.state.db.account(&citizen.id).await.unwrap().unwrap().mobile.as_deref(), Some("+447700900777"));
    app.wait_for_template(&citizen.mobile, "mobile-changed").await;

    let res = web.get("/settings/download").await;
    let data: serde_json::Value = serde_json::from_str(&res.html).unwrap();
    assert_eq!(data["account"]["mobile"], "+447700900777");
    assert_eq!(data["account"]["email"], citizen.email.as_str());

    let page = web.post("/settings/sign-out-everywhere", &[]).await;
    assert_eq!(page.heading(), "You have signed out on every device");
    let page = web.get("/settings").await;
    assert_eq!(page.heading(), "Sign in");
}

/// A P9 citizen whose mobile is on PDS (documented patient Sarah Thompson), signed in.
pub(crate) async fn p9_citizen(app: &TestApp) -> (Citizen, WebClient, pds::PdsPatient) {
    let patient = pds::dataset::documented_patients().into_iter().find(|p| p.family_name == "Thompson").unwrap();
    let citizen = app.citizen_with_mobile(patient.mobile.as_deref().unwrap()).await;
    let mut web = WebClient::new(&app.base);
    sign_in(app, &mut web, &citizen).await;
    web.get("/prove-identity").await;
    let (y, m, d) = (&patient.birth_date[0..4], &patient.birth_date[5..7], &patient.birth_date[8..10]);
    let page = web
        .post(
            "/prove-identity/details",
            &[("given_name", "Sarah"), ("family_name", "Thompson"), ("dob_day", d), ("dob_month", m), ("dob_year", y), ("postcode", patient.postcode.as_deref().unwrap()), ("nhs_number", "")],
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(app.state.db.account(&citizen.id).await.unwrap().unwrap().proofing_level, "P9");
    (citizen, web, patient)
}

async fn the_pds_update_is_all_or_nothing(app: TestApp) {
    let (citizen, mut web, patient) = p9_citizen(&app).await;
    let page = web.get("/settings").await;
    assert!(page.contains("Contact details on your NHS record"), "P9 shows PDS contact details");
    web.get("/settings/mobile").await;
    web.post("/settings/mobile", &[("mobile", "07700 900555"), ("remember", "yes")]).await;
    let code = app.next_code("+447700900555").await;
    app.pds_sim.set_mode(pds::simulator::SimMode::Fail500);
    let page = web.post("/settings/mobile/code", &[("code", &code)]).await;
    assert_eq!(page.heading(), "Sorry, we could not update your NHS record");
    app.pds_sim.set_mode(pds::simulator::SimMode::Ok);
    assert_eq!(app.state.db.account(&citizen.id).await.unwrap().unwrap().mobile, patient.mobile, "login mobile unchanged");
    assert_eq!(app.pds_sim.patient(&patient.nhs_number).unwrap().mobile, patient.mobile, "PDS unchanged");

    web.get("/settings/mobile").await;
    web.post("/settings/mobile", &[("mobile", "07700 900555"), ("remember", "yes")]).await;
    let code = app.next_code("+447700900555").await;
    let page = web.post("/settings/mobile/code", &[("code", &code)]).await;
    assert!(page.contains("Your mobile phone number has been changed"), "{}", page.heading());
    assert_eq!(app.pds_sim.patient(&patient.nhs_number).unwrap().mobile.as_deref(), Some("+447700900555"), "PDS updated");
    assert_eq!(app.state.db.account(&citizen.id).await.unwrap().unwrap().mobile.as_deref(), Some("+447700900555"), "and the login details");
}

on_both_databases!(
    deletion_leaves_no_personal_data,
    withdrawing_consent_stops_refresh_and_asks_again,
    a_new_mobile_is_verified_and_the_old_one_told,
    the_pds_update_is_all_or_nothing,
);
