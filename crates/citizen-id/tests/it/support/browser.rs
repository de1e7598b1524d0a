//! Minimal Chrome DevTools Protocol client for headless-browser integration tests.
//!
//! One browser-level websocket; each page is a flattened target session
//! (`sessionId` on its messages). A reader task routes replies by `id` and events
//! to subscribers; a writer task owns the websocket sink.
//! Deps: tokio, tokio-tungstenite, futures-util, serde_json, anyhow, tempfile, base64.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};

/// axe-core (MPL-2.0), vendored; see vendor/axe-core-LICENSE.txt.
const AXE_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/vendor/axe.min.js"));
const AXE_TAGS: &str = "['wcag2a','wcag2aa','wcag21a','wcag21aa','wcag22aa']";

/// How long `goto` and `submit_and_wait` wait for the next document to load.
pub const NAV_TIMEOUT: Duration = Duration::from_secs(15);
/// Poll interval of `goto`, `submit_and_wait` and `wait_for`.
const POLL: Duration = Duration::from_millis(50);
/// Upper bound for one CDP command (`eval` included, e.g. a slow promise).
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromium may take to print its DevTools URL.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Set before a navigation; the next document does not have it.
const MARK: &str = "window.__cdp_marker = Math.random()";
const FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=0";

type Subscriber = (Option<String>, mpsc::UnboundedSender<Value>);

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value>>>>,
    /// (session filter, sink); a `None` filter receives every event.
    subscribers: Mutex<Vec<Subscriber>>,
    closed: AtomicBool,
    next_id: AtomicU64,
}

impl Shared {
    fn message(&self, session: Option<&str>, method: &str, params: Value) -> (u64, Message) {
        let id = self.next_id.fetch_add(1, SeqCst);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        (id, Message::Text(msg.to_string().into()))
    }
}

struct Conn {
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
}

impl Conn {
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let (id, msg) = self.shared.message(session, method, params);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(id, tx);
        if self.shared.closed.load(SeqCst) || self.out.send(msg).is_err() {
            self.shared.pending.lock().unwrap().remove(&id);
            bail!("CDP {method}: connection to chromium is closed");
        }
        match timeout(CMD_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply.with_context(|| format!("CDP {method}")),
            Ok(Err(_)) => bail!("CDP {method}: connection to chromium lost (crashed?)"),
            Err(_) => {
                self.shared.pending.lock().unwrap().remove(&id);
                bail!("CDP {method}: no reply within {CMD_TIMEOUT:?}")
            }
        }
    }

    /// Fire and forget (for Drop); an error reply is logged by the reader.
    fn send(&self, session: Option<&str>, method: &str, params: Value) {
        let (_, msg) = self.shared.message(session, method, params);
        let _ = self.out.send(msg);
    }
}

async fn read_loop(
    mut stream: impl Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Message>,
) {
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let mut v: Value = match serde_json::from_str(text.as_str()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("[cdp] unparsable message from chromium: {e}");
                continue;
            }
        };
        let Some(id) = v["id"].as_u64() else {
            on_event(&shared, &out, v);
            continue;
        };
        let reply = match v.get("error") {
            Some(err) => Err(anyhow!("{}", describe_cdp_error(err))),
            None => Ok(v["result"].take()),
        };
        match (shared.pending.lock().unwrap().remove(&id), reply) {
            (Some(tx), reply) => drop(tx.send(reply)),
            (None, Err(e)) => eprintln!("[cdp] error reply to command {id}: {e}"),
            (None, Ok(_)) => {}
        }
    }
    shared.closed.store(true, SeqCst);
    shared.pending.lock().unwrap().clear(); // wakes callers: "connection lost"
    shared.subscribers.lock().unwrap().clear();
}

