//! Partners' own OIDC libraries against a running server, each with its defaults (issue 15
//! item 12): Python Authlib and Node openid-client v6 (the scripts in `tests/rp/`). Each runs
//! the authorization code flow (the test's browser signs in and hands the callback back), the
//! token exchange with the library's own private_key_jwt assertion, userinfo, and a refresh.
//!
//! The libraries live outside the clone, installed by `.ci/run` under
//! `/var/cache/citizen-id/rp-libs` (or `CITIZEN_ID_RP_LIBS`): a Python venv (`venv/`) and an npm
//! folder (`node/`). Missing, the test says "skipped: ..." and passes; with CI=true it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, Command};

use crate::support::protocol::signed_in;
use crate::support::{Citizen, TestApp, TestPartner};
use citizen_id::partners::{PartnerInput, build};
use citizen_id::web::demo::DemoPartner;

/// How long one step of a library's run may take (Python and Node start in well under this).
const STEP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Library {
    Authlib,
    OpenIdClient,
}

fn libs_dir() -> PathBuf {
    std::env::var_os("CITIZEN_ID_RP_LIBS").map(PathBuf::from).unwrap_or_else(|| "/var/cache/citizen-id/rp-libs".into())
}

fn script(name: &str) -> String {
    format!("{}/tests/rp/{name}", env!("CARGO_MANIFEST_DIR"))
}

impl Library {
    /// The command that runs this library's partner, or why it cannot run here.
    fn command(self) -> Result<Command, String> {
        let libs = libs_dir();
        match self {
            Library::Authlib => {
                let python = libs.join("venv/bin/python");
                let probe = std::process::Command::new(&python).args(["-c", "import authlib, requests"]).output();
                if !probe.is_ok_and(|o| o.status.success()) {
                    return Err(format!("Authlib not installed in {} (pip install authlib requests into that venv)", python.display()));
                }
                let mut cmd = Command::new(python);
                cmd.arg(script("authlib_rp.py"));
                Ok(cmd)
            }
            Library::OpenIdClient => {
                let node = libs.join("node");
                if !node.join("node_modules/openid-client/package.json").exists() {
                    return Err(format!("openid-client not installed in {} (npm install --prefix {0} openid-client@6)", node.display()));
                }
                if !std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
                    return Err("node is not installed".into());
                }
                let mut cmd = Command::new("node");
                cmd.arg(script("openid_client_rp.mjs")).env("CITIZEN_ID_RP_NODE", node);
                Ok(cmd)
            }
        }
    }
}

/// What the library's partner saw, for the citizen it signed in.
struct Run {
    result: Value,
    citizen: Citizen,
    partner: TestPartner,
}

/// Registers a partner with a fresh key, runs `library`'s script as that partner and drives
/// the browser part. `None` (with a loud skip) when the library is not installed outside CI.
async fn run(app: &TestApp, library: Library) -> Option<Run> {
    let mut cmd = match library.command() {
        Ok(cmd) => cmd,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true but {why}: .ci/run installs it"),
        Err(why) => {
            eprintln!("skipped: {why}");
            return None;
        }
    };
    let (der, jwk) = citizen_id::oidc::keys::generate_rsa_pkcs8().unwrap();
    let client_id = format!("rp-{}", citizen_id::crypto::random_token(6));
    let redirect_uri = "https://rp.example/callback".to_string();
    let record = build(PartnerInput {
        client_id: Some(client_id.clone()),
        name: format!("{library:?} partner"),
        redirect_uris: vec![redirect_uri.clone()],
        public_keys: vec![jwk.to_string()],
        scopes: "openid email profile".into(),
        vectors: vec!["P0.Cp.Cd".into()],
        refresh_tokens: true,
        im1: false,
        sso_from: vec![],
    })
    .expect("valid partner");
    app.state.db.insert_partner(&record).await.unwrap();
    let partner = TestPartner { client_id: client_id.clone(), redirect_uri: redirect_uri.clone(), signer: DemoPartner::from_pkcs8(&client_id, &der).unwrap() };
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("partner-key.pem");
    std::fs::write(&key_file, pem("PRIVATE KEY", &der)).unwrap();

    let child = cmd
        .args([app.state.settings.issuer.as_str(), &client_id, key_file.to_str().unwrap(), &redirect_uri])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{library:?} did not start: {e}"));
    let mut script = Script::new(library, child);

    let authorize = script.expect("AUTHORIZE ").await;
    let citizen = app.citizen().await;
    let mut web = signed_in(app, &partner, &citizen).await;
    let page = web.get(&authorize).await;
    let Some(callback) = page.left_to else {
        script.fail(format!("the authorize URL ended on \"{}\", not the callback", page.heading()))
    };
    script.send(&callback);
    let result = serde_json::from_str(&script.expect("RESULT ").await).expect("RESULT is JSON");
    script.finish().await;
    Some(Run { result, citizen, partner })
}

