//! Storage promises: one schema in two dialects, and a tamper-evident audit trail.

use crate::on_both_databases;
use crate::support::TestApp;

#[test]
fn both_backends_have_the_same_migration_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let names = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(format!("{dir}/{b}")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
    assert!(!names("sqlite").is_empty());
}

async fn the_audit_trail_detects_tampering(app: TestApp) {
    let citizen = app.citizen().await;
    let ip = "192.0.2.1";
    citizen_id::accounts::signin::audit(&app.state, "test.one", Some(&citizen.id), ip, serde_json::json!({})).await;
    citizen_id::accounts::signin::audit(&app.state, "test.two", Some(&citizen.id), ip, serde_json::json!({})).await;
    assert_eq!(app.state.db.verify_audit_chain().await.unwrap(), None);
    sqlx::query("UPDATE audit_log SET event = 'test.edited' WHERE event = 'test.one'").execute(app.state.db.pool()).await.unwrap();
    assert!(app.state.db.verify_audit_chain().await.unwrap().is_some(), "an edited row breaks the chain");
}

on_both_databases!(the_audit_trail_detects_tampering);
