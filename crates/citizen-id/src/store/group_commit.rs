//! Group commit of the token endpoint's writes: code redemptions, and refresh rotations, each
//! kind batched with its own kind.
//!
//! Every code exchange writes three rows (the client assertion's `jti`, the consumed code, the
//! first refresh token), and so does every rotation (the `jti`, the spent token, the next one).
//! One transaction costs far more than its rows: on SQLite a hand-off to the connection's worker
//! thread and back, a WAL commit (frame writes, the wal-index), and its share of checkpoints; on
//! PostgreSQL a round trip, planning, and a commit that waits for its WAL flush. Writes that
//! arrive while another batch of their kind is running wait in a queue and the next batch takes
//! them all: one transaction and one hand-off for several requests.
//!
//! No timer and no waiting for company: a write that arrives when nothing is queued runs at
//! once, alone. The batch runs in a spawned task, so a client that disconnects mid-batch cannot
//! cancel the other clients' writes. Should a batch fail, it is rolled back and each of its
//! items is run again alone, so an error reaches only the request that caused it. The batch's
//! SQL (`batch_sql::sqlite_redeem_batch_sql`, `batch_sql::sqlite_rotate_batch_sql`) is set-based: its
//! statements do not grow in number with the batch, since each statement and each row is a
//! wake-up between threads.
//!
//! On PostgreSQL a batch is one statement (`batch_sql::postgres_redeem_batch_sql`,
//! `batch_sql::postgres_rotate_batch_sql`), and each serving process batches its own writes: the
//! rules hold across processes through the rows' unique keys and locks, as they do for one item
//! alone. Measured with the database on the server's core (`docs/benchmarks.md`): its backends'
//! CPU per exchange fell from about 350-440 µs to 110-200 µs, and per rotation from about 230 µs
//! to about 100 µs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::batch_sql::{AnyQuery, bind_redemption, bind_rotation, postgres_redeem_batch_sql, postgres_rotate_batch_sql};
use super::batch_sql::{sqlite_redeem_batch_sql, sqlite_rotate_batch_sql};
use super::grants::AssertionUse;
use super::{Backend, Db, Row, StoreError, StoreResult};

/// At most this many items share one transaction (the batch SQL is built once per size).
pub(super) const MAX_BATCH: usize = 16;

/// A kind of write that is batched: its SQL for `n` items (numbered 0 to n-1 and answering rows
/// whose first column, `item`, says whose they are), its parameters, and its counters' names.
pub(super) trait Batched: Send + Sync + 'static {
    /// `/metrics` counters: transactions, and items run in them.
    const TRANSACTIONS: &'static str;
    const ITEMS: &'static str;
    fn sql(backend: Backend, n: usize) -> &'static str;
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

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

impl Batched for Redemption {
    const TRANSACTIONS: &'static str = "citizen_id_code_redemption_transactions_total";
    const ITEMS: &'static str = "citizen_id_code_redemptions_total";
    fn sql(backend: Backend, n: usize) -> &'static str {
        if backend == Backend::Sqlite { sqlite_redeem_batch_sql(n) } else { postgres_redeem_batch_sql(n) }
    }
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        bind_redemption(query, self)
    }
}

/// One refresh rotation's parameters: the token presented, the client assertion, the next token.
#[derive(Debug)]
pub(super) struct Rotation {
    pub token_hash: String,
    pub now: i64,
    pub assertion: AssertionUse,
    pub next_hash: String,
    pub next_expires_at: i64,
}

impl Batched for Rotation {
    const TRANSACTIONS: &'static str = "citizen_id_refresh_rotation_transactions_total";
    const ITEMS: &'static str = "citizen_id_refresh_rotations_total";
    fn sql(backend: Backend, n: usize) -> &'static str {
        if backend == Backend::Sqlite { sqlite_rotate_batch_sql(n) } else { postgres_rotate_batch_sql(n) }
    }
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        bind_rotation(query, self)
    }
}

/// What one item's statements returned (its rows only, from the whole batch's).
pub(super) type ItemRows = StoreResult<Vec<Row>>;

struct Waiting<T> {
    item: T,
    reply: oneshot::Sender<ItemRows>,
}

struct Queue<T> {
    waiting: VecDeque<Waiting<T>>,
    /// A drain task is running: it will take whatever is queued.
    draining: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue { waiting: VecDeque::new(), draining: false }
    }
}

/// The queue of one kind of write waiting for the database.
pub(super) struct BatchQueue<T> {
    queue: Mutex<Queue<T>>,
    /// Transactions run, and items run in them (retries alone included), for the tests;
    /// `/metrics` has the same two counts.
    counts: (AtomicU64, AtomicU64),
    /// Taken by the drain task around each batch; a test holds it to make arrivals queue up.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<T> Default for BatchQueue<T> {
    fn default() -> Self {
        BatchQueue { queue: Mutex::default(), counts: Default::default(), gate: Arc::default() }
    }
}

impl<T> std::fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.lock();
        f.debug_struct("BatchQueue").field("waiting", &q.waiting.len()).field("draining", &q.draining).finish()
    }
}