/// A running partner script: its stdin, its stdout by lines (read on a thread: the tokio
/// build here has no process support), its stderr collected for failures.
struct Script {
    library: Library,
    child: Child,
    stdin: ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    errors: Option<std::thread::JoinHandle<String>>,
}

impl Script {
    fn new(library: Library, mut child: Child) -> Script {
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Script { library, child, stdin, lines, errors: Some(errors) }
    }

    /// The rest of the next line starting with `prefix` (other lines are echoed).
    async fn expect(&mut self, prefix: &str) -> String {
        loop {
            match tokio::time::timeout(STEP, self.lines.recv()).await {
                Err(_) => self.fail(format!("no {prefix}line within {STEP:?}")),
                Ok(Some(line)) => match line.strip_prefix(prefix) {
                    Some(rest) => return rest.to_string(),
                    None => eprintln!("{:?}: {line}", self.library),
                },
                Ok(None) => self.fail(format!("the script ended before its {prefix}line")),
            }
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush()).unwrap_or_else(|e| self.fail(format!("stdin: {e}")));
    }

    /// Waits (a step at most) for the script to end, and checks it ended well.
    async fn finish(&mut self) {
        for _ in 0..STEP.as_millis() / 50 {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    self.fail(format!("exited with {status}"));
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.fail("did not end".into());
    }

    /// Stops the script and fails the test with what it wrote to stderr.
    fn fail(&mut self, why: String) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let errors = self.errors.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        panic!("{:?}: {why}\n{errors}", self.library);
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// What both libraries must have seen: a valid ID token for the citizen at the vector asked
/// for, their userinfo, and a refresh that rotated the token with the scope unchanged.
fn check_flow(app: &TestApp, run: &Run) {
    let r = &run.result;
    let id = &r["id_token"];
    assert_eq!(id["iss"].as_str(), Some(app.state.settings.issuer.as_str()));
    assert_eq!((id["sub"].as_str(), id["aud"].as_str()), (Some(run.citizen.id.as_str()), Some(run.partner.client_id.as_str())));
    assert_eq!(id["vot"], "P0.Cp.Cd");
    assert_eq!((r["userinfo"]["sub"].as_str(), r["userinfo"]["email"].as_str()), (Some(run.citizen.id.as_str()), Some(run.citizen.email.as_str())));
    assert_eq!(r["refreshed"]["scope"], "openid profile email", "the scope granted, unchanged");
    assert_eq!(r["refreshed"]["rotated"], true, "{r}");
}

/// The library's own assertions (code exchange, refresh): `aud` and lifetime `exp - iat`.
fn assertion_shapes(run: &Run) -> Vec<(String, i64)> {
    let list = run.result["assertions"].as_array().expect("assertions recorded");
    list.iter().map(|a| (a["aud"].as_str().unwrap_or("(not a string)").to_string(), a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap())).collect()
}

/// Authlib: `aud` the token endpoint, an hour's lifetime (refused before, at 10 minutes).
async fn authlib_with_its_defaults(app: TestApp) {
    let Some(run) = run(&app, Library::Authlib).await else { return };
    check_flow(&app, &run);
    let token_endpoint = app.url("/token");
    assert_eq!(assertion_shapes(&run), vec![(token_endpoint.clone(), 3600), (token_endpoint, 3600)], "Authlib's default assertion");
}

/// openid-client v6: `aud` the issuer (refused before), a minute's lifetime.
async fn openid_client_with_its_defaults(app: TestApp) {
    let Some(run) = run(&app, Library::OpenIdClient).await else { return };
    check_flow(&app, &run);
    let issuer = app.state.settings.issuer.clone();
    assert_eq!(assertion_shapes(&run), vec![(issuer.clone(), 60), (issuer, 60)], "openid-client's default assertion");
    assert_eq!(run.result["refreshed"]["userinfo_sub"].as_str(), Some(run.citizen.id.as_str()));
}

// Both databases, on an issuer of `http://localhost:PORT`: Authlib sends to plain HTTP only
// on localhost (RFC 8252 7.3), and openid-client is told to allow it.
crate::at_localhost_on_both_databases!(authlib_with_its_defaults, openid_client_with_its_defaults);
