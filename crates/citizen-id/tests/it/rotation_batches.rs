//! Group commit of refresh token rotations (`store::group_commit`), on both databases: rotations
//! that wait together run as one transaction, and each keeps the answer it would have had alone
//! (RFC 9700 4.14.2: a spent token coming back revokes its family, even from the same batch).

use citizen_id::clock;
use citizen_id::crypto::sha256_hex;
use citizen_id::store::grants::{AssertionUse, NewRefreshToken, RefreshRotation};
use citizen_id::store::{Db, StoreError};

use crate::on_both_databases;
use crate::redemption_batches::{codes_for, queued_together};
use crate::support::TestApp;

type Rotating = tokio::task::JoinHandle<Result<RefreshRotation, StoreError>>;

/// Grants of one citizen to one partner with the given ids, and a live refresh token for each
/// (the token is "rt-" and the grant id). Returns the partner's client_id.
async fn grants_with_refresh_tokens<const N: usize>(app: &TestApp, ids: [&str; N]) -> String {
    let partner = app.partner("openid", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    codes_for(app, &partner, &citizen.id, ids).await;
    let now = clock::now_ms();
    for id in ids {
        app.state.db.insert_refresh_token(&sha256_hex(&format!("rt-{id}")), id, "openid", now, now + 60_000).await.unwrap();
    }
    partner.client_id
}

/// Rotates `token` in a task, as the token endpoint does, with assertion `jti`; the next token's
/// hash is `next`.
fn rotate(db: &Db, client_id: &str, token: &str, jti: &str, next: &str) -> Rotating {
    let (db, token_hash, next) = (db.clone(), sha256_hex(token), sha256_hex(next));
    let assertion = AssertionUse { client_id: client_id.into(), jti: jti.into(), expires_at: clock::now_ms() + 60_000 };
    tokio::spawn(async move {
        let now = clock::now_ms();
        db.rotate_refresh_token(&token_hash, now, &assertion, NewRefreshToken { token_hash: &next, expires_at: now + 60_000 }).await
    })
}

/// Queues the rotations (token, jti, next token) in the order given while the queue is held;
/// then lets them run: as one batch.
async fn run_together(db: &Db, client_id: &str, rotations: &[(&str, &str, &str)]) -> Vec<Result<RefreshRotation, StoreError>> {
    let held = db.hold_rotations().await;
    queued_together(held, || db.rotations_waiting(), rotations.len(), |i| {
        let (token, jti, next) = rotations[i];
        rotate(db, client_id, token, jti, next)
    })
    .await
}

fn outcome(r: &Result<RefreshRotation, StoreError>) -> String {
    match r {
        Ok(RefreshRotation::Rotated { grant, .. }) => format!("rotated {}", grant.id),
        Ok(RefreshRotation::Reused) => "reused".into(),
        Ok(RefreshRotation::Invalid) => "invalid".into(),
        Ok(RefreshRotation::AssertionReplayed) => "assertion replayed".into(),
        Err(StoreError::Conflict) => "conflict".into(),
        Err(_) => "error".into(),
    }
}

async fn live(db: &Db, grant: &str) -> bool {
    db.active_grant_with_subject(grant).await.unwrap().is_some()
}

async fn rotations_waiting_together_share_one_transaction_and_keep_their_own_answers(app: TestApp) {
    let rp = grants_with_refresh_tokens(&app, ["ga", "gb", "gc"]).await;
    let db = &app.state.db;
    let before = db.rotation_counts();
    let results = run_together(
        db,
        &rp,
        &[
            ("rt-ga", "j1", "next-a"),
            ("rt-gb", "j2", "next-b"),
            // The same token again in the same batch: a reuse, which revokes ga's family.
            ("rt-ga", "j3", "next-a2"),
            // A jti already used in this batch: refused, and rt-gc is left unspent.
            ("rt-gc", "j1", "next-c"),
            ("no-such-token", "j4", "next-x"),
            ("rt-gc", "j5", "next-c2"),
        ],
    )
    .await;
    let outcomes: Vec<_> = results.iter().map(outcome).collect();
    assert_eq!(outcomes, ["rotated ga", "rotated gb", "reused", "assertion replayed", "invalid", "rotated gc"]);
    let after = db.rotation_counts();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 6), "one transaction for six rotations");
    assert!(!live(db, "ga").await, "a reused token revokes its grant");
    assert!(live(db, "gb").await && live(db, "gc").await);
    // The next tokens work (those of gb and gc), except ga's, whose family is revoked.
    let next: Vec<_> = [rotate(db, &rp, "next-a", "j6", "n2-a"), rotate(db, &rp, "next-b", "j7", "n2-b"), rotate(db, &rp, "next-c2", "j8", "n2-c")]
        .into_iter()
        .collect();
    let mut seen = Vec::new();
    for t in next {
        seen.push(outcome(&t.await.unwrap()));
    }
    assert_eq!(seen, ["invalid", "rotated gb", "rotated gc"]);
    // The jti the refused item carried stays used.
    assert_eq!(outcome(&rotate(db, &rp, "n2-c", "j1", "n3-c").await.unwrap()), "assertion replayed");
}

