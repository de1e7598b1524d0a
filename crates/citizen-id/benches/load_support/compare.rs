//! `--compare-bin OLD`: the same harness, first against another server binary (for instance
//! the one before a change), then against this one, and the figures side by side in one run:
//! exchanges per server core (each round against the server core's own signing rate next to
//! it, so a virtual machine's drift between the two halves does not count), resident memory
//! after the sign-in attempts, session rows left by anonymous GETs.
//!
//! The first half is this program started again with `CITIZEN_ID_BIN=OLD` and
//! `CITIZEN_ID_BENCH_OUT` naming its own results file; its table goes to this program's output
//! under a heading.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use serde_json::Value;

/// This program's arguments without `--compare-bin PATH`.
fn child_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--compare-bin" {
            args.next();
        } else {
            out.push(a);
        }
    }
    out
}

/// Runs the whole harness against `bin`; returns its results.
pub fn run_before(bin: &Path, out: &Path) -> anyhow::Result<Value> {
    eprintln!("0. The same harness against {} first (--compare-bin)...", bin.display());
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args(child_args())
        .env("CITIZEN_ID_BIN", bin)
        .env("CITIZEN_ID_BENCH_OUT", out)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running the harness against --compare-bin")?;
    println!("Before: {}", bin.display());
    print!("{}", String::from_utf8_lossy(&output.stdout));
    println!();
    if !output.status.success() {
        anyhow::bail!("the harness against {} failed ({})", bin.display(), output.status);
    }
    let text = std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    Ok(serde_json::from_str(&text)?)
}

pub fn before_results_path(target: &Path) -> PathBuf {
    target.join("bench-results-before.json")
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// The before / after lines, printed at the end of the run.
pub fn summary(before: &Value, after: &Value) -> Vec<String> {
    let pair = |path: &[&str]| (num(before, path), num(after, path));
    let show = |v: Option<f64>, unit: &str, digits: usize| v.map_or("n/a".to_string(), |v| format!("{v:.digits$}{unit}"));
    let ratio = |(b, a): (Option<f64>, Option<f64>)| match (b, a) {
        (Some(b), Some(a)) if b > 0.0 => format!("{:.3}", a / b),
        _ => "n/a".to_string(),
    };
    let mut lines = Vec::new();
    let per_core = |v: &Value| num(v, &["phases", "exchange", "server_cpu_us_per_request"]).filter(|us| *us > 0.0).map(|us| 1e6 / us);
    let cores = (per_core(before), per_core(after));
    lines.push(format!(
        "Exchanges per server core (1 s ÷ server CPU per exchange): before {}, after {}: after / before = {}",
        show(cores.0, "/s", 1),
        show(cores.1, "/s", 1),
        ratio(cores)
    ));
    let median = pair(&["targets", "exchange", "interleaved_median_ratio"]);
    lines.push(format!(
        "Exchanges per server core vs that core's own signing next to each round (median): before {}, after {}: after / before = {}",
        show(median.0.map(|m| m * 100.0), "%", 1),
        show(median.1.map(|m| m * 100.0), "%", 1),
        ratio(median)
    ));
    let rss = pair(&["signin_memory", "rss_after_mb"]);
    let growth = |v: &Value| Some(num(v, &["signin_memory", "rss_mib", "after"])? - num(v, &["signin_memory", "rss_mib", "before"])?);
    lines.push(format!(
        "VmRSS after the sign-in attempts: before {} (growth {}), after {} (growth {}); target under 100 MB",
        show(rss.0, " MB", 1),
        show(growth(before), " MiB", 1),
        show(rss.1, " MB", 1),
        show(growth(after), " MiB", 1)
    ));
    let plain = pair(&["anonymous_session_rows", "plain_pages", "created"]);
    let authorize = pair(&["anonymous_session_rows", "authorize", "created"]);
    lines.push(format!(
        "Session rows from anonymous GETs of the plain pages: before {}, after {} (target 0); of /authorize: before {}, after {}",
        show(plain.0, "", 0),
        show(plain.1, "", 0),
        show(authorize.0, "", 0),
        show(authorize.1, "", 0)
    ));
    lines
}