fn on_event(shared: &Shared, out: &mpsc::UnboundedSender<Message>, v: Value) {
    let (method, params) = (v["method"].as_str().unwrap_or(""), &v["params"]);
    match method {
        "Runtime.exceptionThrown" => {
            let what = describe_exception(&params["exceptionDetails"]);
            eprintln!("[cdp] uncaught JS exception: {what}");
        }
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            let args = params["args"].as_array().into_iter().flatten();
            let text = |a: &Value| text_of(a.get("value").or(a.get("description")));
            let args: Vec<_> = args.map(text).collect();
            eprintln!("[cdp] console.error: {}", args.join(" "));
        }
        "Page.javascriptDialogOpening" => {
            // An open alert/confirm/prompt/beforeunload blocks the page: accept it.
            let (kind, text) = (&params["type"], &params["message"]);
            eprintln!("[cdp] accepting JS {kind} dialog: {text}");
            let (session, accept) = (v["sessionId"].as_str(), json!({"accept": true}));
            let (_, msg) = shared.message(session, "Page.handleJavaScriptDialog", accept);
            let _ = out.send(msg);
        }
        "Inspector.detached" | "Inspector.targetCrashed" | "Target.targetCrashed" => {
            eprintln!("[cdp] {method}: {params}")
        }
        _ => {}
    }
    let session = v["sessionId"].as_str();
    shared.subscribers.lock().unwrap().retain(|(filter, tx)| {
        (filter.is_some() && filter.as_deref() != session) || tx.send(v.clone()).is_ok()
    });
}

fn describe_cdp_error(err: &Value) -> String {
    let (message, code) = (text_of(err.get("message")), &err["code"]);
    let data = err.get("data").map(|d| format!(" ({})", text_of(Some(d))));
    format!("{message}{} [code {code}]", data.unwrap_or_default())
}

fn describe_exception(details: &Value) -> String {
    let ex = &details["exception"];
    match (ex.get("description"), ex.get("value")) {
        (Some(d), _) => text_of(Some(d)),
        (None, Some(v)) => format!("{} {}", text_of(details.get("text")), text_of(Some(v))),
        (None, None) => text_of(details.get("text")),
    }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn str_field(v: &Value, key: &str) -> Result<String> {
    let s = v[key].as_str().map(str::to_owned);
    s.with_context(|| format!("no {key} in {v}"))
}

/// A JS string literal (JSON string syntax is valid JS).
fn js_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Kills chromium's whole process group, then removes the profile directory.
struct Process {
    child: Child,
    _profile: tempfile::TempDir, // dropped after `drop` below has run
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Echoes chromium's stderr (much harmless dbus noise) only with CDP_DEBUG set.
/// Sends the DevTools websocket URL or, if chromium exits first, its stderr.
fn watch_stderr(stderr: ChildStderr) -> oneshot::Receiver<Result<String, String>> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let debug = std::env::var_os("CDP_DEBUG").is_some();
        let (mut tx, mut early) = (Some(tx), Vec::new());
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if debug {
                eprintln!("[chromium] {line}");
            }
            if tx.is_none() {
                continue;
            }
            match line.strip_prefix("DevTools listening on ") {
                Some(url) => drop(tx.take().map(|tx| tx.send(Ok(url.trim().to_owned())))),
                None if early.len() < 200 => early.push(line),
                None => {}
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Err(early.join("\n")));
        }
    });
    rx
}

/// A headless chromium with a fresh profile; killed (and the profile removed) on Drop.
/// Its reader/writer tasks live on the tokio runtime that called `launch`.
pub struct Browser {
    conn: Arc<Conn>,
    tasks: [tokio::task::JoinHandle<()>; 2],
    _process: Process,
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
        let shared = &self.conn.shared;
        shared.closed.store(true, SeqCst); // pages' calls now fail at once
        shared.pending.lock().unwrap().clear();
    }
}

