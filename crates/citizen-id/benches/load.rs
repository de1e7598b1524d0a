//! Load harness: `cargo bench --bench load [-- --quick] [-- --perf]` (see docs/benchmarks.md).
//!
//! 1. Baseline: this machine's RS512 signing rate (`oidc::keys::sign_with`, and raw aws-lc-rs
//!    RSA-PKCS1-SHA512 without JSON), on one thread.
//! 2. A real `citizen-id sandpit` in its own process (so its RSS can be read), pinned to CPU 0
//!    with `taskset`; this process pins itself to CPU 1 and generates the load there.
//! 3. Setup through the server's own data: a citizen written to the data dir's SQLite file with
//!    the store API, consent given, a real sign-in through the HTML forms (password, then the
//!    sandpit's fixed code), then authorization codes collected from GET /authorize (303s to
//!    the demo partner's redirect). Client assertions are signed with the demo partner's key
//!    from the data dir, all before the timed phase: the client's signing is not the server's cost.
//! 4. Timed phases over loopback, keep-alive, N concurrent requests, bounded by count and time:
//!    token exchanges, refresh token rotations (each refresh token from the exchanges once, with
//!    a client assertion signed for it before the phase), userinfo, discovery, JWKS. The
//!    server's VmRSS is sampled throughout and its CPU time is read from /proc before and after
//!    each phase.
//! 5. After them, bounded in count and time, loopback only: 10,000 anonymous GETs of the plain
//!    pages and 10,000 of /authorize with a valid partner request, counting the rows of the
//!    `sessions` table around each (`load_support/sessions.rs`); then 1,000 password sign-in
//!    attempts, 16 in flight, with the server's VmRSS before and after (`load_support/signins.rs`).
//! 6. A table, the ratios against the targets, and `target/bench-results.json`.
//!
//! Run as a test (`cargo test --benches`, no `--bench` argument) it does nothing.
//!
//! Options (after `--`): `--quick` (short phases), `--perf` (record `perf` profiles of the server
//! for each phase into `target/perf-<phase>.data`), `--seconds S` (length of each timed phase),
//! `--concurrency N` (requests in flight, default 32), `--postgres ADMIN_URL` (run the server on
//! a fresh PostgreSQL database made through ADMIN_URL, e.g. `postgres://postgres@127.0.0.1/postgres`,
//! and dropped afterwards; see `load_support/postgres.rs`), `--signin-attempts N` (default 1000,
//! 0 skips the phase), `--anonymous-gets N` (per session-rows phase, default 10000, 0 skips them),
//! `--compare-bin OLD` (the whole run against the server binary OLD first, then the figures
//! before / after side by side; see `load_support/compare.rs`).
//! Environment: `CITIZEN_ID_BENCH_OUT` (results file), `CITIZEN_ID_BIN` (server
//! binary; default the one cargo built for this bench), `CITIZEN_ID_BENCH_NO_PIN=1` (no CPU pinning).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA512, RSA_PKCS1_SHA512, UnparsedPublicKey};
use serde_json::{Value, json};

#[path = "load_support/compare.rs"]
mod compare;
#[path = "load_support/postgres.rs"]
mod postgres;
#[path = "load_support/sessions.rs"]
mod sessions;
#[path = "load_support/signins.rs"]
mod signins;

use citizen_id::cli::sandpit::{DEMO_CLIENT_ID, TEST_CODE};
use citizen_id::crypto::{password, random_token};
use citizen_id::oidc::keys::{generate_rsa_pkcs8, sign_with};
use citizen_id::oidc::token::pkce_s256;
use citizen_id::store::Db;
use citizen_id::store::accounts::NewAccount;
use citizen_id::web::demo::DemoPartner;

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
const SCOPE: &str = "openid profile email phone";
const VERIFIER: &str = "bench-pkce-verifier-that-is-long-enough-to-be-valid-0123456789";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Targets from the issue.
const EXCHANGE_TARGET_FRACTION: f64 = 0.80;
const SIGNATURES_PER_EXCHANGE: f64 = 2.0;
const USERINFO_TARGET_PER_SEC: f64 = 10_000.0;
const IDLE_RSS_TARGET_MIB: f64 = 40.0;
/// Resident memory after the sign-in phase, in MB (10^6 bytes), and session rows made by the
/// anonymous GETs of plain pages.
const SIGNIN_RSS_TARGET_MB: f64 = 100.0;
const ANONYMOUS_ROWS_TARGET: i64 = 0;

struct Opts {
    quick: bool,
    perf: bool,
    seconds: f64,
    concurrency: usize,
    /// GET /metrics every so many seconds during the run, as Prometheus would.
    scrape_every: Option<f64>,
    /// `cargo bench` passes `--bench`; `cargo test --benches` does not (then this does nothing).
    bench_mode: bool,
    /// Run on PostgreSQL: the admin URL through which the bench database is made.
    postgres: Option<String>,
    /// Keep the load generator's thread running between responses (see `drive`).
    spin_client: bool,
    /// Password sign-in attempts in the sign-in memory phase (0: no such phase).
    signin_attempts: usize,
    /// Anonymous GETs in each session-rows phase (0: no such phases).
    anonymous_gets: usize,
    /// Run everything against this server binary first, and print both side by side.
    compare_bin: Option<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        quick: false,
        perf: false,
        seconds: 10.0,
        concurrency: 32,
        scrape_every: None,
        bench_mode: false,
        postgres: None,
        spin_client: false,
        signin_attempts: 1_000,
        anonymous_gets: 10_000,
        compare_bin: None,
    };
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => opts.bench_mode = true,
            "--quick" => opts.quick = true,
            "--perf" => opts.perf = true,
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()),
            "--scrape-every" => opts.scrape_every = args.next().and_then(|s| s.parse().ok()),
            "--concurrency" => opts.concurrency = args.next().and_then(|s| s.parse().ok()).unwrap_or(32),
            "--postgres" => opts.postgres = args.next(),
            "--spin-client" => opts.spin_client = true,
            "--signin-attempts" => opts.signin_attempts = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000),
            "--compare-bin" => opts.compare_bin = args.next().map(PathBuf::from),
            "--anonymous-gets" => opts.anonymous_gets = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000),
            _ => {} // `--bench` and filters from cargo
        }
    }
    opts.seconds = seconds.unwrap_or(if opts.quick { 3.0 } else { 10.0 });
    opts
}

fn main() -> anyhow::Result<()> {
    // `--baseline-only SECS`: this program started again by `adjacent_baseline` on the server's
    // core; it prints its signing rates and exits.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--baseline-only") {
        let secs = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
        let b = baseline(secs)?;
        println!("{} {}", b.sign_with_per_sec, b.raw_sign_per_sec);
        return Ok(());
    }
    let opts = parse_opts();
    if !opts.bench_mode {
        println!("load harness: nothing to do when run as a test; use `cargo bench --bench load`");
        return Ok(());
    }
    let cpus = online_cpus();
    // Before any thread exists, so every thread of this process inherits the mask.
    let pinned = cpus >= 2 && std::env::var_os("CITIZEN_ID_BENCH_NO_PIN").is_none() && pin_self(CLIENT_CPU);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(opts, cpus, pinned))
}

// ---------------------------------------------------------------------------------------------
// Machine and process helpers

/// Items per database transaction over the run (`store::group_commit`), read from the server's
/// counters `items` and `transactions`; None when there were none.
fn batching(metrics: &str, items: &str, transactions: &str) -> Option<f64> {
    let value = |name: &str| -> Option<f64> {
        metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
    };
    let (items, transactions) = (value(items)?, value(transactions)?);
    (transactions > 0.0).then(|| items / transactions)
}