impl<T: Batched> BatchQueue<T> {
    /// Counts a transaction of `n` items.
    fn record(&self, n: usize) {
        metrics::counter!(T::TRANSACTIONS).increment(1);
        metrics::counter!(T::ITEMS).increment(n as u64);
        self.counts.0.fetch_add(1, Ordering::Relaxed);
        self.counts.1.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<T> BatchQueue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        // A panic while holding this lock leaves the queue itself consistent (push or drain).
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// (transactions, items) run so far (retries alone included).
    pub(super) fn counts(&self) -> (u64, u64) {
        (self.counts.0.load(Ordering::Relaxed), self.counts.1.load(Ordering::Relaxed))
    }

    /// While the guard lives, items queue instead of running; let go, they run together (up to
    /// `MAX_BATCH` a batch).
    pub(super) async fn hold(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.gate.clone().lock_owned().await
    }

    /// Items queued and not yet taken by a batch.
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// Should a drain task panic, the items waiting are answered (dropped: "unavailable") and the
/// next arrival starts a new task, instead of all waiting for ever.
struct PanicGuard<'a, T>(&'a BatchQueue<T>);

impl<T> Drop for PanicGuard<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.lock();
            q.waiting.clear();
            q.draining = false;
        }
    }
}

impl Db {
    /// Queues `item` and waits for the batch that runs it.
    pub(super) async fn run_in_batch<T: Batched>(&self, queue: &Arc<BatchQueue<T>>, item: T) -> ItemRows {
        let (reply, rx) = oneshot::channel();
        let start_drain = {
            let mut q = queue.lock();
            q.waiting.push_back(Waiting { item, reply });
            !std::mem::replace(&mut q.draining, true)
        };
        if start_drain {
            let (db, queue) = (self.clone(), queue.clone());
            tokio::spawn(async move { db.drain(&queue).await });
        }
        rx.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the write batch was abandoned".into())))
    }

    /// Runs batches until the queue is empty, then stops (the next arrival starts another).
    async fn drain<T: Batched>(&self, queue: &BatchQueue<T>) {
        let _unwind = PanicGuard(queue);
        loop {
            let _gate = queue.gate.lock().await;
            let conn = self.pool().acquire().await;
            let batch: Vec<Waiting<T>> = {
                let mut q = queue.lock();
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
            let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().map(|w| (w.item, w.reply)).unzip();
            match self.run_batch(queue, &mut conn, &items).await {
                Ok(mut rows) => {
                    for (reply, rows) in replies.into_iter().zip(rows.drain(..)) {
                        let _ = reply.send(Ok(rows));
                    }
                }
                // Alone, each item meets only its own error.
                Err(_) if items.len() > 1 => {
                    for (item, reply) in items.iter().zip(replies) {
                        let _ = reply.send(self.run_batch(queue, &mut conn, std::slice::from_ref(item)).await.map(|mut r| r.remove(0)));
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

    /// Runs `batch` in one transaction and returns each item's rows, in order. On error the
    /// transaction is rolled back (or the connection closed, should even that fail).
    async fn run_batch<T: Batched>(
        &self,
        queue: &BatchQueue<T>,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        batch: &[T],
    ) -> StoreResult<Vec<Vec<Row>>> {
        use sqlx::Row as _;
        queue.record(batch.len());
        let sqlite = self.backend() == Backend::Sqlite;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(T::sql(self.backend(), batch.len())));
        for item in batch {
            query = item.bind(query);
        }
        let rows = super::fetch_all_or_roll_back(conn, query, sqlite).await?;
        let mut per_item: Vec<Vec<Row>> = (0..batch.len()).map(|_| Vec::new()).collect();
        for row in rows {
            let item: i64 = row.try_get("item")?;
            let slot = usize::try_from(item).ok().and_then(|i| per_item.get_mut(i));
            slot.ok_or_else(|| StoreError::Corrupt(format!("write batch row for item {item}")))?.push(row);
        }
        Ok(per_item)
    }

    /// (transactions, redemptions) this process has run (retries alone included). For tests;
    /// `/metrics` has the same counts.
    #[doc(hidden)]
    pub fn redemption_counts(&self) -> (u64, u64) {
        self.redemptions.counts()
    }

    /// For tests: while the guard lives, redemptions queue instead of running.
    #[doc(hidden)]
    pub async fn hold_redemptions(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.redemptions.hold().await
    }

    /// Redemptions queued and not yet taken by a batch (tests).
    #[doc(hidden)]
    pub fn redemptions_waiting(&self) -> usize {
        self.redemptions.waiting()
    }

    /// (transactions, rotations) this process has run, as `redemption_counts`.
    #[doc(hidden)]
    pub fn rotation_counts(&self) -> (u64, u64) {
        self.rotations.counts()
    }

    /// For tests: while the guard lives, refresh rotations queue instead of running.
    #[doc(hidden)]
    pub async fn hold_rotations(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.rotations.hold().await
    }

    /// Refresh rotations queued and not yet taken by a batch (tests).
    #[doc(hidden)]
    pub fn rotations_waiting(&self) -> usize {
        self.rotations.waiting()
    }
}
