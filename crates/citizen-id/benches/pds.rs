//! PDS simulator and demographic matching at national scale (issue 3):
//!   cargo bench --bench pds            (1,000,000 patients; `-- --quick` for 100,000)
//! Reports simulator reads per second (target: 5,000 or more), matches per second of the real
//! matching rules over HTTP, and resident memory, with the baseline of the same reads against
//! a 10-patient simulator measured in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use citizen_id::integrations::pds::{self, PdsClient, client::HttpPdsClient};
use citizen_id::proofing::matching::{self, Demographics, MatchOutcome};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Reads by NHS number with `concurrency` workers for `secs`; returns reads per second.
async fn reads_per_second(client: Arc<HttpPdsClient>, numbers: Arc<Vec<domain::NhsNumber>>, secs: u64, concurrency: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, numbers, done) = (client.clone(), numbers.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                client.get_patient(&numbers[i % numbers.len()]).await.expect("read");
                done.fetch_add(1, Ordering::Relaxed);
                i += concurrency;
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 1_000_000 };
    let secs = if quick { 2 } else { 5 };
    let any = "127.0.0.1:0".parse().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let rss_before = rss_mb();

    // Baseline: the documented 10-patient set.
    let small = pds::dataset::documented_patients();
    let small_numbers: Vec<_> = small.iter().filter(|p| !p.deceased).map(|p| p.nhs_number.clone()).collect();
    let (small_addr, _h) = pds::simulator::spawn(any, small).await.unwrap();
    let small_client = Arc::new(HttpPdsClient::new(http.clone(), &format!("http://{small_addr}"), Duration::from_secs(5)).unwrap());
    let baseline = reads_per_second(small_client, Arc::new(small_numbers), secs, 32).await;

    let started = Instant::now();
    let patients: Vec<_> = pds::dataset::generate(n, 7).collect();
    let generated_in = started.elapsed();
    let sample: Vec<_> = patients.iter().step_by(n / 2_000).filter(|p| !p.restricted && !p.deceased && p.superseded_by.is_none()).cloned().collect();
    let numbers: Vec<_> = sample.iter().map(|p| p.nhs_number.clone()).collect();
    let (addr, _handle) = pds::simulator::spawn(any, patients).await.unwrap();
    let rss_loaded = rss_mb();
    let client = Arc::new(HttpPdsClient::new(http, &format!("http://{addr}"), Duration::from_secs(5)).unwrap());
    let reads = reads_per_second(client.clone(), Arc::new(numbers), secs, 32).await;

    // Matching: the real rules (exact search, then fuzzy) for every sampled patient.
    let started = Instant::now();
    let (mut unique, mut other) = (0u64, 0u64);
    for p in &sample {
        let typed = Demographics {
            given_name: p.given_names[0].clone(),
            family_name: p.family_name.clone(),
            birth_date: domain::BirthDate::parse_iso(&p.birth_date, (2100, 1, 1)).unwrap(),
            postcode: domain::Postcode::parse(p.postcode.as_deref().unwrap_or("LS1 4AP")).unwrap(),
            nhs_number: None,
        };
        match matching::find(client.as_ref(), &typed).await.expect("PDS answered") {
            MatchOutcome::Unique(_) => unique += 1,
            _ => other += 1,
        }
    }
    let match_rate = (unique + other) as f64 / started.elapsed().as_secs_f64();

    println!("PDS simulator and matching, {n} patients (generated in {:.1}s)", generated_in.as_secs_f64());
    println!("  reads/s, 10 patients (baseline)      {baseline:>10.0}");
    println!("  reads/s, {n} patients          {reads:>10.0}   ({:.0}% of baseline; target 5,000/s: {})", 100.0 * reads / baseline, if reads >= 5000.0 { "met" } else { "MISSED" });
    println!("  matches/s (sequential, exact+fuzzy)  {match_rate:>10.0}   ({unique} unique, {other} other of {})", unique + other);
    println!("  resident memory: {rss_before:.0} MB before, {rss_loaded:.0} MB with {n} patients loaded ({:.0} bytes/patient)", (rss_loaded - rss_before) * 1_048_576.0 / n as f64);
}