fn online_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo").map(|s| s.lines().filter(|l| l.starts_with("processor")).count()).unwrap_or(1).max(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `taskset -a -p -c <cpu> <own pid>` (no unsafe code in this workspace, so no sched_setaffinity).
fn pin_self(cpu: usize) -> bool {
    let pid = std::process::id().to_string();
    Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process (all its threads), in seconds.
fn cpu_seconds(pid: &str, ticks: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else { return 0.0 };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / ticks
}

/// Busy jiffies (user, nice, system, irq, softirq, steal) of one CPU (`"cpu0"`) or of all
/// (`"cpu"`), from /proc/stat.
fn busy_jiffies(cpu: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = stat.lines().find(|l| l.split_whitespace().next() == Some(cpu)) else { return 0.0 };
    let f: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum()
}

/// A `/proc/<pid>/status` field in KiB (VmRSS, VmHWM...).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples the server's VmRSS every 20 ms until stopped; returns the maximum in KiB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(status_kib(pid, "VmRSS:").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            max.max(status_kib(pid, "VmRSS:").unwrap_or(0))
        });
        RssSampler { stop, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// The server process; killed (by its own pid) when dropped.
struct Server {
    child: Child,
    pinned: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_binary() -> PathBuf {
    std::env::var_os("CITIZEN_ID_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_citizen-id")))
}

/// `target/` (next to the binary cargo built for this bench: target/release/citizen-id).
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_citizen-id"));
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"))
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn start_server(bin: &Path, port: u16, data_dir: &Path, pin: bool, database_url: Option<&str>) -> anyhow::Result<Server> {
    let log = std::fs::File::create(data_dir.join("server.log"))?;
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", &SERVER_CPU.to_string()]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    // taskset execs the server: the child's pid is the server's pid.
    cmd.args(["sandpit", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .envs(database_url.map(|url| ("DATABASE_URL", url)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    Ok(Server { child, pinned: pin })
}

// ---------------------------------------------------------------------------------------------
// 1. Signing baseline

struct Baseline {
    sign_with_per_sec: f64,
    raw_sign_per_sec: f64,
    verify_per_sec: f64,
    id_token_payload_bytes: usize,
}

/// Operations per second of each closure, measured in interleaved 100 ms slices so that a
/// neighbour's burst or a frequency change weighs on all of them alike.
fn rates_interleaved(duration: Duration, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let slice = Duration::from_millis(100);
    let mut counts = vec![0u64; fs.len()];
    let mut times = vec![Duration::ZERO; fs.len()];
    for f in fs.iter_mut() {
        for _ in 0..20 {
            f(); // warm-up
        }
    }
    let rounds = (duration.as_secs_f64() / slice.as_secs_f64()).ceil().max(1.0) as usize;
    for _ in 0..rounds {
        for (i, f) in fs.iter_mut().enumerate() {
            let start = Instant::now();
            while start.elapsed() < slice {
                for _ in 0..5 {
                    f();
                }
                counts[i] += 5;
            }
            times[i] += start.elapsed();
        }
    }
    counts.iter().zip(&times).map(|(&n, t)| n as f64 / t.as_secs_f64()).collect()
}

/// A typical P9 ID token's claims (Federation spec 4.2 Table 16), as the token endpoint signs
/// them. Written out here rather than built from `AccountRecord`, whose fields keep growing.
fn typical_id_token_claims() -> Value {
    let now = citizen_id::clock::now_secs();
    let issuer = "http://localhost:8080";
    json!({
        "iss": issuer,
        "sub": random_token(24),
        "aud": DEMO_CLIENT_ID,
        "exp": now + 3600,
        "iat": now,
        "jti": random_token(16),
        "auth_time": now - 5,
        "vot": "P9.Cp.Cd",
        "vtm": format!("{issuer}/trustmark/localhost"),
        "nonce": random_token(16),
        "identity_proofing_level": "P9",
        "nhs_number": "9000000009",
        "family_name": "Doe",
        "birthdate": "1980-02-29",
    })
}

/// The signing rates (sign_with, raw) on the server's own core, measured by a copy of this
/// program while the server idles: right before and right after the exchange phase, so the
/// ceiling is the same core's speed in the same minute (a virtual machine's speed drifts by
/// 10-20% over a run). `None` without pinning or `taskset`.
fn adjacent_baseline(secs: f64) -> Option<(f64, f64)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("taskset")
        .args(["-c", &SERVER_CPU.to_string()])
        .arg(exe)
        .args(["--bench", "--baseline-only", &secs.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut rates = text.split_whitespace().filter_map(|v| v.parse::<f64>().ok());
    Some((rates.next()?, rates.next()?))
}

/// How many interleaved exchange rounds a full run makes (see `run`).
const ROUNDS: usize = 5;

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// `secs` is the time spent on each of the two signing measurements (verification gets half).
fn baseline(secs: f64) -> anyhow::Result<Baseline> {
    let (der, _) = generate_rsa_pkcs8()?;
    let pair = KeyPair::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("{e}"))?;
    let claims = typical_id_token_claims();
    let payload = serde_json::to_vec(&claims)?;
    let token = sign_with(&pair, "bench-kid", &claims)?;
    let (input, _) = token.rsplit_once('.').expect("compact JWS");
    let input = input.as_bytes().to_vec();
    let rng = SystemRandom::new();
    let mut sig = vec![0u8; pair.public_modulus_len()];
    let mut jws = || {
        std::hint::black_box(sign_with(&pair, "bench-kid", &claims).expect("sign"));
    };
    let mut raw = || {
        pair.sign(&RSA_PKCS1_SHA512, &rng, &input, &mut sig).expect("sign");
    };
    let rates = rates_interleaved(Duration::from_secs_f64(secs), &mut [&mut jws, &mut raw]);
    let mut check = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA512, &rng, &input, &mut check).expect("sign");
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA512, pair.public_key().as_ref().to_vec());
    let mut verify = || {
        public.verify(&input, &check).expect("verify");
    };
    let verify_per_sec = rates_interleaved(Duration::from_secs_f64(secs / 2.0), &mut [&mut verify])[0];
    Ok(Baseline { sign_with_per_sec: rates[0], raw_sign_per_sec: rates[1], verify_per_sec, id_token_payload_bytes: payload.len() })
}

// ---------------------------------------------------------------------------------------------
// 3. Setup: a citizen, a browser session, codes

/// A cookie-keeping client that walks the forms (no redirects followed automatically).
struct Browser {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl Browser {
    fn new(base: &str) -> anyhow::Result<Browser> {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Browser { http, base: base.to_string(), csrf: String::new() })
    }

    async fn get_page(&mut self, path: &str) -> anyhow::Result<String> {
        let res = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = res.status();
        let html = res.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}");
        }
        if let Some(t) = html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|s| s.split('"').next()) {
            self.csrf = t.to_string();
        }
        Ok(html)
    }

    /// Posts a form with the page's CSRF token; returns the redirect location.
    async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form = fields.to_vec();
        let csrf = self.csrf.clone();
        form.push(("csrf_token", &csrf));
        let res = self.http.post(format!("{}{path}", self.base)).form(&form).send().await?;
        let status = res.status();
        let location = res.headers().get("location").and_then(|l| l.to_str().ok()).map(String::from);
        match location {
            Some(l) if status.is_redirection() => Ok(l),
            _ => bail!("POST {path}: {status} {}", res.text().await.unwrap_or_default().chars().take(300).collect::<String>()),
        }
    }
}