async fn a_failing_rotation_fails_alone_and_writes_nothing(app: TestApp) {
    let rp = grants_with_refresh_tokens(&app, ["ga", "gb", "gc"]).await;
    let db = &app.state.db;
    // A next-token hash that is taken already makes b's INSERT fail, and so the batch.
    db.insert_refresh_token(&sha256_hex("taken"), "gx", "openid", 0, clock::now_ms() + 60_000).await.unwrap();
    let before = db.rotation_counts();
    let results = run_together(db, &rp, &[("rt-ga", "j1", "next-a"), ("rt-gb", "j2", "taken"), ("rt-gc", "j3", "next-c")]).await;
    assert_eq!(results.iter().map(outcome).collect::<Vec<_>>(), ["rotated ga", "conflict", "rotated gc"]);
    let after = db.rotation_counts();
    assert_eq!((after.0 - before.0, after.1 - before.1), (4, 6), "the batch, then each alone");
    // b's token and assertion are as they were: the partner's retry rotates it, and its family lives.
    assert_eq!(outcome(&rotate(db, &rp, "rt-gb", "j2", "next-b").await.unwrap()), "rotated gb");
    assert!(live(db, "ga").await && live(db, "gb").await && live(db, "gc").await);
}

/// Two instances sharing the database (two pools), each batching its own rotations, race for
/// one token, and then for one jti: each is won once, as with one rotation at a time.
async fn instances_racing_for_a_token_or_a_jti_win_it_once(app: TestApp) {
    let one = &app.state.db;
    let other = Db::connect(&app.state.settings.database_url).await.unwrap();
    let sorted = |x: Result<RefreshRotation, StoreError>, y: Result<RefreshRotation, StoreError>| {
        let mut v = [outcome(&x), outcome(&y)];
        v.sort();
        v
    };
    for round in 0..5 {
        let ids = [format!("race-a-{round}"), format!("race-b-{round}"), format!("race-c-{round}")];
        let rp = grants_with_refresh_tokens(&app, [ids[0].as_str(), ids[1].as_str(), ids[2].as_str()]).await;
        let n = |s: &str| format!("{s}-{round}");
        let (a, b, c) = (format!("rt-{}", ids[0]), format!("rt-{}", ids[1]), format!("rt-{}", ids[2]));
        let (x, y) = tokio::join!(rotate(one, &rp, &a, &n("k1"), &n("n1")), rotate(&other, &rp, &a, &n("k2"), &n("n2")));
        assert_eq!(sorted(x.unwrap(), y.unwrap()), ["reused".to_string(), format!("rotated {}", ids[0])], "one token from two instances");
        let (x, y) = tokio::join!(rotate(one, &rp, &b, &n("k3"), &n("n3")), rotate(&other, &rp, &c, &n("k3"), &n("n4")));
        let won = sorted(x.unwrap(), y.unwrap());
        assert_eq!(won[0], "assertion replayed", "one jti from two instances: {won:?}");
        assert!(won[1] == format!("rotated {}", ids[1]) || won[1] == format!("rotated {}", ids[2]), "{won:?}");
    }
}

on_both_databases!(
    rotations_waiting_together_share_one_transaction_and_keep_their_own_answers,
    a_failing_rotation_fails_alone_and_writes_nothing,
    instances_racing_for_a_token_or_a_jti_win_it_once,
);
