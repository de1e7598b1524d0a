//! Password hashing (Argon2id, OWASP parameters m=19456 KiB, t=2, p=1) and strength checking.
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on a fixed pool of dedicated threads
//! (`hashing_pool`), each with one reused 19 MiB buffer, and never stalls the async workers nor
//! grows the process's memory with the load. Unknown emails are verified against a dummy target
//! with the same parameters, so a sign-in for an account that does not exist takes as long as
//! one that does (no enumeration by timing).

use std::sync::OnceLock;

use argon2::Params;

use super::hashing_pool::{HashingPool, PoolStats};

/// The service's Argon2id parameters (OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1;
/// NIST SP 800-63B-4 3.1.1.2: a salted, costly key derivation function).
pub fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("valid Argon2 parameters")
}

/// Hashing threads when not configured: one per core, at most this many. Each holds 19 MiB for
/// good, so the default bounds hashing memory at 76 MiB on any machine.
pub const DEFAULT_MAX_THREADS: usize = 4;
/// The most threads `password_hashing_threads` may ask for.
pub const MAX_THREADS: usize = 64;
/// Jobs that may wait per thread; callers beyond that wait for a place (holding only the password).
const QUEUE_PER_THREAD: usize = 32;

static POOL: OnceLock<HashingPool> = OnceLock::new();

/// Threads for a configured count (`None`: one per core, at most `DEFAULT_MAX_THREADS`).
pub fn pool_threads(configured: Option<usize>) -> usize {
    match configured {
        Some(n) => n.clamp(1, MAX_THREADS),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()).min(DEFAULT_MAX_THREADS),
    }
}

fn start(threads: usize) -> HashingPool {
    HashingPool::new("argon2", threads, threads * QUEUE_PER_THREAD, params()).expect("starting the password hashing threads")
}

/// Starts the process's hashing pool with `configured` threads (see `pool_threads`); call once at
/// start-up, before any hashing. Returns the threads in use (the first start wins).
pub fn configure(configured: Option<usize>) -> usize {
    POOL.get_or_init(|| start(pool_threads(configured))).stats().threads
}

fn pool() -> &'static HashingPool {
    POOL.get_or_init(|| start(pool_threads(None)))
}

/// What the process's hashing pool has done (threads, peak concurrency, buffers allocated).
pub fn stats() -> PoolStats {
    pool().stats()
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    pool().hash(password).await
}

/// Verifies `password` against `stored`; with `None`, spends the same time and returns false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    pool().verify(password, stored).await
}

/// Why a new password was refused, in words to show the citizen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("{0}")]
    Shape(String),
    #[error("Choose a password that is harder to guess. {0}")]
    Guessable(String),
}

/// Why a new password (with its confirmation) was refused: the form field and the message.
#[derive(Debug)]
pub enum NewPasswordError {
    Refused { field: &'static str, message: String },
    Internal(anyhow::Error),
}

/// Checks a new password and its confirmation against the policy, then hashes it: the one
/// path every "choose a password" page (register, reset, settings) goes through.
pub async fn choose(password: &str, confirm: &str, personal: &[&str]) -> Result<String, NewPasswordError> {
    if let Err(weak) = check_strength(password, personal) {
        return Err(NewPasswordError::Refused { field: "password", message: weak.to_string() });
    }
    if password != confirm {
        return Err(NewPasswordError::Refused { field: "confirm", message: "The passwords do not match".into() });
    }
    hash(password.to_string()).await.map_err(NewPasswordError::Internal)
}

/// Checks length, then strength against common passwords, keyboard patterns, dates and the
/// citizen's own details (zxcvbn; score 3 of 4 or more is required).
pub fn check_strength(password: &str, personal: &[&str]) -> Result<(), WeakPassword> {
    domain::check_password_shape(password).map_err(|e| WeakPassword::Shape(e.to_string()))?;
    let entropy = zxcvbn::zxcvbn(password, personal);
    if (entropy.score() as u8) < 3 {
        let hint = entropy
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "Avoid common words, names and patterns.".to_string());
        return Err(WeakPassword::Guessable(hint));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let h = hash("a long correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("a long correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong".into(), Some(h)).await);
        assert!(!verify("not a real password, only for timing".into(), None).await);
    }

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The finding, in the process itself: 192 sign-in checks (right, wrong and unknown
    /// accounts), 24 at once, grew resident memory by hundreds of MiB on the blocking pool (each
    /// of its comings-and-goings threads an allocator arena keeping its 19 MiB blocks). Now the
    /// growth is at most the pool's buffers and some slack, and stays there. Measured only when
    /// the test has its process to itself (nextest, as CI runs it); other tests in the same
    /// process would add their own memory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_stays_bounded_after_many_concurrent_checks() {
        let alone = std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|m| m == "process-per-test");
        let stored = hash("a long correct horse battery".into()).await.unwrap();
        let before = rss_kib();
        for _round in 0..8 {
            let mut tasks = Vec::new();
            for i in 0..24 {
                let stored = stored.clone();
                tasks.push(tokio::spawn(async move {
                    match i % 3 {
                        0 => verify("a long correct horse battery".into(), Some(stored)).await,
                        1 => !verify("wrong".into(), Some(stored)).await,
                        _ => !verify("a long correct horse battery".into(), None).await,
                    }
                }));
            }
            for t in tasks {
                assert!(t.await.unwrap());
            }
            // Idle moments between bursts, as between sign-ins, when short-lived threads end.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let growth_mib = (rss_kib().saturating_sub(before)) as f64 / 1024.0;
        let stats = stats();
        let bound_mib = stats.threads as f64 * 19.0 + 24.0;
        assert!(stats.buffers_allocated <= stats.threads, "{stats:?}");
        eprintln!("resident memory grew by {growth_mib:.1} MiB (bound {bound_mib:.0} MiB, {stats:?})");
        if alone {
            assert!(growth_mib < bound_mib, "resident memory grew by {growth_mib:.1} MiB (bound {bound_mib:.0} MiB, {stats:?})");
        }
    }

    #[test]
    fn hashing_threads_are_one_per_core_at_most_four_unless_configured() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(pool_threads(None), cores.min(DEFAULT_MAX_THREADS));
        assert_eq!(pool_threads(Some(0)), 1);
        assert_eq!(pool_threads(Some(8)), 8);
        assert_eq!(pool_threads(Some(10_000)), MAX_THREADS);
    }

    #[test]
    fn refuses_common_and_personal_passwords() {
        assert!(matches!(check_strength("password1", &[]), Err(WeakPassword::Guessable(_))));
        assert!(matches!(check_strength("short", &[]), Err(WeakPassword::Shape(_))));
        assert!(check_strength("violet-tractor-harbour-91", &[]).is_ok());
        assert!(check_strength("janedoe@example.com1", &["janedoe@example.com"]).is_err());
    }
}