struct Citizen {
    id: String,
    email: String,
    password: String,
}

/// A P0 citizen with a verified email and mobile, and consent for the demo partner, written to
/// the sandpit's database (SQLite in its data dir, or the bench's PostgreSQL database) with the
/// service's own store code.
async fn create_citizen(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Citizen> {
    let sqlite = format!("sqlite://{}?mode=rwc", data_dir.join("citizen-id.db").display());
    let db = Db::connect(database_url.unwrap_or(&sqlite)).await?;
    let password = "plum-harbour-violet-42".to_string();
    let citizen = Citizen { id: random_token(24), email: format!("bench-{}@example.com", random_token(6).to_lowercase()), password };
    let hash = password::hash(citizen.password.clone()).await?;
    let now = citizen_id::clock::now_ms();
    db.insert_account(&NewAccount {
        id: citizen.id.clone(),
        email: citizen.email.clone(),
        password_hash: Some(hash),
        mobile: "+447700900123".into(),
        created_at: now,
    })
    .await?;
    db.save_consent(&citizen.id, DEMO_CLIENT_ID, SCOPE, now).await?;
    db.close().await;
    Ok(citizen)
}

/// Signs in through the real forms: password, then the sandpit's fixed security code.
async fn sign_in(browser: &mut Browser, citizen: &Citizen) -> anyhow::Result<()> {
    browser.get_page("/signin").await?;
    let next = browser.post_form("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await?;
    if !next.ends_with("/signin/code") {
        bail!("sign-in went to {next}, not the code page");
    }
    browser.get_page("/signin/code").await?;
    let next = browser.post_form("/signin/code", &[("code", TEST_CODE)]).await?;
    if next.contains("/signin") {
        bail!("the security code was refused (went to {next})");
    }
    Ok(())
}

fn authorize_url(base: &str, redirect_uri: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", DEMO_CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", SCOPE)
        .append_pair("state", &random_token(12))
        .append_pair("nonce", &random_token(12))
        .append_pair("vtr", r#"["P0.Cp.Cd"]"#)
        .append_pair("code_challenge", &pkce_s256(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{base}/authorize?{query}")
}

/// One code from GET /authorize: a 303 straight to the partner with `?code=`.
async fn one_code(http: &reqwest::Client, base: &str, redirect_uri: &str) -> anyhow::Result<String> {
    let res = http.get(authorize_url(base, redirect_uri)).send().await?;
    let location = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
    let url = url::Url::parse(&location).with_context(|| format!("/authorize answered {} to {location:?}", res.status()))?;
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).with_context(|| format!("no code in {location}"))
}

/// Collects `n` codes with `parallel` requests in flight; returns them and the rate.
async fn collect_codes(
    http: &reqwest::Client,
    base: &str,
    redirect_uri: &str,
    n: usize,
    parallel: usize,
) -> anyhow::Result<(Vec<String>, f64)> {
    let codes = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (http, base, redirect_uri, codes, next) =
            (http.clone(), base.to_string(), redirect_uri.to_string(), codes.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let code = one_code(&http, &base, &redirect_uri).await?;
                codes.lock().unwrap().push(code);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let codes = std::mem::take(&mut *codes.lock().unwrap());
    Ok((codes, rate))
}

// ---------------------------------------------------------------------------------------------
// 4. Timed phases

type Job = Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

#[derive(Default, Clone)]
struct PhaseResult {
    name: String,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_util: f64,
    server_cpu_us_per_request: f64,
    /// On PostgreSQL, the part of `server_cpu_us_per_request` its database backends took.
    db_cpu_us_per_request: Option<f64>,
    client_cpu_util: f64,
    /// CPU used by everything else (other processes, steal) during the phase, in cores, on the
    /// server's CPU and on the load generator's: the noise indicators, near 0 on a quiet machine.
    /// Without pinning both are the machine-wide figure.
    other_server_cpu: f64,
    other_client_cpu: f64,
    max_rss_kib: u64,
}

struct Ctx {
    server_pid: u32,
    /// On PostgreSQL: the bench database, whose backends count as the server's CPU.
    db: Option<postgres::BenchDb>,
    /// Server on SERVER_CPU and this process on CLIENT_CPU.
    pinned: bool,
    ticks: f64,
    concurrency: usize,
    perf: bool,
    spin_client: bool,
    target: PathBuf,
}

impl PhaseResult {
    /// Nothing else took more than 5% of the server's CPU, nor of the load generator's when the
    /// generator itself was busy enough (over half its CPU) for that to slow it down.
    fn quiet(&self) -> bool {
        self.other_server_cpu <= 0.05 && (self.other_client_cpu <= 0.05 || self.client_cpu_util + self.other_client_cpu < 0.5)
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs `job(i)` for i in 0..max with `concurrency` in flight, until `max` or `duration`.
/// Runs `job` from `concurrency` tasks until `max` jobs or `duration`. With `spin`, one more task
/// yields in a loop until the deadline, so the load generator's one thread never sleeps in
/// `epoll_wait`: a response written by the server then finds nobody to wake. On loopback that
/// wake-up (an inter-processor interrupt to a halted vCPU) is done by the server's CPU inside
/// its own `writev`; behind a network it would be the client machine's work.
async fn drive(job: &Job, concurrency: usize, max: usize, duration: Duration, spin: bool) -> (u64, u64, Option<String>, f64, Vec<u32>) {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinner = spin.then(|| {
        let done = done.clone();
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
        })
    });
    for _ in 0..concurrency {
        let (job, next, errors, first_error) = (job.clone(), next.clone(), errors.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                if let Err(e) = job(i).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().unwrap().get_or_insert(e);
                }
                lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(spinner) = spinner {
        let _ = spinner.await;
    }
    let err = first_error.lock().unwrap().take();
    (all.len() as u64, errors.load(Ordering::Relaxed), err, secs, all)
}

async fn phase(ctx: &Ctx, name: &str, job: Job, warmup: usize, max: usize, duration: Duration) -> PhaseResult {
    if warmup > 0 {
        drive(&job, ctx.concurrency.min(warmup), warmup, Duration::from_secs(30), ctx.spin_client).await;
    }
    let perf = ctx.perf.then(|| start_perf(ctx, name)).flatten();
    let pid = ctx.server_pid.to_string();
    let rss = RssSampler::start(ctx.server_pid);
    let (server_core, client_core) =
        if ctx.pinned { (format!("cpu{SERVER_CPU}"), format!("cpu{CLIENT_CPU}")) } else { ("cpu".to_string(), "cpu".to_string()) };
    let busy = || (busy_jiffies(&server_core) / ctx.ticks, busy_jiffies(&client_core) / ctx.ticks);
    // On PostgreSQL the backends serving the server (open by now: the pool opens connections as
    // the warm-up needs them) join it on its core and in its CPU time.
    let backends = match &ctx.db {
        Some(db) => db.backends().await,
        None => Vec::new(),
    };
    if ctx.pinned {
        postgres::BenchDb::pin(&backends, SERVER_CPU);
    }
    let backends_cpu = || backends.iter().map(|b| cpu_seconds(&b.to_string(), ctx.ticks)).sum::<f64>();
    let (db0, server0, client0, busy0) = (backends_cpu(), cpu_seconds(&pid, ctx.ticks), cpu_seconds("self", ctx.ticks), busy());
    let (requests, errors, first_error, seconds, mut lat) = drive(&job, ctx.concurrency, max, duration, ctx.spin_client).await;
    let (db1, server1, client1, busy1) = (backends_cpu(), cpu_seconds(&pid, ctx.ticks), cpu_seconds("self", ctx.ticks), busy());
    let (server0, server1) = (server0 + db0, server1 + db1);
    let max_rss_kib = rss.finish();
    if let Some(p) = perf {
        stop_perf(p);
    }
    lat.sort_unstable();
    let server_cpu = server1 - server0;
    let r = PhaseResult {
        name: name.to_string(),
        requests,
        errors,
        first_error,
        seconds,
        per_sec: requests as f64 / seconds,
        p50_ms: percentile(&lat, 0.50),
        p90_ms: percentile(&lat, 0.90),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().map(|&m| m as f64 / 1000.0).unwrap_or(0.0),
        server_cpu_util: server_cpu / seconds,
        server_cpu_us_per_request: if requests > 0 { server_cpu * 1e6 / requests as f64 } else { 0.0 },
        db_cpu_us_per_request: (ctx.db.is_some() && requests > 0).then(|| (db1 - db0) * 1e6 / requests as f64),
        client_cpu_util: (client1 - client0) / seconds,
        other_server_cpu: if ctx.pinned {
            ((busy1.0 - busy0.0 - (server1 - server0)) / seconds).max(0.0)
        } else {
            ((busy1.0 - busy0.0 - (server1 - server0) - (client1 - client0)) / seconds).max(0.0)
        },
        other_client_cpu: if ctx.pinned {
            ((busy1.1 - busy0.1 - (client1 - client0)) / seconds).max(0.0)
        } else {
            ((busy1.0 - busy0.0 - (server1 - server0) - (client1 - client0)) / seconds).max(0.0)
        },
        max_rss_kib,
    };
    eprintln!(
        "  {:<10} {:>8} requests in {:>5.2} s = {:>9.1}/s  p50 {:.2} ms  p99 {:.2} ms  server CPU {:>3.0}%  client CPU {:>3.0}%  other on server/client CPU {:>3.0}%/{:>3.0}%  errors {}",
        r.name,
        r.requests,
        r.seconds,
        r.per_sec,
        r.p50_ms,
        r.p99_ms,
        r.server_cpu_util * 100.0,
        r.client_cpu_util * 100.0,
        r.other_server_cpu * 100.0,
        r.other_client_cpu * 100.0,
        r.errors
    );
    if let Some(db) = r.db_cpu_us_per_request {
        eprintln!("    of the server's {:.0} µs per request, its PostgreSQL backends {db:.0} µs", r.server_cpu_us_per_request);
    }
    if let Some(e) = &r.first_error {
        eprintln!("    first error: {e}");
    }
    r
}

fn start_perf(ctx: &Ctx, name: &str) -> Option<Child> {
    let out = ctx.target.join(format!("perf-{name}.data"));
    // Release builds keep no frame pointers: `CITIZEN_ID_BENCH_PERF_CALLGRAPH=dwarf` gives whole
    // call chains (bigger files, more overhead) where `-g` gives only the leaf functions.
    let call_graph = std::env::var("CITIZEN_ID_BENCH_PERF_CALLGRAPH").unwrap_or_else(|_| "fp".into());
    Command::new("perf")
        .args(["record", "-q", "-F", "999", "--call-graph", &call_graph, "-p", &ctx.server_pid.to_string(), "-o"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn stop_perf(mut p: Child) {
    // SIGINT (by this child's own pid) lets perf write its file.
    let _ = Command::new("kill").args(["-INT", &p.id().to_string()]).status();
    let _ = p.wait();
}

/// The access tokens a GET phase sends: none, one for every request, or each once.
enum Bearer {
    None,
    Same(String),
    EachOnce(Arc<Vec<String>>),
}

fn get_job(http: &reqwest::Client, url: String, bearer: Bearer) -> Job {
    let http = http.clone();
    Arc::new(move |i| {
        let req = http.get(&url);
        let req = match &bearer {
            Bearer::None => req,
            Bearer::Same(t) => req.bearer_auth(t),
            Bearer::EachOnce(tokens) => req.bearer_auth(&tokens[i]),
        };
        Box::pin(async move {
            let res = req.send().await.map_err(|e| e.to_string())?;
            let status = res.status();
            let body = res.bytes().await.map_err(|e| e.to_string())?;
            if status.is_success() && !body.is_empty() { Ok(()) } else { Err(format!("{status}: {}", String::from_utf8_lossy(&body))) }
        })
    })
}

#[derive(Clone)]
struct Exchange {
    code: String,
    assertion: String,
}

fn exchange_form<'a>(x: &'a Exchange, redirect_uri: &'a str) -> [(&'a str, &'a str); 6] {
    [
        ("grant_type", "authorization_code"),
        ("code", &x.code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", VERIFIER),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &x.assertion),
    ]
}

/// One exchange outside the timed phases: the tokens, for userinfo.
async fn exchange_once(http: &reqwest::Client, base: &str, redirect_uri: &str, x: &Exchange) -> anyhow::Result<Value> {
    let res = http.post(format!("{base}/token")).form(&exchange_form(x, redirect_uri)).send().await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() || body.get("id_token").is_none() {
        bail!("token endpoint: {status} {body}");
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------

async fn run(opts: Opts, cpus: usize, pinned: bool) -> anyhow::Result<()> {
    let ticks = clock_ticks();
    let target = target_dir();
    let bin = server_binary();
    let duration = Duration::from_secs_f64(opts.seconds);
    eprintln!(
        "Citizen ID load harness ({} mode): {} CPUs ({}), {}",
        if opts.quick { "quick" } else { "full" },
        cpus,
        cpu_model(),
        if pinned { format!("load generator pinned to CPU {CLIENT_CPU}, server to CPU {SERVER_CPU}") } else { "no CPU pinning".into() }
    );
    if cpus < 2 || !pinned {
        eprintln!("  warning: without two pinned CPUs the client and the server share cores; figures are not comparable");
    }

    // 0. With --compare-bin, the whole harness against the other binary first.
    let before = match &opts.compare_bin {
        Some(other) => Some((other.clone(), compare::run_before(other, &compare::before_results_path(&target))?)),
        None => None,
    };

    // 1. Baseline, on this (pinned) thread, with the server not yet started.
    eprintln!("1. Signing baseline ({:.0} s each)...", if opts.quick { 1.0 } else { 2.0 });
    let base_line = baseline(if opts.quick { 1.0 } else { 2.0 })?;
    eprintln!(
        "  sign_with (RS512 JWS, {}-byte ID token payload): {:.0}/s; raw RSA-2048 PKCS1-SHA512 sign: {:.0}/s; verify: {:.0}/s",
        base_line.id_token_payload_bytes, base_line.sign_with_per_sec, base_line.raw_sign_per_sec, base_line.verify_per_sec
    );

    // 2. The server in its own process (on a fresh PostgreSQL database with `--postgres`).
    let bench_db = match &opts.postgres {
        Some(admin) => {
            let db = postgres::BenchDb::create(admin).await.context("creating the bench database (--postgres)")?;
            eprintln!("  PostgreSQL database {} (backends pinned with the server and counted as its CPU)", db.name);
            Some(db)
        }
        None => None,
    };
    let database_url = bench_db.as_ref().map(|db| db.url.clone());
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let pin_server = pinned && have("taskset");
    eprintln!("2. Starting {} sandpit on 127.0.0.1:{port}{}...", bin.display(), if pin_server { " (taskset -c 0)" } else { "" });
    let server = start_server(&bin, port, data.path(), pin_server, database_url.as_deref())?;
    let server_pid = server.child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).tcp_nodelay(true).build()?;
    let started = Instant::now();
    loop {
        if http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server did not answer /health in 60 s; see {}", data.path().join("server.log").display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let startup_secs = started.elapsed().as_secs_f64();
    let discovery: Value = http.get(format!("{base}/.well-known/openid-configuration")).send().await?.json().await?;
    let issuer = discovery["issuer"].as_str().context("discovery has no issuer")?.to_string();
    let token_endpoint = discovery["token_endpoint"].as_str().context("discovery has no token_endpoint")?.to_string();
    let redirect_uri = format!("{issuer}/demo/callback");
    for _ in 0..5 {
        http.get(format!("{base}/.well-known/jwks.json")).send().await?.bytes().await?;
        http.get(format!("{base}/.well-known/openid-configuration")).send().await?.bytes().await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss_kib = status_kib(server_pid, "VmRSS:").unwrap_or(0);
    eprintln!("  up in {startup_secs:.2} s; issuer {issuer}; idle VmRSS {:.1} MiB", mib(idle_rss_kib));

    // 3. Setup through the server's own data.
    eprintln!("3. Setup: citizen, sign-in through the forms, authorization codes...");
    let der = std::fs::read(data.path().join("demo-partner-key.pk8")).context("the sandpit's demo partner key")?;
    let demo = DemoPartner::from_pkcs8(DEMO_CLIENT_ID, &der)?;
    let citizen = create_citizen(data.path(), database_url.as_deref()).await?;
    let mut browser = Browser::new(&base)?;
    sign_in(&mut browser, &citizen).await?;
    // Enough codes for the phase at the best rate the baseline allows, plus warm-up and spares.
    let ceiling = base_line.sign_with_per_sec / SIGNATURES_PER_EXCHANGE;
    let warm_exchanges = opts.concurrency;
    let timed_codes = ((ceiling * opts.seconds * 1.25) as usize).clamp(200, 40_000);
    // And for the interleaved rounds after the phase (see `ROUNDS`).
    let (rounds, round_secs) = if opts.quick { (3, 1.0) } else { (ROUNDS, 2.0) };
    let round_codes = ((ceiling * round_secs * 1.25) as usize).max(50);
    let spares = 4;
    let total = warm_exchanges + timed_codes + rounds * round_codes + spares;
    let (codes, authorize_per_sec) = collect_codes(&browser.http, &base, &redirect_uri, total, 4).await?;
    eprintln!("  {} codes from GET /authorize at {authorize_per_sec:.0}/s (4 in flight; not a target)", codes.len());
    let sign_start = Instant::now();
    let exchanges: Vec<Exchange> = codes
        .into_iter()
        .map(|code| Ok(Exchange { code, assertion: demo.client_assertion(&token_endpoint)? }))
        .collect::<anyhow::Result<_>>()?;
    eprintln!("  {} client assertions pre-signed in {:.1} s (client side, not timed)", exchanges.len(), sign_start.elapsed().as_secs_f64());
    let setup_rss_kib = status_kib(server_pid, "VmRSS:").unwrap_or(0);

    let scraper = opts.scrape_every.map(|every| {
        let (http, url) = (http.clone(), format!("{base}/metrics"));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs_f64(every)).await;
                if let Ok(r) = http.get(&url).send().await {
                    let _ = r.bytes().await;
                }
            }
        })
    });

    // 4. Timed phases.
    eprintln!("4. Timed phases ({} in flight, up to {:.0} s each):", opts.concurrency, opts.seconds);
    let mut ctx = Ctx {
        server_pid,
        db: bench_db,
        pinned: pin_server,
        ticks,
        concurrency: opts.concurrency,
        perf: opts.perf && have("perf"),
        spin_client: opts.spin_client,
        target: target.clone(),
    };
    let (spare, exchanges) = exchanges.split_at(spares);
    let (warm, exchanges) = exchanges.split_at(warm_exchanges);
    let (round_items, timed) = exchanges.split_at(rounds * round_codes);
    let warm = Arc::new(warm.to_vec());
    let timed = Arc::new(timed.to_vec());
    // The timed exchanges' access tokens, each used once afterwards by `userinfo-first`, and
    // their refresh tokens, each rotated once by `refresh`.
    let issued: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let refreshable: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let make_exchange_job = |items: Arc<Vec<Exchange>>| -> Job {
        let (http, url, redirect_uri) = (http.clone(), format!("{base}/token"), redirect_uri.clone());
        let (issued, refreshable) = (issued.clone(), refreshable.clone());
        Arc::new(move |i| {
            let (http, url, redirect_uri, items) = (http.clone(), url.clone(), redirect_uri.clone(), items.clone());
            let (issued, refreshable) = (issued.clone(), refreshable.clone());
            Box::pin(async move {
                let res = http.post(&url).form(&exchange_form(&items[i], &redirect_uri)).send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                let body: Value = res.json().await.map_err(|e| e.to_string())?;
                if status.is_success() && body.get("id_token").is_some() && body.get("access_token").is_some() {
                    issued.lock().unwrap().push(body["access_token"].as_str().unwrap_or_default().to_string());
                    if let Some(rt) = body["refresh_token"].as_str() {
                        refreshable.lock().unwrap().push(rt.to_string());
                    }
                    Ok(())
                } else {
                    Err(format!("{status}: {body}"))
                }
            })
        })
    };
    drive(&make_exchange_job(warm.clone()), opts.concurrency, warm.len(), Duration::from_secs(60), opts.spin_client).await;
    issued.lock().unwrap().clear();
    refreshable.lock().unwrap().clear();
    let adjacent_secs = if opts.quick { 1.0 } else { 2.0 };
    let before_exchange = if pin_server { adjacent_baseline(adjacent_secs) } else { None };
    let exchange = phase(&ctx, "exchange", make_exchange_job(timed.clone()), 0, timed.len(), duration).await;
    let after_exchange = if pin_server { adjacent_baseline(adjacent_secs) } else { None };
    if let (Some(b), Some(a)) = (before_exchange, after_exchange) {
        eprintln!("  sign_with on the server's core right before / after the exchange phase: {:.0} / {:.0} per s", b.0, a.0);
    }
    // Interleaved rounds: short exchange bursts, each between two signing measurements on the
    // server's core, so each round's ratio compares the core with itself within seconds.
    let mut round_ratios = Vec::new();
    if pin_server {
        let mut before = adjacent_baseline(0.5);
        for chunk in round_items.chunks(round_codes).take(rounds) {
            let items = Arc::new(chunk.to_vec());
            let r = phase(&ctx, "exchange-round", make_exchange_job(items), 0, chunk.len(), Duration::from_secs_f64(round_secs)).await;
            let after = adjacent_baseline(0.5);
            if let (Some(b), Some(a)) = (before, after) {
                // Per second of server CPU: a short round's ramp-up and drain (when fewer than
                // all requests are in flight) would otherwise count against it.
                let per_core = 1e6 / r.server_cpu_us_per_request.max(1.0);
                let sign = b.0.max(a.0);
                round_ratios.push(per_core / (sign / SIGNATURES_PER_EXCHANGE));
                eprintln!(
                    "  round {}: {:.1} exchanges per second of server CPU, server core signing {:.0} / {:.0} per s around it: {:.1}%",
                    round_ratios.len(),
                    per_core,
                    b.0,
                    a.0,
                    round_ratios.last().unwrap() * 100.0
                );
            }
            before = after;
        }
    }

    // Refresh token rotation, each token once (one signature per request: the access token).
    // Not a target; partners refresh every few minutes, so at scale it may outnumber exchanges.
    let refresh_tokens = std::mem::take(&mut *refreshable.lock().unwrap());
    let sign_start = Instant::now();
    let refreshes: Arc<Vec<(String, String)>> = Arc::new(
        refresh_tokens.into_iter().map(|rt| Ok((rt, demo.client_assertion(&token_endpoint)?))).collect::<anyhow::Result<_>>()?,
    );
    eprintln!("  {} refresh tokens, client assertions pre-signed in {:.1} s (not timed)", refreshes.len(), sign_start.elapsed().as_secs_f64());
    let refresh_job: Job = {
        let (http, url, refreshes) = (http.clone(), format!("{base}/token"), refreshes.clone());
        Arc::new(move |i| {
            let (http, url, refreshes) = (http.clone(), url.clone(), refreshes.clone());
            Box::pin(async move {
                let (rt, assertion) = &refreshes[i];
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                ];
                let res = http.post(&url).form(&form).send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                let body: Value = res.json().await.map_err(|e| e.to_string())?;
                if status.is_success() && body.get("access_token").is_some() && body.get("refresh_token").is_some() {
                    Ok(())
                } else {
                    Err(format!("{status}: {body}"))
                }
            })
        })
    };
    let refresh = phase(&ctx, "refresh", refresh_job, 0, refreshes.len(), duration).await;

    // Userinfo with tokens the server has not seen at userinfo before (each used once): the
    // first call of a partner's session, where the access token's signature must be checked.
    let first_tokens: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *issued.lock().unwrap()));
    let first_job = get_job(&http, format!("{base}/userinfo"), Bearer::EachOnce(first_tokens.clone()));
    let userinfo_first = phase(&ctx, "userinfo-first", first_job, 0, first_tokens.len(), duration).await;

    // A fresh access token for userinfo (tokens live 5 minutes; each phase is far shorter).
    let mut spare = spare.iter();
    let tokens = exchange_once(&http, &base, &redirect_uri, spare.next().context("spare code")?).await?;
    let access = tokens["access_token"].as_str().context("access_token")?.to_string();
    let token_at = Instant::now();
    let max_get = 2_000_000;
    let userinfo = phase(&ctx, "userinfo", get_job(&http, format!("{base}/userinfo"), Bearer::Same(access)), 1000, max_get, duration).await;
    if token_at.elapsed() > Duration::from_secs(240) {
        eprintln!("  warning: the userinfo phase outlived a comfortable access token age");
    }
    let discovery_r =
        phase(&ctx, "discovery", get_job(&http, format!("{base}/.well-known/openid-configuration"), Bearer::None), 1000, max_get, duration).await;
    let jwks = phase(&ctx, "jwks", get_job(&http, format!("{base}/.well-known/jwks.json"), Bearer::None), 1000, max_get, duration).await;
    if let Some(s) = scraper {
        s.abort();
    }
    drop(browser);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_rss_kib = status_kib(server_pid, "VmRSS:").unwrap_or(0);
    // The metrics recorder keeps histogram samples until they are rendered: scrape once.
    let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
    let redemption_batching = batching(&metrics, "citizen_id_code_redemptions_total", "citizen_id_code_redemption_transactions_total");
    let rotation_batching = batching(&metrics, "citizen_id_refresh_rotations_total", "citizen_id_refresh_rotation_transactions_total");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_scrape_rss_kib = status_kib(server_pid, "VmRSS:").unwrap_or(0);
    drop(http);
    let hwm_kib = status_kib(server_pid, "VmHWM:").unwrap_or(0);
    let threads = std::fs::read_to_string(format!("/proc/{server_pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);

    // Anonymous GETs and the session rows they leave; then sign-in attempts and the memory they
    // leave (after the protocol phases, whose figures stay comparable with earlier runs).
    let (anonymous_pages, anonymous_authorize) = if opts.anonymous_gets > 0 {
        let counter = sessions::SessionCounter::open(data.path(), database_url.as_deref()).await?;
        let limit = Duration::from_secs(60);
        let pages = sessions::PLAIN_PAGES.iter().map(|p| format!("{base}{p}")).collect();
        let plain = sessions::run(&ctx, &counter, "anon-pages", pages, opts.anonymous_gets, limit).await?;
        let requests = (0..100).map(|_| authorize_url(&base, &redirect_uri)).collect();
        let authorize = sessions::run(&ctx, &counter, "anon-authz", requests, opts.anonymous_gets, limit).await?;
        counter.close().await;
        (Some(plain), Some(authorize))
    } else {
        (None, None)
    };
    let signin_memory = if opts.signin_attempts > 0 {
        Some(signins::run(&mut ctx, &base, data.path(), database_url.as_deref(), opts.signin_attempts, Duration::from_secs(180)).await?)
    } else {
        None
    };
    let server_pinned = server.pinned;
    drop(server);
    let database = if ctx.db.is_some() { "postgres" } else { "sqlite" };
    if let Some(db) = ctx.db {
        db.remove().await;
    }

    // The baseline again, now that the server is gone: the ceiling takes the faster of the two.
    let base_after = baseline(if opts.quick { 1.0 } else { 2.0 })?;
    eprintln!("5. Signing baseline again: sign_with {:.0}/s; raw sign {:.0}/s", base_after.sign_with_per_sec, base_after.raw_sign_per_sec);

    // 6. Report.
    let phases = [&exchange, &refresh, &userinfo_first, &userinfo, &discovery_r, &jwks];
    let load_rss_kib = phases.iter().map(|p| p.max_rss_kib).max().unwrap_or(0);
    // The new phases' rows in the table (after the protocol phases, and not in `load_rss_kib`).
    let extra_phases: Vec<&PhaseResult> = [anonymous_pages.as_ref().map(|r| &r.phase), anonymous_authorize.as_ref().map(|r| &r.phase), signin_memory.as_ref().map(|r| &r.phase)]
        .into_iter()
        .flatten()
        .collect();
    let sign_per_sec = base_line.sign_with_per_sec.max(base_after.sign_with_per_sec);
    let raw_per_sec = base_line.raw_sign_per_sec.max(base_after.raw_sign_per_sec);
    let exchange_ceiling = sign_per_sec / SIGNATURES_PER_EXCHANGE;
    let exchange_ratio = exchange.per_sec / exchange_ceiling;
    let exchange_ratio_raw = exchange.per_sec / (raw_per_sec / SIGNATURES_PER_EXCHANGE);
    // The same target against the server core's own signing rate next to the phase (the faster
    // of the two measurements: the higher ceiling).
    let adjacent_sign = before_exchange.zip(after_exchange).map(|(b, a)| b.0.max(a.0));
    let exchange_ratio_adjacent = adjacent_sign.map(|s| exchange.per_sec / (s / SIGNATURES_PER_EXCHANGE));
    let round_median = median(&round_ratios);
    let userinfo_ratio = userinfo.per_sec / USERINFO_TARGET_PER_SEC;
    let idle_ratio = mib(idle_rss_kib) / IDLE_RSS_TARGET_MIB;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let noisy = phases.iter().chain(extra_phases.iter()).any(|p| !p.quiet());

    println!();
    println!(
        "Citizen ID load benchmark: {} CPUs ({}), server pinned: {}, {} in flight, database: {database}{}{}",
        cpus,
        cpu_model(),
        server_pinned,
        opts.concurrency,
        if database == "postgres" { " (server CPU includes its PostgreSQL backends)" } else { "" },
        if opts.spin_client { ", load generator busy-polling (--spin-client)" } else { "" }
    );
    println!();
    println!(
        "| phase      | requests | seconds |     req/s | p50 ms | p90 ms | p99 ms | server CPU | server µs/req | req/s per server core | client CPU | other CPU (server/client core) | max RSS MiB | errors |"
    );
    println!(
        "|------------|---------:|--------:|----------:|-------:|-------:|-------:|-----------:|--------------:|----------------------:|-----------:|------------------------------:|------------:|-------:|"
    );
    for p in phases.iter().copied().chain(extra_phases.iter().copied()) {
        println!(
            "| {:<10} | {:>8} | {:>7.2} | {:>9.1} | {:>6.2} | {:>6.2} | {:>6.2} | {:>9.0}% | {:>13.0} | {:>21.0} | {:>9.0}% | {:>14.0}% / {:>3.0}% | {:>11.1} | {:>6} |",
            p.name,
            p.requests,
            p.seconds,
            p.per_sec,
            p.p50_ms,
            p.p90_ms,
            p.p99_ms,
            p.server_cpu_util * 100.0,
            p.server_cpu_us_per_request,
            if p.server_cpu_us_per_request > 0.0 { 1e6 / p.server_cpu_us_per_request } else { 0.0 },
            p.client_cpu_util * 100.0,
            p.other_server_cpu * 100.0,
            p.other_client_cpu * 100.0,
            mib(p.max_rss_kib),
            p.errors
        );
    }
    println!();
    println!(
        "Baseline (one thread, before / after): sign_with {:.0} / {:.0} per s; raw RSA-2048 PKCS1-SHA512 sign {:.0} / {:.0} per s; verify {:.0}/s",
        base_line.sign_with_per_sec,
        base_after.sign_with_per_sec,
        base_line.raw_sign_per_sec,
        base_after.raw_sign_per_sec,
        base_line.verify_per_sec
    );
    println!(
        "Exchanges: {:.1}/s vs ceiling {:.1}/s (sign_with/s ÷ {SIGNATURES_PER_EXCHANGE}) = {:.1}% (target ≥ {:.0}%): {}  [vs raw sign/s ÷ 2: {:.1}%]",
        exchange.per_sec,
        exchange_ceiling,
        exchange_ratio * 100.0,
        EXCHANGE_TARGET_FRACTION * 100.0,
        verdict(exchange_ratio >= EXCHANGE_TARGET_FRACTION),
        exchange_ratio_raw * 100.0
    );
    if let (Some(s), Some(r)) = (adjacent_sign, exchange_ratio_adjacent) {
        println!(
            "Exchanges vs the server core's own sign_with rate next to the phase ({s:.0}/s, ceiling {:.1}/s) = {:.1}% (target ≥ {:.0}%): {}",
            s / SIGNATURES_PER_EXCHANGE,
            r * 100.0,
            EXCHANGE_TARGET_FRACTION * 100.0,
            verdict(r >= EXCHANGE_TARGET_FRACTION)
        );
    }
    if let Some(m) = round_median {
        let list: Vec<String> = round_ratios.iter().map(|r| format!("{:.1}%", r * 100.0)).collect();
        println!(
            "Exchanges in {} interleaved rounds, each vs the server core's signing measured around it: {} → median {:.1}% (target ≥ {:.0}%): {}",
            round_ratios.len(),
            list.join(", "),
            m * 100.0,
            EXCHANGE_TARGET_FRACTION * 100.0,
            verdict(m >= EXCHANGE_TARGET_FRACTION)
        );
    }
    if let Some(b) = redemption_batching {
        println!("Code redemptions per transaction (group commit), over the whole run: {b:.2}");
    }
    if let Some(b) = rotation_batching {
        println!("Refresh rotations per transaction (group commit), over the whole run: {b:.2}");
    }
    println!(
        "Userinfo:  {:.0}/s vs {USERINFO_TARGET_PER_SEC:.0}/s = {:.1}%: {}",
        userinfo.per_sec,
        userinfo_ratio * 100.0,
        verdict(userinfo_ratio >= 1.0)
    );
    println!(
        "Userinfo, each token's first call (signature checked): {:.0}/s = {:.1}% of {USERINFO_TARGET_PER_SEC:.0}/s; the target phase repeats one token",
        userinfo_first.per_sec,
        userinfo_first.per_sec / USERINFO_TARGET_PER_SEC * 100.0
    );
    println!(
        "Refresh token rotations (one signature each): {:.1}/s, {:.0} µs of server CPU each = {:.1}% of sign_with/s (informative)",
        refresh.per_sec,
        refresh.server_cpu_us_per_request,
        refresh.per_sec / sign_per_sec * 100.0
    );
    println!("Discovery: {:.0}/s; JWKS: {:.0}/s", discovery_r.per_sec, jwks.per_sec);
    println!(
        "Memory (VmRSS): idle {:.1} MiB vs {IDLE_RSS_TARGET_MIB:.0} MiB = {:.1}%: {}; after setup {:.1} MiB; max under load {:.1} MiB; after load {:.1} MiB, after a /metrics scrape {:.1} MiB; peak (VmHWM) {:.1} MiB; {threads} threads{}",
        mib(idle_rss_kib),
        idle_ratio * 100.0,
        verdict(idle_ratio < 1.0),
        mib(setup_rss_kib),
        mib(load_rss_kib),
        mib(after_rss_kib),
        mib(after_scrape_rss_kib),
        mib(hwm_kib),
        opts.scrape_every.map(|s| format!(" (/metrics scraped every {s} s)")).unwrap_or_default()
    );
    if let Some(m) = &signin_memory {
        let outcomes: Vec<String> = m.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "Sign-in memory: {} password attempts ({} in flight, from {} loopback addresses; {}; Argon2 computations counted by the server: {}) in {:.1} s, {:.0} µs of server CPU each",
            m.attempts,
            signins::IN_FLIGHT,
            signins::SOURCES,
            outcomes.join(", "),
            m.computations.map_or("n/a".to_string(), |c| format!("{c:.0}")),
            m.phase.seconds,
            m.phase.server_cpu_us_per_request
        );
        println!(
            "  VmRSS before {:.1} MiB, max during {:.1} MiB, after {:.1} MiB ({:.1} MB vs {SIGNIN_RSS_TARGET_MB:.0} MB = {:.1}%: {}), growth {:+.1} MiB; VmHWM {:.1} MiB; threads {} → {}",
            mib(m.rss_before_kib),
            mib(m.phase.max_rss_kib),
            mib(m.rss_after_kib),
            m.rss_after_mb(),
            m.rss_after_mb() / SIGNIN_RSS_TARGET_MB * 100.0,
            verdict(m.rss_after_mb() < SIGNIN_RSS_TARGET_MB),
            mib(m.rss_after_kib) - mib(m.rss_before_kib),
            mib(m.hwm_after_kib),
            m.threads_before,
            m.threads_after
        );
    }
    if let (Some(plain), Some(authz)) = (&anonymous_pages, &anonymous_authorize) {
        println!(
            "Session rows from {} anonymous GETs of {} (no cookies): {} → {} = {:+} (target {ANONYMOUS_ROWS_TARGET}): {}; statuses {:?}",
            plain.phase.requests,
            sessions::PLAIN_PAGES.join(", "),
            plain.rows_before,
            plain.rows_after,
            plain.created(),
            verdict(plain.created() <= ANONYMOUS_ROWS_TARGET && plain.phase.errors == 0),
            plain.statuses
        );
        println!(
            "Session rows from {} anonymous GET /authorize with a valid partner request: {} → {} = {:+} (informative); statuses {:?}",
            authz.phase.requests,
            authz.rows_before,
            authz.rows_after,
            authz.created(),
            authz.statuses
        );
    }
    if noisy {
        println!(
            "WARNING: other processes took more than 5% of the server's CPU, or of a busy load generator's, during a phase (\"other CPU\"): the machine was not quiet; run again."
        );
    }

    let phase_json = |p: &PhaseResult| {
        json!({
            "requests": p.requests, "errors": p.errors, "first_error": p.first_error, "seconds": p.seconds, "per_sec": p.per_sec,
            "latency_ms": { "p50": p.p50_ms, "p90": p.p90_ms, "p99": p.p99_ms, "max": p.max_ms },
            "server_cpu_utilisation": p.server_cpu_util, "server_cpu_us_per_request": p.server_cpu_us_per_request, "database_backends_cpu_us_per_request": p.db_cpu_us_per_request,
            "client_cpu_utilisation": p.client_cpu_util, "other_cpu_on_server_core": p.other_server_cpu, "other_cpu_on_client_core": p.other_client_cpu, "quiet": p.quiet(), "max_rss_mib": mib(p.max_rss_kib),
        })
    };
    let baseline_json = |b: &Baseline| {
        json!({
            "sign_with_per_sec": b.sign_with_per_sec,
            "raw_rsa2048_pkcs1_sha512_sign_per_sec": b.raw_sign_per_sec,
            "rsa2048_verify_per_sec": b.verify_per_sec,
            "id_token_payload_bytes": b.id_token_payload_bytes,
        })
    };
    let mut results = json!({
        "generated_at_unix": citizen_id::clock::now_secs(),
        "mode": if opts.quick { "quick" } else { "full" },
        "machine": { "cpus": cpus, "cpu_model": cpu_model(), "client_pinned_cpu": pinned.then_some(CLIENT_CPU), "server_pinned_cpu": server_pinned.then_some(SERVER_CPU) },
        "quiet": !noisy,
        "concurrency": opts.concurrency,
        "spin_client": opts.spin_client,
        "database": database,
        "phase_seconds": opts.seconds,
        "baseline": { "before": baseline_json(&base_line), "after": baseline_json(&base_after) },
        "setup": { "server_startup_seconds": startup_secs, "authorize_codes_per_sec": authorize_per_sec },
        "phases": {
            "exchange": phase_json(&exchange), "refresh": phase_json(&refresh), "userinfo_first_use": phase_json(&userinfo_first), "userinfo": phase_json(&userinfo),
            "discovery": phase_json(&discovery_r), "jwks": phase_json(&jwks),
            "signin": signin_memory.as_ref().map(|m| phase_json(&m.phase)),
            "anonymous_pages": anonymous_pages.as_ref().map(|r| phase_json(&r.phase)),
            "anonymous_authorize": anonymous_authorize.as_ref().map(|r| phase_json(&r.phase)),
        },
        "signin_memory": signin_memory.as_ref().map(|m| json!({
            "attempts": m.attempts, "in_flight": signins::IN_FLIGHT, "source_addresses": signins::SOURCES, "outcomes": m.outcomes,
            "argon2_computations": m.computations,
            "rss_mib": { "before": mib(m.rss_before_kib), "max": mib(m.phase.max_rss_kib), "after": mib(m.rss_after_kib), "vmhwm_after": mib(m.hwm_after_kib) },
            "rss_after_mb": m.rss_after_mb(), "target_mb": SIGNIN_RSS_TARGET_MB, "met": m.rss_after_mb() < SIGNIN_RSS_TARGET_MB,
            "threads": { "before": m.threads_before, "after": m.threads_after },
        })),
        "anonymous_session_rows": anonymous_pages.as_ref().zip(anonymous_authorize.as_ref()).map(|(p, a)| json!({
            "plain_pages": { "paths": sessions::PLAIN_PAGES, "requests": p.phase.requests, "errors": p.phase.errors, "rows_before": p.rows_before, "rows_after": p.rows_after, "created": p.created(),
                             "target": ANONYMOUS_ROWS_TARGET, "met": p.created() <= ANONYMOUS_ROWS_TARGET && p.phase.errors == 0 },
            "authorize": { "requests": a.phase.requests, "errors": a.phase.errors, "rows_before": a.rows_before, "rows_after": a.rows_after, "created": a.created() },
        })),
        "memory_mib": {
            "idle": mib(idle_rss_kib), "after_setup": mib(setup_rss_kib), "max_under_load": mib(load_rss_kib),
            "after_load": mib(after_rss_kib), "after_metrics_scrape": mib(after_scrape_rss_kib), "peak_vmhwm": mib(hwm_kib), "threads": threads,
            "metrics_scraped_every_seconds": opts.scrape_every,
        },
        "targets": {
            "exchange": { "per_sec": exchange.per_sec, "ceiling_per_sec": exchange_ceiling, "ratio": exchange_ratio, "ratio_vs_raw_sign": exchange_ratio_raw, "target_ratio": EXCHANGE_TARGET_FRACTION, "met": exchange_ratio >= EXCHANGE_TARGET_FRACTION,
                          "server_core_sign_with_before_after": [before_exchange.map(|b| b.0), after_exchange.map(|a| a.0)], "ratio_vs_server_core_adjacent": exchange_ratio_adjacent,
                          "met_vs_server_core_adjacent": exchange_ratio_adjacent.map(|r| r >= EXCHANGE_TARGET_FRACTION),
                          "interleaved_round_ratios": round_ratios, "interleaved_median_ratio": round_median,
                          "met_interleaved_median": round_median.map(|m| m >= EXCHANGE_TARGET_FRACTION),
                          "redemptions_per_transaction": redemption_batching,
                          "rotations_per_transaction": rotation_batching },
            "userinfo": { "per_sec": userinfo.per_sec, "target_per_sec": USERINFO_TARGET_PER_SEC, "ratio": userinfo_ratio, "met": userinfo_ratio >= 1.0 },
            "idle_rss": { "mib": mib(idle_rss_kib), "target_mib": IDLE_RSS_TARGET_MIB, "ratio": idle_ratio, "met": idle_ratio < 1.0 },
        },
    });
    std::fs::create_dir_all(&target)?;
    if let Some((other, before)) = &before {
        println!();
        println!("Before ({}) / after ({}), each measured in this run:", other.display(), bin.display());
        let lines = compare::summary(before, &results);
        for line in &lines {
            println!("  {line}");
        }
        results["compared_with"] = json!({ "binary": other, "results": compare::before_results_path(&target), "summary": lines });
    }
    let out = std::env::var_os("CITIZEN_ID_BENCH_OUT").map(PathBuf::from).unwrap_or_else(|| target.join("bench-results.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
    println!();
    println!("Results written to {}", out.display());
    if ctx.perf {
        println!("Server profiles: {}/perf-<phase>.data (perf report -i ...)", target.display());
    }
    Ok(())
}
