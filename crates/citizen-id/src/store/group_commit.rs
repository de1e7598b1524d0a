//! Group commit of code redemptions: the token endpoint's writes, batched.
//!
//! Every code exchange writes three rows (the client assertion's `jti`, the consumed code, the
//! first refresh token). One transaction costs far more than its rows: on SQLite a hand-off to
//! the connection's worker thread and back, a WAL commit (frame writes, the wal-index), and its
//! share of checkpoints; on PostgreSQL a round trip, planning, and a commit that waits for its
//! WAL flush. Redemptions that arrive while another batch is running wait in a queue and the
//! next batch takes them all: one transaction and one hand-off for several exchanges.
//!
//! No timer and no waiting for company: a redemption that arrives when nothing is queued runs
//! at once, alone. The batch runs in a spawned task, so a client that disconnects mid-batch
//! cannot cancel the other clients' redemptions. Should a batch fail, it is rolled back and each
//! of its redemptions is run again alone, so an error reaches only the request that caused it.
//! The batch's SQL (`grants::sqlite_redeem_batch_sql`) is set-based: its statements do not grow
//! in number with the batch, since each statement and each row is a wake-up between threads.
//!
//! On PostgreSQL a batch is one statement (`grants::postgres_redeem_batch_sql`), and each
//! serving process batches its own redemptions: the rules hold across processes through the
//! rows' unique keys and locks, as they do for one redemption alone. Measured with the database
//! on the server's core (`docs/benchmarks.md`): its backends' CPU per exchange fell from about
//! 350-440 µs to 110-200 µs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::grants::{AssertionUse, bind_redemption, postgres_redeem_batch_sql, sqlite_redeem_batch_sql};
use super::{Backend, Db, Row, StoreError, StoreResult};

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

/// The queue of redemptions waiting for the database.
#[derive(Debug, Default)]
pub(super) struct RedemptionQueue {
    queue: Mutex<Queue>,
    /// Transactions run, and redemptions run in them (retries alone included), for the tests;
    /// `/metrics` has the same two counts.
    counts: (AtomicU64, AtomicU64),
    /// Taken by the drain task around each batch; a test holds it to make arrivals queue up.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("waiting", &self.waiting.len()).field("draining", &self.draining).finish()
    }
}

impl RedemptionQueue {
    /// Counts a transaction of `n` redemptions.
    fn record(&self, n: usize) {
        metrics::counter!("citizen_id_code_redemption_transactions_total").increment(1);
        metrics::counter!("citizen_id_code_redemptions_total").increment(n as u64);
        self.counts.0.fetch_add(1, Ordering::Relaxed);
        self.counts.1.fetch_add(n as u64, Ordering::Relaxed);
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
    /// (transactions, redemptions) this process has run (retries alone included). For tests;
    /// `/metrics` has the same counts.
    #[doc(hidden)]
    pub fn redemption_counts(&self) -> (u64, u64) {
        let c = &self.redemptions.counts;
        (c.0.load(Ordering::Relaxed), c.1.load(Ordering::Relaxed))
    }

    /// For tests: while the guard lives, redemptions queue instead of running; let go, they run
    /// together (up to `MAX_BATCH` a batch).
    #[doc(hidden)]
    pub async fn hold_redemptions(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.redemptions.gate.clone().lock_owned().await
    }

    /// Redemptions queued and not yet taken by a batch (tests).
    #[doc(hidden)]
    pub fn redemptions_waiting(&self) -> usize {
        self.redemptions.lock().waiting.len()
    }

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
            let _gate = self.redemptions.gate.lock().await;
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
        let sqlite = self.backend() == Backend::Sqlite;
        let sql = if sqlite { sqlite_redeem_batch_sql(batch.len()) } else { postgres_redeem_batch_sql(batch.len()) };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in batch {
            query = bind_redemption(query, r);
        }
        let rows = super::fetch_all_or_roll_back(conn, query, sqlite).await?;
        let mut per_item: Vec<Vec<Row>> = (0..batch.len()).map(|_| Vec::new()).collect();
        for row in rows {
            let item: i64 = row.try_get("item")?;
            let slot = usize::try_from(item).ok().and_then(|i| per_item.get_mut(i));
            slot.ok_or_else(|| StoreError::Corrupt(format!("redemption batch row for item {item}")))?.push(row);
        }
        Ok(per_item)
    }
}
