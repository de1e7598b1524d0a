//! The sign-in memory phase: resident memory of the server before and after 1,000 password
//! sign-in attempts (POST /signin), several in flight (issue 15, item 9: Argon2 took the server
//! from 17 MB to 490-700 MB; target: under 100 MB after).
//!
//! The attempts are shaped so that each one reaches the password check instead of a rate limit:
//! half for unknown emails (each used once: the dummy verification), a quarter wrong and a
//! quarter right passwords for known accounts (made here, 2 wrong and 2 right each, under the
//! lockout and the per-account limit), sent from `SOURCES` loopback addresses (127.0.1.1 …, so
//! each address stays under the per-IP limit). Each attempt fetches /signin for its CSRF token,
//! then posts it. The outcomes are counted by kind, and the server's own count of Argon2
//! computations (`citizen_id_argon2_computations_total`, when it has one) is read before and
//! after, so a run shows how many attempts reached the hashing.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use citizen_id::crypto::{password, random_token};
use citizen_id::store::Db;
use citizen_id::store::accounts::NewAccount;

use crate::{Ctx, Job, PhaseResult, mib, phase, status_kib};

/// Loopback source addresses the attempts come from.
pub const SOURCES: usize = 100;
const PASSWORD: &str = "plum-harbour-violet-43";
/// In flight at once: a burst of citizens signing in together.
pub const IN_FLIGHT: usize = 16;

pub struct SigninMemory {
    pub phase: PhaseResult,
    pub attempts: usize,
    /// Outcomes by kind: accepted (303 to the code page), rejected (401), throttled (429), locked (403), other.
    pub outcomes: BTreeMap<String, u64>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub hwm_after_kib: u64,
    pub threads_before: u64,
    pub threads_after: u64,
    /// Argon2 computations the server counted during the phase (None: the binary has no such counter).
    pub computations: Option<f64>,
}

impl SigninMemory {
    pub fn rss_after_mb(&self) -> f64 {
        self.rss_after_kib as f64 * 1024.0 / 1e6
    }
}

fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads:").unwrap_or(0)
}

/// A counter's value in Prometheus text, if present.
pub fn counter(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

async fn scrape(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()
}

/// `n` accounts sharing one password (one hash, made here), each its own email and mobile.
async fn create_accounts(data_dir: &Path, database_url: Option<&str>, n: usize) -> anyhow::Result<Vec<String>> {
    let sqlite = format!("sqlite://{}?mode=rwc", data_dir.join("citizen-id.db").display());
    let db = Db::connect(database_url.unwrap_or(&sqlite)).await?;
    let hash = password::hash(PASSWORD.to_string()).await?;
    let tag = random_token(6).to_lowercase();
    let now = citizen_id::clock::now_ms();
    let mut emails = Vec::with_capacity(n);
    for i in 0..n {
        let email = format!("signin-{i}-{tag}@example.com");
        let account = NewAccount {
            id: random_token(24),
            email: email.clone(),
            password_hash: Some(hash.clone()),
            mobile: format!("+447700900{:03}", i % 1000),
            created_at: now,
        };
        db.insert_account(&account).await?;
        emails.push(email);
    }
    db.close().await;
    Ok(emails)
}

/// One cookie-keeping client per source address.
fn clients(n: usize) -> anyhow::Result<Vec<reqwest::Client>> {
    (0..n)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
            reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .local_address(IpAddr::V4(ip))
                .build()
                .context("a load client")
        })
        .collect()
}

fn csrf(html: &str) -> Option<String> {
    html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|s| s.split('"').next()).map(String::from)
}

