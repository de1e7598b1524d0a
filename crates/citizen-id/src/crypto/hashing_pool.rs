//! A fixed pool of Argon2id threads, each owning one reused block buffer, fed by a bounded queue.
//!
//! Why (issue 15, item 9): each Argon2id computation needs its `m` KiB of working memory
//! (19 MiB here). Run on tokio's blocking pool, whose threads come and go, every new thread got
//! a glibc allocator arena of its own, and each arena kept the 19 MiB blocks it had once held:
//! a server at 17 MB grew to 490-700 MB after a few hundred sign-in attempts and never gave it
//! back. Here `threads` dedicated OS threads each allocate their buffer once, on their first job,
//! and reuse it for every computation after: hashing memory is at most `threads × m` whatever
//! the load, and at most `threads` computations run at once. A burst waits in the bounded queue
//! (and, once that is full, at its door), each waiting request holding only its password.
//!
//! Verification parses the stored PHC string itself, computes into the worker's buffer with the
//! stored parameters and compares the outputs in constant time (`subtle`), so no call allocates
//! a block buffer. An unknown account (`None`), or a stored value that is not an Argon2 hash
//! this pool can compute, is checked against the pool's dummy target with the service's own
//! parameters: the same work, the same time, and always `false` (no account enumeration by
//! timing: OWASP ASVS 5.0 V6, an answer must not tell whether an account exists).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::{mpsc, oneshot};

/// Salt and output lengths of the hashes this pool makes (the argon2 crate's defaults).
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// What a caller asks of the pool.
enum Task {
    Hash { password: String },
    Verify { password: String, stored: Option<String> },
}

enum Answer {
    Hashed(Result<String, String>),
    Verified(bool),
}

struct Job {
    task: Task,
    reply: oneshot::Sender<Answer>,
}

/// Counters of what the pool did, for tests and operators.
#[derive(Debug, Default)]
struct Counters {
    running: AtomicUsize,
    peak_running: AtomicUsize,
    buffers_allocated: AtomicUsize,
    computations: AtomicU64,
}

/// A snapshot of the pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's threads (the most computations that can run at once).
    pub threads: usize,
    /// The most computations that ever ran at the same time.
    pub peak_running: usize,
    /// Block buffers allocated since the pool started: at most one per thread, ever.
    pub buffers_allocated: usize,
    /// Argon2 computations done (hashes, verifications, dummy verifications).
    pub computations: u64,
    /// Bytes of one thread's buffer (`m` KiB).
    pub buffer_bytes: usize,
}

/// A target to compute against: the parameters, salt and expected output of a PHC string.
#[derive(Clone)]
struct Target {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl Target {
    /// A stored PHC string this pool can verify with at most `max_blocks` blocks; `None` for
    /// anything else (not Argon2, malformed, or needing more memory than the pool's buffers).
    fn parse(stored: &str, max_blocks: usize) -> Option<Target> {
        let hash = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(hash.algorithm.as_str()).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        let (salt, expected) = (hash.salt?, hash.hash?);
        if params.block_count() > max_blocks {
            // Never legitimate (the pool's buffers are sized for the service's own parameters,
            // and older hashes are cheaper); computing it would mean allocating per call.
            tracing::warn!(m_cost = params.m_cost(), "a stored password hash needs more memory than the hashing pool holds");
            return None;
        }
        Some(Target { algorithm, version, params, salt: salt.as_ref().to_vec(), expected: expected.as_ref().to_vec() })
    }

    /// The service's parameters with a random salt and a random expected output: computing it
    /// costs what a real verification costs, and it matches nothing.
    fn dummy(params: &Params) -> Target {
        let mut salt = vec![0u8; SALT_LEN];
        let mut expected = vec![0u8; OUTPUT_LEN];
        rand::rng().fill_bytes(&mut salt);
        rand::rng().fill_bytes(&mut expected);
        Target { algorithm: Algorithm::Argon2id, version: Version::V0x13, params: params.clone(), salt, expected }
    }
}

/// One worker thread's state: its buffer, allocated on its first job and kept for good.
struct Worker {
    params: Params,
    dummy: Target,
    blocks: Option<Vec<Block>>,
    counters: Arc<Counters>,
}

impl Worker {
    fn buffer(&mut self) -> &mut [Block] {
        let len = self.params.block_count();
        let counters = &self.counters;
        self.blocks.get_or_insert_with(|| {
            counters.buffers_allocated.fetch_add(1, Ordering::Relaxed);
            vec![Block::new(); len]
        })
    }

