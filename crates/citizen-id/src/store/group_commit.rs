//! Group commit of code redemptions on SQLite: the token endpoint's writes, batched.
//!
//! Every code exchange writes three rows (the client assertion's `jti`, the consumed code, the
//! first refresh token). On SQLite one transaction costs far more than its rows: a hand-off to
//! the connection's worker thread and back, a WAL commit (frame writes, the wal-index), and its
//! share of checkpoints. Redemptions that arrive while another batch is running wait in a queue
//! and the next batch takes them all: one transaction and one hand-off for several exchanges.
//!
//! No timer and no waiting for company: a redemption that arrives when nothing is queued runs
//! at once, alone. The batch runs in a spawned task, so a client that disconnects mid-batch
//! cannot cancel the other clients' redemptions. Should a batch fail, it is rolled back and each
//! of its redemptions is run again alone, so an error reaches only the request that caused it.
//! The batch's SQL (`grants::sqlite_redeem_batch_sql`) is set-based: its statements do not grow
//! in number with the batch, since each statement and each row is a wake-up between threads.
//!
//! PostgreSQL does not use this: there one statement per redemption runs on one of several
//! connections, from several processes.

use std::collections::VecDeque;
use std::sync::Mutex;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::grants::{AssertionUse, bind_redemption, sqlite_redeem_batch_sql};
use super::{Db, Row, StoreError, StoreResult};

/// At most this many redemptions share one transaction (the batch SQL is built once per size).
pub(super) const MAX_BATCH: usize = 16;

/// One redemption's parameters, owned so that it can wait in the queue.
#[derive(Debug)]
pub(super) struct Redemption {
    pub code_hash: String,
    pub now: i64,
    pub id_token_expires_at: i64,
    pub assertion: AssertionUse,
    /// The first refresh token's hash and expiry, when the partner takes refresh tokens.
    pub refresh: Option<(String, i64)>,
}

/// What one redemption's statements returned (its rows only, from the whole batch's).
pub(super) type RedemptionRows = StoreResult<Vec<Row>>;

struct Waiting {
    redemption: Redemption,
    reply: oneshot::Sender<RedemptionRows>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// A drain task is running: it will take whatever is queued.
    draining: bool,
}

/// The queue of redemptions waiting for the SQLite connection.
#[derive(Debug, Default)]
pub(super) struct RedemptionQueue {
    queue: Mutex<Queue>,
    /// Transactions run, and redemptions run in them (retries alone included), for the tests;
    /// `/metrics` has the same two counts.
    #[cfg(test)]
    counts: (AtomicU64, AtomicU64),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("waiting", &self.waiting.len()).field("draining", &self.draining).finish()
    }
}

impl RedemptionQueue {
    /// (transactions, redemptions) run so far.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (u64, u64) {
        (self.counts.0.load(Ordering::Relaxed), self.counts.1.load(Ordering::Relaxed))
    }

    /// Counts a transaction of `n` redemptions.
    fn record(&self, n: usize) {
        metrics::counter!("citizen_id_code_redemption_transactions_total").increment(1);
        metrics::counter!("citizen_id_code_redemptions_total").increment(n as u64);
        #[cfg(test)]
        {
            self.counts.0.fetch_add(1, Ordering::Relaxed);
            self.counts.1.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves the queue itself consistent (push or drain).
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Should a drain task panic, the redemptions waiting are answered (dropped: "unavailable") and
/// the next arrival starts a new task, instead of all waiting for ever.
struct PanicGuard<'a>(&'a Db);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.redemptions.lock();
            q.waiting.clear();
            q.draining = false;
        }
    }
}

impl Db {
    /// Queues a redemption and waits for the batch that runs it.
    pub(super) async fn redeem_in_batch(&self, redemption: Redemption) -> RedemptionRows {
        let (reply, rx) = oneshot::channel();
        let start_drain = {
            let mut q = self.redemptions.lock();
            q.waiting.push_back(Waiting { redemption, reply });
            !std::mem::replace(&mut q.draining, true)
        };
        if start_drain {
            let db = self.clone();
            tokio::spawn(async move { db.drain_redemptions().await });
        }
        rx.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the redemption batch was abandoned".into())))
    }

