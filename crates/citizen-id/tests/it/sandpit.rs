//! The README's first command: `citizen-id sandpit` runs on its embedded defaults (SQLite in the
//! data dir, created and migrated on first run, the demo partner, notifications on a
//! development page), prints the URLs to open, and accepts the fixed test code 190696.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::web::WebClient;

/// The sandpit process, stopped when the test ends, however it ends.
struct Sandpit(Child);

impl Drop for Sandpit {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `citizen-id sandpit` on a free port with `data_dir` and returns it with the URL its
/// banner says to open.
async fn start(data_dir: &std::path::Path) -> (Sandpit, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_citizen-id"))
        .args(["sandpit", "--listen", "127.0.0.1:0", "--data-dir", data_dir.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run citizen-id sandpit");
    let stdout = child.stdout.take().unwrap();
    let sandpit = Sandpit(child);
    // The banner comes back through a channel; the thread goes on reading (and dropping) the
    // output until the process ends, as a terminal would.
    let (banner_tx, banner_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut banner_tx = Some(banner_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(tx) = banner_tx.take_if(|_| line.trim_start().starts_with("Data:")) {
                lines.push(line);
                let _ = tx.send(std::mem::take(&mut lines));
            } else if banner_tx.is_some() {
                lines.push(line);
            }
        }
    });
    let banner = tokio::time::timeout(Duration::from_secs(60), banner_rx).await.expect("the sandpit printed its URLs within a minute").expect("the banner");
    let open = banner.iter().find_map(|l| l.trim().strip_prefix("Open:")).unwrap_or_else(|| panic!("no URL to open in {banner:?}"));
    let base = open.trim().trim_end_matches('/').to_string();
    assert!(banner.iter().any(|l| l.contains("Test security code: 190696")), "{banner:?}");
    assert!(banner.iter().any(|l| l.contains(&format!("{base}/demo"))), "{banner:?}");
    (sandpit, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandpit_runs_on_its_defaults_and_accepts_the_test_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_sandpit, base) = start(dir.path()).await;
    assert!(dir.path().join("citizen-id.db").exists(), "SQLite in the data dir");
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/ready")).send().await.unwrap().status(), 200);
    let demo = http.get(format!("{base}/demo")).send().await.unwrap().text().await.unwrap();
    assert!(demo.contains("Continue with Citizen ID"), "the sample partner page");

    // A new citizen registers with the test code for both the email and the SMS code.
    let mut web = WebClient::new(&base);
    web.get("/register").await;
    assert_eq!(web.post("/register", &[("email", "sandpit.user@example.com")]).await.heading(), "Check your email");
    assert_eq!(web.post("/register/email-code", &[("code", "190696")]).await.heading(), "Create a password");
    let page = web.post("/register/password", &[("password", "plum-harbour-violet-42"), ("confirm", "plum-harbour-violet-42")]).await;
    assert_eq!(page.heading(), "Enter your mobile phone number");
    assert_eq!(web.post("/register/mobile", &[("mobile", "07700 900123")]).await.heading(), "Check your phone");
    assert_eq!(web.post("/register/mobile-code", &[("code", "190696")]).await.heading(), "Sign in faster with a passkey");
    // The messages sent are on the development page once the delivery worker (every 200 ms)
    // has passed them to the development sink.
    let mut messages = String::new();
    for _ in 0..50 {
        messages = http.get(format!("{base}/dev/messages")).send().await.unwrap().text().await.unwrap();
        if messages.contains("sandpit.user@example.com") && messages.contains("+447700900123") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(messages.contains("sandpit.user@example.com"), "the email code is shown on the messages page");
    assert!(messages.contains("+447700900123"), "and the SMS code");
}
