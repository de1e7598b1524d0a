//! Group commit of code redemptions (`store::group_commit`), on both databases: redemptions
//! that wait together run as one transaction (SQLite: set-based statements; PostgreSQL: one
//! statement), and each keeps the answer it would have had alone.

use citizen_id::clock;
use citizen_id::crypto::{random_token, sha256_hex};
use citizen_id::store::grants::{AssertionUse, CodeRedemption, GrantRecord, NewAuthorizationCode, NewRefreshToken};
use citizen_id::store::{Db, StoreError};

use crate::on_both_databases;
use crate::support::{TestApp, TestPartner};

type Redeeming = tokio::task::JoinHandle<Result<CodeRedemption, StoreError>>;

/// Three grants, "ga", "gb" and "gc", of one citizen to one partner, and a code for each.
async fn three_codes(app: &TestApp) -> (String, [String; 3]) {
    let partner = app.partner("openid", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let codes = codes_for(app, &partner, &citizen.id, ["ga", "gb", "gc"]).await;
    (partner.client_id, codes)
}

/// A grant of the citizen's to the partner, and its code, for each id.
pub(crate) async fn codes_for<const N: usize>(app: &TestApp, partner: &TestPartner, account_id: &str, ids: [&str; N]) -> [String; N] {
    let now = clock::now_ms();
    let mut codes = Vec::new();
    for id in ids {
        let grant = GrantRecord {
            id: id.into(),
            account_id: account_id.into(),
            client_id: partner.client_id.clone(),
            scope: "openid".into(),
            vot: "P0.Cp.Cd".into(),
            auth_time: now / 1000 - 5,
        };
        let code = random_token(32);
        let new = NewAuthorizationCode {
            code_hash: sha256_hex(&code),
            client_id: partner.client_id.clone(),
            redirect_uri: partner.redirect_uri.clone(),
            nonce: format!("nonce-{id}"),
            code_challenge: None,
            expires_at: now + 600_000,
            id_token_jti: random_token(16),
        };
        app.state.db.insert_grant_with_code(&grant, &new, now).await.unwrap();
        codes.push(code);
    }
    codes.try_into().unwrap_or_else(|_| unreachable!("one code per id"))
}

/// Redeems `code` in a task, as the token endpoint does, with assertion `jti` and refresh hash `rt`.
fn redeem(db: &Db, client_id: &str, code: &str, jti: &str, rt: &str) -> Redeeming {
    let (db, code_hash, rt) = (db.clone(), sha256_hex(code), rt.to_owned());
    let assertion = AssertionUse { client_id: client_id.into(), jti: jti.into(), expires_at: clock::now_ms() + 60_000 };
    tokio::spawn(async move {
        let now = clock::now_ms();
        let refresh = NewRefreshToken { token_hash: &rt, expires_at: now + 60_000 };
        db.redeem_code(&code_hash, now, now + 3_600_000, &assertion, Some(refresh)).await
    })
}

/// Queues the redemptions (code, jti, refresh token hash) in the order given while the queue is
/// held; then lets them run: as one batch.
async fn run_together(db: &Db, client_id: &str, redemptions: &[(&str, &str, &str)]) -> Vec<Result<CodeRedemption, StoreError>> {
    let held = db.hold_redemptions().await;
    queued_together(held, || db.redemptions_waiting(), redemptions.len(), |i| {
        let (code, jti, rt) = redemptions[i];
        redeem(db, client_id, code, jti, rt)
    })
    .await
}

/// Starts `start(0..n)` one after the other while `held` keeps a batch queue shut, each waiting
/// in the queue (as `waiting` counts) before the next starts, so that they queue in that order;
/// then opens the queue and returns their answers, in order.
pub(crate) async fn queued_together<T: Send + 'static>(
    held: tokio::sync::OwnedMutexGuard<()>,
    waiting: impl Fn() -> usize,
    n: usize,
    start: impl Fn(usize) -> tokio::task::JoinHandle<T>,
) -> Vec<T> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let queued = waiting() + 1;
        tasks.push(start(i));
        while waiting() < queued {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    drop(held);
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn outcome(r: &Result<CodeRedemption, StoreError>) -> &'static str {
    match r {
        Ok(CodeRedemption::Redeemed(_)) => "redeemed",
        Ok(CodeRedemption::Replayed) => "replayed",
        Ok(CodeRedemption::Invalid) => "invalid",
        Ok(CodeRedemption::AssertionReplayed) => "assertion replayed",
        Err(StoreError::Conflict) => "conflict",
        Err(_) => "error",
    }
}

async fn refresh_tokens_of(db: &Db, grant: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM refresh_tokens WHERE grant_id = $1").bind(grant).fetch_one(db.pool()).await.unwrap()
}