    /// Runs batches until the queue is empty, then stops (the next arrival starts another).
    async fn drain_redemptions(&self) {
        let _unwind = PanicGuard(self);
        loop {
            let conn = self.pool().acquire().await;
            let batch: Vec<Waiting> = {
                let mut q = self.redemptions.lock();
                if q.waiting.is_empty() {
                    q.draining = false;
                    return;
                }
                let n = q.waiting.len().min(MAX_BATCH);
                q.waiting.drain(..n).collect()
            };
            let mut conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    let err = StoreError::from(e).to_string();
                    for w in batch {
                        let _ = w.reply.send(Err(StoreError::Unavailable(err.clone())));
                    }
                    continue;
                }
            };
            let (redemptions, replies): (Vec<Redemption>, Vec<_>) = batch.into_iter().map(|w| (w.redemption, w.reply)).unzip();
            match self.run_batch(&mut conn, &redemptions).await {
                Ok(mut rows) => {
                    for (reply, rows) in replies.into_iter().zip(rows.drain(..)) {
                        let _ = reply.send(Ok(rows));
                    }
                }
                // Alone, each redemption meets only its own error.
                Err(_) if redemptions.len() > 1 => {
                    for (redemption, reply) in redemptions.iter().zip(replies) {
                        let _ = reply.send(self.run_batch(&mut conn, std::slice::from_ref(redemption)).await.map(|mut r| r.remove(0)));
                    }
                }
                Err(e) => {
                    if let Some(reply) = replies.into_iter().next() {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// Runs `batch` in one transaction and returns each redemption's rows, in order. On error
    /// the transaction is rolled back (or the connection closed, should even that fail).
    async fn run_batch(&self, conn: &mut sqlx::pool::PoolConnection<sqlx::Any>, batch: &[Redemption]) -> StoreResult<Vec<Vec<Row>>> {
        use sqlx::Row as _;
        self.redemptions.record(batch.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sqlite_redeem_batch_sql(batch.len())));
        for r in batch {
            query = bind_redemption(query, r);
        }
        let rows = match query.fetch_all(&mut **conn).await {
            Ok(rows) => rows,
            Err(e) => {
                if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
                    // Never back to the pool with a transaction open.
                    conn.close_on_drop();
                }
                return Err(e.into());
            }
        };
        let mut per_item: Vec<Vec<Row>> = (0..batch.len()).map(|_| Vec::new()).collect();
        for row in rows {
            let item: i64 = row.try_get("item")?;
            let slot = usize::try_from(item).ok().and_then(|i| per_item.get_mut(i));
            slot.ok_or_else(|| StoreError::Corrupt(format!("redemption batch row for item {item}")))?.push(row);
        }
        Ok(per_item)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rsa::{KeyPair, KeySize};

    use crate::clock;
    use crate::crypto::sha256_hex;
    use crate::oidc::token::tests::{fixture, grant_code};
    use crate::store::grants::{AssertionUse, CodeRedemption, NewRefreshToken};
    use crate::store::{Db, StoreError};

    fn assertion(jti: &str) -> AssertionUse {
        AssertionUse { client_id: "rp".into(), jti: jti.into(), expires_at: clock::now_ms() + 60_000 }
    }

    /// Redeems `code` in a task, as the token endpoint does, with `jti` and refresh hash `rt`.
    fn redeem(db: &Db, code: &str, jti: &str, rt: &str) -> tokio::task::JoinHandle<Result<CodeRedemption, StoreError>> {
        let (db, code_hash, jti, rt) = (db.clone(), sha256_hex(code), jti.to_owned(), rt.to_owned());
        tokio::spawn(async move {
            let now = clock::now_ms();
            let refresh = NewRefreshToken { token_hash: &rt, expires_at: now + 60_000 };
            db.redeem_code(&code_hash, now, now + 3_600_000, &assertion(&jti), Some(refresh)).await
        })
    }

    /// Holds the only connection until `n` redemptions are queued behind it, so that they run
    /// as one batch once it is let go.
    async fn queue_behind_held_connection(
        db: &Db,
        n: usize,
        start: impl FnOnce() -> Vec<tokio::task::JoinHandle<Result<CodeRedemption, StoreError>>>,
    ) -> Vec<Result<CodeRedemption, StoreError>> {
        let held = db.pool().acquire().await.unwrap();
        let tasks = start();
        while db.redemptions.lock().waiting.len() < n {
            tokio::task::yield_now().await;
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

    /// A fixture with grants "ga", "gb" and "gc" for citizen "acct-1", and their codes.
    async fn three_codes() -> (crate::state::AppState, tempfile::TempDir, [String; 3]) {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (state, dir) = fixture(&key).await;
        let mut codes = Vec::new();
        for grant in ["ga", "gb", "gc"] {
            codes.push(grant_code(&state, grant, "openid", None).await);
        }
        (state, dir, codes.try_into().expect("three codes"))
    }

    async fn refresh_tokens_of(db: &Db, grant: &str) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM refresh_tokens WHERE grant_id = $1")
            .bind(grant)
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn redemptions_waiting_together_share_one_transaction_and_keep_their_own_answers() {
        let (state, _dir, [a, b, c]) = three_codes().await;
        let db = &state.db;
        let before = db.redemptions.counts();
        let results = queue_behind_held_connection(db, 6, || {
            vec![
                redeem(db, &a, "j1", "rt-a"),
                redeem(db, &b, "j2", "rt-b"),
                // The same code again in the same batch: a replay.
                redeem(db, &a, "j3", "rt-a2"),
                // A jti already used in this batch: refused, and code c is left as it was.
                redeem(db, &c, "j1", "rt-c"),
                redeem(db, "no-such-code", "j4", "rt-x"),
                redeem(db, &c, "j5", "rt-c2"),
            ]
        })
        .await;
        let outcomes: Vec<_> = results.iter().map(outcome).collect();
        assert_eq!(outcomes, ["redeemed", "redeemed", "replayed", "assertion replayed", "invalid", "redeemed"]);
        let after = db.redemptions.counts();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 6), "one transaction for six redemptions");
        // Each redeemed code got its own grant and refresh token; the replay stored none and
        // revoked the grant of the code it replayed.
        match &results[1] {
            Ok(CodeRedemption::Redeemed(r)) => {
                assert_eq!((r.grant.id.as_str(), r.subject.id.as_str(), r.nonce.as_str()), ("gb", "acct-1", "n-1"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((refresh_tokens_of(db, "ga").await, refresh_tokens_of(db, "gb").await, refresh_tokens_of(db, "gc").await), (1, 1, 1));
        assert!(db.active_grant("ga").await.unwrap().is_none(), "a replayed code revokes its grant");
        assert!(db.active_grant("gb").await.unwrap().is_some() && db.active_grant("gc").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_failing_redemption_fails_alone_and_writes_nothing() {
        let (state, _dir, [a, b, c]) = three_codes().await;
        let db = &state.db;
        // A refresh token hash that is taken already makes b's INSERT fail, and so the batch.
        db.insert_refresh_token("taken", "gx", "openid", 0, clock::now_ms() + 60_000).await.unwrap();
        let before = db.redemptions.counts();
        let results = queue_behind_held_connection(db, 3, || {
            vec![redeem(db, &a, "j1", "rt-a"), redeem(db, &b, "j2", "taken"), redeem(db, &c, "j3", "rt-c")]
        })
        .await;
        assert_eq!(results.iter().map(outcome).collect::<Vec<_>>(), ["redeemed", "conflict", "redeemed"]);
        let after = db.redemptions.counts();
        assert_eq!((after.0 - before.0, after.1 - before.1), (4, 6), "the batch, then each alone");
        // b's code, assertion and grant are as they were: it can be redeemed with a fresh token.
        assert_eq!(refresh_tokens_of(db, "gb").await, 0);
        let retry = redeem(db, &b, "j2", "rt-b").await.unwrap();
        assert_eq!(outcome(&retry), "redeemed");
        assert_eq!((refresh_tokens_of(db, "ga").await, refresh_tokens_of(db, "gb").await, refresh_tokens_of(db, "gc").await), (1, 1, 1));
        // Nothing is left open on the connection: an ordinary write goes through.
        db.revoke_grant("gc", clock::now_ms()).await.unwrap();
        assert!(db.active_grant("gc").await.unwrap().is_none());
    }
}