/// Runs `attempts` sign-in attempts against the server at `base` and reads its memory around them.
pub async fn run(ctx: &mut Ctx, base: &str, data_dir: &Path, database_url: Option<&str>, attempts: usize, limit: Duration) -> anyhow::Result<SigninMemory> {
    let known = attempts.div_ceil(8).max(1);
    let emails = Arc::new(create_accounts(data_dir, database_url, known).await?);
    let clients = Arc::new(clients(SOURCES)?);
    let tag = random_token(6).to_lowercase();
    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let job: Job = {
        let (base, emails, clients, outcomes) = (base.to_string(), emails.clone(), clients.clone(), outcomes.clone());
        Arc::new(move |i| {
            let (base, emails, clients, outcomes, tag) = (base.clone(), emails.clone(), clients.clone(), outcomes.clone(), tag.clone());
            Box::pin(async move {
                let http = &clients[i % clients.len()];
                let (email, password, right) = match i % 4 {
                    0 | 1 => (format!("nobody-{i}-{tag}@example.com"), "not-the-password-1".to_string(), false),
                    2 => (emails[(i / 4) % emails.len()].clone(), format!("wrong-password-{i}"), false),
                    _ => (emails[(i / 4) % emails.len()].clone(), PASSWORD.to_string(), true),
                };
                let page = http.get(format!("{base}/signin")).send().await.map_err(|e| e.to_string())?;
                let html = page.text().await.map_err(|e| e.to_string())?;
                let token = csrf(&html).ok_or("no CSRF token on /signin")?;
                let form = [("email", email.as_str()), ("password", password.as_str()), ("csrf_token", token.as_str())];
                let res = http.post(format!("{base}/signin")).form(&form).send().await.map_err(|e| e.to_string())?;
                let status = res.status().as_u16();
                let to_code = res.headers().get("location").and_then(|l| l.to_str().ok()).is_some_and(|l| l.ends_with("/signin/code"));
                let _ = res.bytes().await;
                let kind = match (status, to_code) {
                    (303, true) => "accepted",
                    (401, _) => "rejected",
                    (429, _) => "throttled",
                    (403, _) => "locked",
                    _ => "other",
                };
                *outcomes.lock().unwrap().entry(kind.to_string()).or_default() += 1;
                match (kind, right) {
                    ("accepted", true) | ("rejected", false) => Ok(()),
                    _ => Err(format!("{} password for {}: {status} ({kind})", if right { "right" } else { "wrong" }, if i % 4 < 2 { "an unknown email" } else { "a known account" })),
                }
            })
        })
    };
    let metrics_http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_metrics = scrape(&metrics_http, base).await;
    let (rss_before_kib, threads_before) = (status_kib(ctx.server_pid, "VmRSS:").unwrap_or(0), threads(ctx.server_pid));
    let concurrency = std::mem::replace(&mut ctx.concurrency, IN_FLIGHT);
    let phase = phase(ctx, "signin", job, 0, attempts, limit).await;
    ctx.concurrency = concurrency;
    // The memory a quiet server keeps: after the burst has drained.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after_kib, hwm_after_kib, threads_after) =
        (status_kib(ctx.server_pid, "VmRSS:").unwrap_or(0), status_kib(ctx.server_pid, "VmHWM:").unwrap_or(0), threads(ctx.server_pid));
    let after_metrics = scrape(&metrics_http, base).await;
    let name = "citizen_id_argon2_computations_total";
    let computations = match (before_metrics.as_deref(), after_metrics.as_deref()) {
        (b, Some(a)) => counter(a, name).map(|a| a - b.and_then(|b| counter(b, name)).unwrap_or(0.0)),
        _ => None,
    };
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "  sign-in memory: VmRSS {:.1} MiB before, {:.1} MiB max, {:.1} MiB after; threads {threads_before} → {threads_after}; outcomes {outcomes:?}; Argon2 computations {}",
        mib(rss_before_kib),
        mib(phase.max_rss_kib),
        mib(rss_after_kib),
        computations.map_or("n/a".to_string(), |c| format!("{c:.0}"))
    );
    Ok(SigninMemory { phase, attempts, outcomes, rss_before_kib, rss_after_kib, hwm_after_kib, threads_before, threads_after, computations })
}