impl Browser {
    /// Starts headless chromium ($CHROMIUM or /usr/bin/chromium). If it is missing:
    /// prints "skipped: ..." and returns `Ok(None)`, but with CI=true it is an error.
    pub async fn launch() -> Result<Option<Browser>> {
        let exe = std::env::var_os("CHROMIUM").map(PathBuf::from);
        let exe = exe.unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        if !exe.is_file() {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                let exe = exe.display();
                bail!("CI=true but chromium is not installed at {exe} (apt-get install chromium)");
            }
            eprintln!("skipped: chromium not installed (apt-get install chromium)");
            return Ok(None);
        }
        let _profile = tempfile::Builder::new().prefix("cdp-profile-").tempdir()?;
        let mut cmd = Command::new(&exe);
        cmd.args(FLAGS.split_whitespace()).arg("about:blank");
        cmd.arg(format!("--user-data-dir={}", _profile.path().display()));
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let spawned = cmd.spawn();
        let mut child = spawned.with_context(|| format!("spawning {}", exe.display()))?;
        let url_rx = watch_stderr(child.stderr.take().context("chromium stderr")?);
        let _process = Process { child, _profile };
        let url = match timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(Ok(url))) => url,
            Ok(Ok(Err(log))) => bail!("chromium exited before DevTools was ready:\n{log}"),
            Ok(Err(_)) => bail!("chromium's stderr reader died"),
            Err(_) => bail!("chromium printed no DevTools URL within {LAUNCH_TIMEOUT:?}"),
        };
        let config = WebSocketConfig::default().max_message_size(Some(256 << 20));
        let config = config.max_frame_size(Some(256 << 20));
        let ws = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
        let (ws, _) = ws.await.with_context(|| format!("connecting to {url}"))?;
        let (mut sink, stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let shared = Arc::new(Shared::default());
        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        let reader = tokio::spawn(read_loop(stream, shared.clone(), out.clone()));
        let conn = Arc::new(Conn { out, shared });
        let tasks = [writer, reader];
        Ok(Some(Browser {
            conn,
            tasks,
            _process,
        }))
    }

    /// Opens a new tab on about:blank with the Page and Runtime domains enabled.
    pub async fn new_page(&self) -> Result<Page> {
        let params = json!({"url": "about:blank"});
        let target = self.call("Target.createTarget", params).await?;
        let target_id = str_field(&target, "targetId")?;
        let params = json!({"targetId": target_id, "flatten": true});
        let attached = self.call("Target.attachToTarget", params).await?;
        let (session, conn) = (str_field(&attached, "sessionId")?, self.conn.clone());
        let page = Page {
            conn,
            session,
            target_id,
        };
        page.run("Page.enable", json!({})).await?;
        page.run("Runtime.enable", json!({})).await?;
        Ok(page)
    }

    /// A raw browser-level CDP command.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(None, method, params).await
    }
}

/// One tab, closed (fire and forget) on Drop.
pub struct Page {
    conn: Arc<Conn>,
    session: String,
    target_id: String,
}

impl Drop for Page {
    fn drop(&mut self) {
        let params = json!({"targetId": self.target_id});
        self.conn.send(None, "Target.closeTarget", params);
    }
}