    /// Computes `target`'s function of `password` into `out` with this worker's buffer.
    fn compute(&mut self, target: &Target, password: &[u8], out: &mut [u8]) -> bool {
        let argon2 = Argon2::new(target.algorithm, target.version, target.params.clone());
        let ok = argon2.hash_password_into_with_memory(password, &target.salt, out, self.buffer()).is_ok();
        self.counters.computations.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("citizen_id_argon2_computations_total").increment(1);
        ok
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, String> {
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        let target =
            Target { algorithm: Algorithm::Argon2id, version: Version::V0x13, params: self.params.clone(), salt: salt.to_vec(), expected: Vec::new() };
        let mut out = [0u8; OUTPUT_LEN];
        if !self.compute(&target, password, &mut out) {
            return Err("argon2: the computation failed".into());
        }
        let phc = PasswordHash {
            algorithm: target.algorithm.ident(),
            version: Some(target.version.into()),
            params: ParamsString::try_from(&target.params).map_err(|e| format!("argon2: {e}"))?,
            salt: Some(Salt::new(&salt).map_err(|e| format!("argon2: {e}"))?),
            hash: Some(Output::new(&out).map_err(|e| format!("argon2: {e}"))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &[u8], stored: Option<&str>) -> bool {
        let max_blocks = self.params.block_count();
        let (target, real) = match stored.and_then(|s| Target::parse(s, max_blocks)) {
            Some(t) => (t, true),
            None => (self.dummy.clone(), false),
        };
        let mut out = vec![0u8; target.expected.len()];
        let computed = self.compute(&target, password, &mut out);
        let same: bool = out.ct_eq(&target.expected).into();
        computed && same && real
    }

    fn run(&mut self, task: Task) -> Answer {
        let (running, peak) = (&self.counters.running, &self.counters.peak_running);
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        let answer = match task {
            Task::Hash { password } => Answer::Hashed(self.hash(password.as_bytes())),
            Task::Verify { password, stored } => Answer::Verified(self.verify(password.as_bytes(), stored.as_deref())),
        };
        self.counters.running.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

/// The pool: `threads` workers and the bounded queue in front of them.
pub struct HashingPool {
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    threads: usize,
    buffer_bytes: usize,
}

impl HashingPool {
    /// Starts `threads` workers (at least one, named `<name>-<i>`) computing with `params`; up to
    /// `queue` jobs wait for them, and callers beyond that wait for a place.
    pub fn new(name: &str, threads: usize, queue: usize, params: Params) -> std::io::Result<HashingPool> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        let buffer_bytes = params.block_count() * Block::SIZE;
        for i in 0..threads {
            let mut worker = Worker { dummy: Target::dummy(&params), params: params.clone(), blocks: None, counters: counters.clone() };
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                loop {
                    // One worker waits on the queue at a time; the others wait for the lock.
                    let job = rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).blocking_recv();
                    let Some(job) = job else { break }; // the pool was dropped
                    // A caller that went away (its request was cancelled) needs no answer: the
                    // timing of an answer nobody reads cannot tell anything.
                    if job.reply.is_closed() {
                        continue;
                    }
                    let _ = job.reply.send(worker.run(job.task));
                }
            })?;
        }
        Ok(HashingPool { queue: tx, counters, threads, buffer_bytes })
    }

    async fn submit(&self, task: Task) -> Option<Answer> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { task, reply }).await.ok()?;
        answer.await.ok()
    }