async fn redemptions_waiting_together_share_one_transaction_and_keep_their_own_answers(app: TestApp) {
    let (rp, [a, b, c]) = three_codes(&app).await;
    let db = &app.state.db;
    let before = db.redemption_counts();
    let results = run_together(
        db,
        &rp,
        &[
            (&a, "j1", "rt-a"),
            (&b, "j2", "rt-b"),
            // The same code again in the same batch: a replay.
            (&a, "j3", "rt-a2"),
            // A jti already used in this batch: refused, and code c is left as it was.
            (&c, "j1", "rt-c"),
            ("no-such-code", "j4", "rt-x"),
            (&c, "j5", "rt-c2"),
        ],
    )
    .await;
    let outcomes: Vec<_> = results.iter().map(outcome).collect();
    assert_eq!(outcomes, ["redeemed", "redeemed", "replayed", "assertion replayed", "invalid", "redeemed"]);
    let after = db.redemption_counts();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 6), "one transaction for six redemptions");
    // Each redeemed code got its own grant and refresh token; the replay stored none and
    // revoked the grant of the code it replayed.
    match &results[1] {
        Ok(CodeRedemption::Redeemed(r)) => assert_eq!((r.grant.id.as_str(), r.nonce.as_str()), ("gb", "nonce-gb")),
        other => panic!("{other:?}"),
    }
    match &results[5] {
        Ok(CodeRedemption::Redeemed(r)) => assert_eq!((r.grant.id.as_str(), r.nonce.as_str()), ("gc", "nonce-gc")),
        other => panic!("{other:?}"),
    }
    assert_eq!((refresh_tokens_of(db, "ga").await, refresh_tokens_of(db, "gb").await, refresh_tokens_of(db, "gc").await), (1, 1, 1));
    assert!(db.active_grant_with_subject("ga").await.unwrap().is_none(), "a replayed code revokes its grant");
    assert!(db.active_grant_with_subject("gb").await.unwrap().is_some() && db.active_grant_with_subject("gc").await.unwrap().is_some());
    // The jti the refused item carried stays used; the one it tried to spend is not taken by it.
    let again = redeem(db, &rp, &c, "j1", "rt-c3").await.unwrap();
    assert_eq!(outcome(&again), "assertion replayed");
}

async fn a_failing_redemption_fails_alone_and_writes_nothing(app: TestApp) {
    let (rp, [a, b, c]) = three_codes(&app).await;
    let db = &app.state.db;
    // A refresh token hash that is taken already makes b's INSERT fail, and so the batch.
    db.insert_refresh_token("taken", "gx", "openid", 0, clock::now_ms() + 60_000).await.unwrap();
    let before = db.redemption_counts();
    let results = run_together(db, &rp, &[(&a, "j1", "rt-a"), (&b, "j2", "taken"), (&c, "j3", "rt-c")]).await;
    assert_eq!(results.iter().map(outcome).collect::<Vec<_>>(), ["redeemed", "conflict", "redeemed"]);
    let after = db.redemption_counts();
    assert_eq!((after.0 - before.0, after.1 - before.1), (4, 6), "the batch, then each alone");
    // b's code, assertion and grant are as they were: it can be redeemed with a fresh token.
    assert_eq!(refresh_tokens_of(db, "gb").await, 0);
    let retry = redeem(db, &rp, &b, "j2", "rt-b").await.unwrap();
    assert_eq!(outcome(&retry), "redeemed");
    assert_eq!((refresh_tokens_of(db, "ga").await, refresh_tokens_of(db, "gb").await, refresh_tokens_of(db, "gc").await), (1, 1, 1));
    // Nothing is left open on the connection: an ordinary write goes through.
    db.revoke_grant("gc", clock::now_ms()).await.unwrap();
    assert!(db.active_grant_with_subject("gc").await.unwrap().is_none());
}

/// Two instances sharing the database (two pools), each batching its own redemptions, race for
/// one code, and then for one jti: each is won once, as with one redemption at a time.
async fn instances_racing_for_a_code_or_a_jti_win_it_once(app: TestApp) {
    let partner = app.partner("openid", &["P0.Cp.Cd"]).await;
    let citizen = app.citizen().await;
    let rp = partner.client_id.as_str();
    let one = &app.state.db;
    let other = Db::connect(&app.state.settings.database_url).await.unwrap();
    let sorted = |x: Result<CodeRedemption, StoreError>, y: Result<CodeRedemption, StoreError>| {
        let mut v = [outcome(&x), outcome(&y)];
        v.sort();
        v
    };
    for round in 0..5 {
        let ids = [format!("race-a-{round}"), format!("race-b-{round}"), format!("race-c-{round}")];
        let [a, b, c] = codes_for(&app, &partner, &citizen.id, [ids[0].as_str(), ids[1].as_str(), ids[2].as_str()]).await;
        let n = |s: &str| format!("{s}-{round}");
        let (x, y) = tokio::join!(redeem(one, rp, &a, &n("k1"), &n("rt1")), redeem(&other, rp, &a, &n("k2"), &n("rt2")));
        assert_eq!(sorted(x.unwrap(), y.unwrap()), ["redeemed", "replayed"], "one code from two instances");
        let (x, y) = tokio::join!(redeem(one, rp, &b, &n("k3"), &n("rt3")), redeem(&other, rp, &c, &n("k3"), &n("rt4")));
        assert_eq!(sorted(x.unwrap(), y.unwrap()), ["assertion replayed", "redeemed"], "one jti from two instances");
    }
}

on_both_databases!(
    redemptions_waiting_together_share_one_transaction_and_keep_their_own_answers,
    a_failing_redemption_fails_alone_and_writes_nothing,
    instances_racing_for_a_code_or_a_jti_win_it_once,
);