impl Page {
    /// A raw CDP command on this page's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(Some(&self.session), method, params).await
    }

    async fn run(&self, method: &str, params: Value) -> Result<()> {
        self.call(method, params).await.map(drop)
    }

    /// This page's CDP events (e.g. `Network.*` after `Network.enable`), raw.
    pub fn events(&self) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut subscribers = self.conn.shared.subscribers.lock().unwrap();
        subscribers.push((Some(self.session.clone()), tx));
        rx
    }

    /// Evaluates `js` (expression or script; a promise is awaited) to its JSON value
    /// (`Null` for undefined, a string for NaN/Infinity/bigint). A throw is an `Err`.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let params = json!({"expression": js, "awaitPromise": true,
            "returnByValue": true, "userGesture": true});
        let r = self.call("Runtime.evaluate", params).await?;
        if let Some(details) = r.get("exceptionDetails") {
            bail!("JS error: {}", describe_exception(details));
        }
        let res = &r["result"];
        let value = res.get("value").or(res.get("unserializableValue"));
        Ok(value.cloned().unwrap_or(Value::Null))
    }

    async fn eval_string(&self, js: &str) -> Result<String> {
        match self.eval(js).await? {
            Value::String(s) => Ok(s),
            other => bail!("`{js}` gave {other}, not a string"),
        }
    }

    /// Runs `body` with `el` bound to the first match of `selector` (`Err` if none).
    async fn on_el(&self, selector: &str, body: &str) -> Result<Value> {
        let sel = js_str(selector);
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             if (!el) throw new Error('no element matches ' + {sel}); {body} }})()"
        ))
        .await
    }

    /// Navigates and waits for the new document to load (see `NAV_TIMEOUT`).
    /// A network error (e.g. connection refused) is an `Err`; HTTP 4xx/5xx are not.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.eval(MARK).await?;
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(err) = r.get("errorText").and_then(Value::as_str) {
            bail!("navigating to {url}: {err}");
        }
        // No loaderId: a same-document (#fragment) navigation, the marker stays.
        let new_document = r.get("loaderId").is_some();
        let waited = self.wait_loaded(new_document).await;
        waited.with_context(|| format!("goto {url}"))
    }

    /// Clicks `selector` and waits for the navigation it starts to load.
    pub async fn submit_and_wait(&self, selector: &str) -> Result<()> {
        let body =
            format!("if (el.disabled) throw new Error('element is disabled'); {MARK}; el.click();");
        self.on_el(selector, &body).await?;
        let waited = self.wait_loaded(true).await;
        waited.with_context(|| format!("submit_and_wait({selector})"))
    }

    /// Waits until readyState is "complete" in a document without our marker (if
    /// `new_document`) and location.href reads the same on two polls in a row.
    async fn wait_loaded(&self, new_document: bool) -> Result<()> {
        let marker = ["", "typeof window.__cdp_marker === 'undefined' && "][new_document as usize];
        let js = format!(
            "(() => {{ if (!({marker}document.readyState === 'complete')) return false; \
             const same = window.__cdp_href === location.href; \
             window.__cdp_href = location.href; return same; }})()"
        );
        if let Err(e) = self.poll(&js, NAV_TIMEOUT, "the next page to load").await {
            let at = self.url().await.unwrap_or_else(|e| format!("? ({e})"));
            return Err(e.context(format!("now at {at}")));
        }
        Ok(())
    }

    /// Polls the JS expression `predicate` (may be a promise) every 50 ms until truthy.
    pub async fn wait_for(&self, predicate: &str, timeout: Duration) -> Result<()> {
        let js = format!("(async () => !!(await ({predicate})))()");
        self.poll(&js, timeout, &format!("`{predicate}`")).await
    }

    /// Evaluates `js` every `POLL` until it gives `true`; JS errors count as "not yet".
    async fn poll(&self, js: &str, limit: Duration, what: &str) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut last_err = None;
        loop {
            match timeout_at(deadline, self.eval(js)).await {
                Ok(Ok(Value::Bool(true))) => return Ok(()),
                Ok(Err(e)) => last_err = Some(e),
                _ => {}
            }
            if self.conn.shared.closed.load(SeqCst) || Instant::now() >= deadline {
                let why = last_err.map(|e| format!(" (last error: {e:#})"));
                let why = why.unwrap_or_default();
                bail!("timed out after {limit:?} waiting for {what}{why}");
            }
            sleep(POLL).await;
        }
    }

    pub async fn url(&self) -> Result<String> {
        self.eval_string("location.href").await
    }

    pub async fn title(&self) -> Result<String> {
        self.eval_string("document.title").await
    }

    /// The current DOM as HTML (`document.documentElement.outerHTML`).
    pub async fn content(&self) -> Result<String> {
        self.eval_string("document.documentElement.outerHTML").await
    }

    /// `innerText` of the first match; `Err` if nothing matches.
    pub async fn text(&self, selector: &str) -> Result<String> {
        match self.on_el(selector, "return el.innerText;").await? {
            Value::String(s) => Ok(s),
            other => bail!("innerText of {selector} is {other}"),
        }
    }

    pub async fn exists(&self, selector: &str) -> Result<bool> {
        let js = format!("document.querySelector({}) !== null", js_str(selector));
        Ok(self.eval(&js).await? == Value::Bool(true))
    }

    /// Sets the value (with the native setter) and dispatches `input` and `change`.
    pub async fn fill(&self, selector: &str, value: &str) -> Result<()> {
        let body = format!(
            "el.focus(); const v = {}; \
             const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value'); \
             if (d && d.set) d.set.call(el, v); else el.value = v; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); \
             el.dispatchEvent(new Event('change', {{bubbles: true}})); return true;",
            js_str(value)
        );
        self.on_el(selector, &body).await.map(drop)
    }

    /// `element.click()`; `Err` if nothing matches or the element is disabled.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let body = "if (el.disabled) throw new Error('element is disabled'); el.click();";
        self.on_el(selector, body).await.map(drop)
    }

    /// Ticks a checkbox/radio by clicking it (change handlers run) unless checked.
    pub async fn check(&self, selector: &str) -> Result<()> {
        let body = "if (!['checkbox', 'radio'].includes(el.type)) \
            throw new Error('not a checkbox or radio'); if (!el.checked) el.click(); \
            if (!el.checked) throw new Error('could not be checked (disabled?)');";
        self.on_el(selector, body).await.map(drop)
    }

    /// Screenshot of the viewport as PNG, written to `path` (parent dirs created).
    pub async fn screenshot_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let params = json!({"format": "png"});
        let r = self.call("Page.captureScreenshot", params).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(str_field(&r, "data")?)?;
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Adds a CTAP2 platform ("internal") authenticator with resident keys and
    /// user verification that answers without a prompt. Returns its authenticatorId.
    pub async fn enable_virtual_authenticator(&self) -> Result<String> {
        let params = json!({"enableUI": false});
        self.run("WebAuthn.enable", params).await?;
        let options = json!({"protocol": "ctap2", "transport": "internal",
            "hasResidentKey": true, "hasUserVerification": true,
            "isUserVerified": true, "automaticPresenceSimulation": true});
        let params = json!({"options": options});
        let added = self.call("WebAuthn.addVirtualAuthenticator", params);
        let r = added.await?;
        str_field(&r, "authenticatorId")
    }

    /// With `false`, ceremonies requiring user verification fail (NotAllowedError).
    pub async fn set_user_verified(&self, authenticator_id: &str, verified: bool) -> Result<()> {
        let params = json!({"authenticatorId": authenticator_id, "isUserVerified": verified});
        self.run("WebAuthn.setUserVerified", params).await
    }

    /// The authenticator's credentials: objects with credentialId (padded standard
    /// base64), isResidentCredential, rpId, privateKey, userHandle, signCount.
    pub async fn credentials(&self, authenticator_id: &str) -> Result<Vec<Value>> {
        let params = json!({"authenticatorId": authenticator_id});
        let mut r = self.call("WebAuthn.getCredentials", params).await?;
        Ok(serde_json::from_value(r["credentials"].take())?)
    }

    pub async fn remove_virtual_authenticator(&self, authenticator_id: &str) -> Result<()> {
        let params = json!({"authenticatorId": authenticator_id});
        let method = "WebAuthn.removeVirtualAuthenticator";
        self.run(method, params).await
    }

    /// Runs axe-core (WCAG 2.0/2.1 A and AA, 2.2 AA rules) on the current document.
    /// Each violation reads "id: help (n nodes: first target)"; empty means clean.
    pub async fn check_accessibility(&self) -> Result<Vec<String>> {
        if self.eval("typeof window.axe === 'object'").await? != Value::Bool(true) {
            let injected = self.eval(&format!("{AXE_JS}\n;true")).await;
            injected.context("injecting axe-core")?;
        }
        let js = format!(
            "axe.run(document, {{runOnly: {AXE_TAGS}}}).then(r => r.violations.map(v => \
             `${{v.id}}: ${{v.help}} (${{v.nodes.length}} nodes: ${{v.nodes.length ? \
             v.nodes[0].target.flat(Infinity).join(' >>> ') : '-'}})`))"
        );
        let violations = self.eval(&js).await.context("running axe-core")?;
        Ok(serde_json::from_value(violations)?)
    }
}