    /// Hashes `password` with a fresh salt into a PHC string.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        match self.submit(Task::Hash { password }).await {
            Some(Answer::Hashed(r)) => r.map_err(|e| anyhow::anyhow!(e)),
            _ => anyhow::bail!("the password hashing pool is not running"),
        }
    }

    /// Whether `password` matches `stored`; with `None` (or an unreadable stored value) the same
    /// work is done against the dummy target and the answer is `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        matches!(self.submit(Task::Verify { password, stored }).await, Some(Answer::Verified(true)))
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            threads: self.threads,
            peak_running: self.counters.peak_running.load(Ordering::SeqCst),
            buffers_allocated: self.counters.buffers_allocated.load(Ordering::Relaxed),
            computations: self.counters.computations.load(Ordering::Relaxed),
            buffer_bytes: self.buffer_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;
    use crate::crypto::password::params;

    const RIGHT: &str = "a long correct horse battery";

    fn small() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[tokio::test]
    async fn its_hashes_are_the_argon2_crates_and_the_other_way_round() {
        let pool = HashingPool::new("argon2t", 1, 4, params()).unwrap();
        let ours = pool.hash(RIGHT.into()).await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        assert!(argon2.verify_password(RIGHT.as_bytes(), ours.as_str()).is_ok());
        // A hash stored before the pool (made by the crate's own hasher) still verifies.
        let theirs = argon2.hash_password(RIGHT.as_bytes()).unwrap().to_string();
        assert!(pool.verify(RIGHT.into(), Some(theirs.clone())).await);
        assert!(!pool.verify("wrong".into(), Some(theirs)).await);
        assert!(!pool.verify(RIGHT.into(), Some("not a PHC string".into())).await);
        assert!(!pool.verify(RIGHT.into(), None).await);
    }

    /// The memory finding: 40 sign-in checks at once, 2 threads. No more than 2 ever run
    /// together, and no call allocates a block buffer of its own: the 2 threads' buffers are the
    /// only ones ever made, reused for all 41 computations.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_checks_run_at_most_threads_at_once_and_reuse_their_buffers() {
        let pool = Arc::new(HashingPool::new("argon2t", 2, 4, params()).unwrap());
        let stored = pool.hash(RIGHT.into()).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (pool, stored) = (pool.clone(), stored.clone());
            tasks.push(tokio::spawn(async move {
                match i % 3 {
                    0 => pool.verify(RIGHT.into(), Some(stored)).await,
                    1 => !pool.verify("wrong password".into(), Some(stored)).await,
                    _ => !pool.verify(RIGHT.into(), None).await,
                }
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap(), "a check gave the wrong answer");
        }
        let stats = pool.stats();
        assert_eq!(stats.threads, 2);
        assert_eq!(stats.computations, 41);
        assert!(stats.peak_running <= 2, "{stats:?}");
        assert!(stats.buffers_allocated <= 2, "{stats:?}");
        assert_eq!(stats.buffer_bytes, 19_456 * 1024);
    }

    /// A stored hash asking for more memory than the pool's buffers is refused without
    /// allocating for it.
    #[tokio::test]
    async fn a_hash_needing_more_memory_than_the_buffers_is_refused_without_allocating() {
        let pool = HashingPool::new("argon2t", 1, 4, small()).unwrap();
        let big = Argon2::new(Algorithm::Argon2id, Version::V0x13, params()).hash_password(RIGHT.as_bytes()).unwrap().to_string();
        assert!(!pool.verify(RIGHT.into(), Some(big)).await);
        let own = pool.hash(RIGHT.into()).await.unwrap();
        assert!(pool.verify(RIGHT.into(), Some(own)).await);
        assert_eq!(pool.stats().buffers_allocated, 1);
        assert_eq!(pool.stats().buffer_bytes, 64 * 1024);
    }

    /// CPU time of this process's thread named `name`, in nanoseconds (Linux schedstat).
    fn thread_cpu_ns(name: &str) -> Option<u64> {
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let dir = task.ok()?.path();
            if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == name {
                return std::fs::read_to_string(dir.join("schedstat")).ok()?.split_whitespace().next()?.parse().ok();
            }
        }
        None
    }

    /// An unknown email (no stored hash) or an unreadable stored value costs what a real check
    /// costs, right or wrong password: sign-in timing does not tell which emails have accounts.
    /// Measured as the pool thread's own CPU time per check (what the answer's delay is made
    /// of), so other tests running beside this one do not blur it; the wall time follows it on
    /// a quiet machine.
    #[tokio::test]
    async fn unknown_and_wrong_take_as_long_as_right() {
        let pool = HashingPool::new("argon2time", 1, 4, params()).unwrap();
        let stored = pool.hash(RIGHT.into()).await.unwrap();
        let cases: [(&str, Option<String>, bool); 4] = [
            (RIGHT, Some(stored.clone()), true),
            ("wrong password", Some(stored), false),
            (RIGHT, None, false),
            (RIGHT, Some("$argon2id$garbage".into()), false),
        ];
        let mut cost = [Duration::ZERO; 4];
        for _ in 0..5 {
            for (i, (password, stored, expected)) in cases.iter().enumerate() {
                let cpu = thread_cpu_ns("argon2time-0").expect("the pool thread's schedstat");
                assert_eq!(pool.verify(password.to_string(), stored.clone()).await, *expected);
                cost[i] += Duration::from_nanos(thread_cpu_ns("argon2time-0").unwrap() - cpu);
            }
        }
        let right = cost[0].as_secs_f64();
        assert!(right > 0.01, "five right-password checks took {right:.4} s of CPU: no Argon2 work?");
        for (i, c) in cost.iter().enumerate().skip(1) {
            let ratio = c.as_secs_f64() / right;
            assert!((0.75..1.33).contains(&ratio), "case {i} took {:.4} s of CPU against {right:.4} s for the right password", c.as_secs_f64());
        }
    }
}
