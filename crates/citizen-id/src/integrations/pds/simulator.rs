//! A PDS FHIR R4 server for tests, the sandpit and load runs, serving synthetic patients.
//!
//! It answers `GET /Patient/{id}`, `GET /Patient?...` and `PATCH /Patient/{id}` with PDS's
//! status codes, error codes and resource shapes, so [`super::client::HttpPdsClient`] is
//! exercised over real HTTP. What it reproduces, because proofing depends on it:
//! - a missing or non-UUID `X-Request-ID` is refused (400), and the id is echoed back;
//! - restricted patients lose address, telecom and GP, carry security label `R`, and are never
//!   returned to a search that names a postcode;
//! - a superseded NHS number answers with the current record (whose `id` differs);
//! - more matches than `_max-results` (1 to 50, default 1) is a 200 `TOO_MANY_MATCHES`;
//! - updates need `If-Match: W/"<version>"`: missing is 412, stale is 409, success bumps it.
//!
//! Simplifications: fuzzy search is case, space and punctuation blind and accepts a given
//! name's initial, but knows no homophones or transposed names; wildcards (`*`) work only at
//! the end of a given name or postcode; date ranges and other search parameters are refused.
//!
//! Test hooks (no authentication; never expose this server publicly):
//! - `POST /_sim/mode` with `{"mode": "ok"|"fail_500"|"slow", "delay_ms": optional}`;
//!   `GET /_sim/mode` reads it;
//! - `GET /_sim/requests`: the last `X-Request-ID`s received, oldest first.
//!
//! [`SimHandle`] gives Rust code the same controls directly.

mod patch;
mod store;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::Path as FilePath;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::NhsNumber;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fhir::{self, operation_outcome};
use super::{PdsPatient, compact_postcode, dataset, is_uuid};
use store::{Criteria, Store};

/// Request ids kept for [`SimHandle::request_ids`].
pub const REQUEST_ID_CAPACITY: usize = 100;
/// Delay in `slow` mode unless set: longer than the client's default timeout.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(10);
/// `_max-results` when the search gives none: one unique match, as in PDS's
/// application-restricted access mode.
const DEFAULT_MAX_RESULTS: usize = 1;

/// Failure injection for the `/Patient` endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimMode {
    #[default]
    #[serde(rename = "ok")]
    Ok,
    /// 500 with an OperationOutcome.
    #[serde(rename = "fail_500")]
    Fail500,
    /// Waits the slow delay, then answers as normal.
    #[serde(rename = "slow")]
    Slow,
}

/// Shared view of a running simulator: set the mode, read request ids and stored patients.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

struct Inner {
    store: RwLock<Store>,
    control: Mutex<Control>,
    served: AtomicU64,
}

struct Control {
    mode: SimMode,
    slow_delay: Duration,
    request_ids: VecDeque<String>,
}

/// A router serving `patients` (a `Vec`, or a streaming iterator such as
/// [`super::dataset::stream_jsonl`] for large files).
pub fn router(patients: impl IntoIterator<Item = PdsPatient>) -> (Router, SimHandle) {
    let store = Store::new(patients);
    if store.skipped() > 0 {
        tracing::warn!(skipped = store.skipped(), "PDS simulator skipped unreadable or repeated patients");
    }
    let handle = SimHandle {
        inner: Arc::new(Inner {
            store: RwLock::new(store),
            control: Mutex::new(Control {
                mode: SimMode::Ok,
                slow_delay: DEFAULT_SLOW_DELAY,
                request_ids: VecDeque::new(),
            }),
            served: AtomicU64::new(0),
        }),
    };
    let router = Router::new()
        .route("/Patient", get(search))
        .route("/Patient/{id}", get(read).patch(update))
        .route("/_sim/mode", get(get_mode).post(set_mode))
        .route("/_sim/requests", get(list_requests))
        .with_state(handle.clone());
    (router, handle)
}

/// A router serving a patients file ([`super::dataset`]'s JSON Lines), read as a stream so a
/// million-patient file is never held in memory twice. A bad line fails the whole load.
pub fn router_from_file(path: &FilePath) -> io::Result<(Router, SimHandle)> {
    let mut failure = None;
    let patients = dataset::stream_jsonl(path)?.map_while(|r| r.map_err(|e| failure = Some(e)).ok());
    let built = router(patients);
    match failure {
        Some(e) => Err(e),
        None => Ok(built),
    }
}

/// Binds `addr` (port 0 picks a free port) and serves in a spawned task for the life of the
/// runtime. Returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    patients: impl IntoIterator<Item = PdsPatient>,
) -> std::io::Result<(SocketAddr, SimHandle)> {
    let (router, handle) = router(patients);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "PDS simulator stopped");
        }
    });
    Ok((local, handle))
}

impl SimHandle {
    pub fn mode(&self) -> SimMode {
        self.control().mode
    }

    pub fn set_mode(&self, mode: SimMode) {
        self.control().mode = mode;
    }

    /// How long `slow` mode waits before answering.
    pub fn set_slow_delay(&self, delay: Duration) {
        self.control().slow_delay = delay;
    }

    /// The last [`REQUEST_ID_CAPACITY`] `X-Request-ID` values received, oldest first.
    pub fn request_ids(&self) -> Vec<String> {
        self.control().request_ids.iter().cloned().collect()
    }

    pub fn last_request_id(&self) -> Option<String> {
        self.control().request_ids.back().cloned()
    }

    /// `/Patient` requests answered so far (any status), for load runs.
    pub fn requests_served(&self) -> u64 {
        self.inner.served.load(Ordering::Relaxed)
    }

    /// Patients held (superseded numbers included).
    pub fn len(&self) -> usize {
        self.read_store().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored, unredacted record answering for `nhs` (following supersession).
    pub fn patient(&self, nhs: &NhsNumber) -> Option<PdsPatient> {
        let store = self.read_store();
        store.resolve(nhs).map(|idx| store.get(idx).0)
    }

    /// Every update is a single assignment or push, so a poisoned lock still holds consistent
    /// state.
    fn control(&self) -> MutexGuard<'_, Control> {
        self.inner.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.inner.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_store(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.inner.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A FHIR JSON response, echoing the request id as PDS does.
fn fhir_response(status: StatusCode, body: Vec<u8>, request_id: &str, version: Option<u32>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("W/\"{v}\"")).ok()) {
        h.insert(header::ETAG, v);
    }
    r
}

fn error(status: StatusCode, request_id: &str, issue_code: &str, code: &str, display: &str) -> Response {
    let body = operation_outcome("error", issue_code, code, display).to_string().into_bytes();
    fhir_response(status, body, request_id, None)
}

/// Checks `X-Request-ID`, records it, then applies the failure mode. `Ok` is the request id.
async fn admit(h: &SimHandle, headers: &HeaderMap) -> Result<String, Response> {
    h.inner.served.fetch_add(1, Ordering::Relaxed);
    let Some(value) = headers.get("x-request-id") else {
        return Err(error(StatusCode::BAD_REQUEST, "", "required", "MISSING_VALUE", "Required value is missing"));
    };
    let id = value.to_str().unwrap_or("").to_owned();
    if !is_uuid(&id) {
        return Err(error(StatusCode::BAD_REQUEST, "", "value", "INVALID_VALUE", "Provided value is invalid"));
    }
    let (mode, delay) = {
        let mut c = h.control();
        c.request_ids.push_back(id.clone());
        while c.request_ids.len() > REQUEST_ID_CAPACITY {
            c.request_ids.pop_front();
        }
        (c.mode, c.slow_delay)
    };
    match mode {
        SimMode::Ok => Ok(id),
        SimMode::Slow => {
            tokio::time::sleep(delay).await;
            Ok(id)
        }
        SimMode::Fail500 => {
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, &id, "exception", "SERVER_ERROR", "Internal server error"))
        }
    }
}

/// PDS takes exactly ten digits with a valid check digit in the path.
fn parse_id(id: &str) -> Option<NhsNumber> {
    (id.len() == 10 && id.bytes().all(|b| b.is_ascii_digit())).then(|| NhsNumber::parse(id).ok()).flatten()
}

fn invalid_id(request_id: &str) -> Response {
    error(StatusCode::BAD_REQUEST, request_id, "value", "INVALID_RESOURCE_ID", "Resource Id is invalid")
}

fn not_found(request_id: &str) -> Response {
    error(StatusCode::NOT_FOUND, request_id, "not_found", "RESOURCE_NOT_FOUND", "Resource not found")
}

/// `GET /Patient/{id}`.
async fn read(State(h): State<SimHandle>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let rid = match admit(&h, &headers).await {
        Ok(rid) => rid,
        Err(r) => return r,
    };
    let Some(nhs) = parse_id(&id) else { return invalid_id(&rid) };
    let found = {
        let store = h.read_store();
        store.resolve(&nhs).map(|idx| store.get(idx))
    };
    let Some((patient, version)) = found else { return not_found(&rid) };
    let body = serde_json::to_vec(&fhir::to_fhir(&patient, version)).unwrap_or_default();
    fhir_response(StatusCode::OK, body, &rid, Some(version))
}

/// `GET /Patient?family&given&birthdate&address-postalcode&_fuzzy-match&_max-results...`.
async fn search(State(h): State<SimHandle>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let rid = match admit(&h, &headers).await {
        Ok(rid) => rid,
        Err(r) => return r,
    };
    let (criteria, max, exact_only) = match parse_search(query.as_deref().unwrap_or("")) {
        Ok(parsed) => parsed,
        Err((code, display)) => {
            return error(StatusCode::BAD_REQUEST, &rid, "invalid", code, display);
        }
    };
    let found = {
        let store = h.read_store();
        let mut hits = store.search(&criteria);
        if exact_only {
            hits.retain(|(_, score)| *score >= 1.0);
        }
        if hits.len() > max {
            None
        } else {
            let to_fhir = |(idx, score)| {
                let (p, version) = store.get(idx);
                (fhir::to_fhir(&p, version), score)
            };
            Some(hits.into_iter().map(to_fhir).collect::<Vec<_>>())
        }
    };
    let body = match found {
        Some(patients) => fhir::search_bundle(patients),
        None => fhir::too_many_matches_bundle(),
    };
    fhir_response(StatusCode::OK, body.to_string().into_bytes(), &rid, None)
}

type SearchParseError = (&'static str, &'static str);

/// Reads the query string the way PDS validates it; `Err` is (error code, display).
fn parse_search(query: &str) -> Result<(Criteria, usize, bool), SearchParseError> {
    let bad_value = ("INVALID_VALUE", "Provided value is invalid");
    let bad_search = ("INVALID_SEARCH_DATA", "Search data is invalid");
    let (mut family, mut given, mut birth, mut postcode) = (None, Vec::new(), None, None);
    let (mut fuzzy, mut exact, mut max) = (false, false, DEFAULT_MAX_RESULTS);
    let flag = |v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_value),
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "family" => family = Some(v.trim().to_owned()),
            "given" => given.push(v.trim().to_owned()),
            "birthdate" => {
                let date = v.strip_prefix("eq").unwrap_or(&v);
                birth = Some(store::parse_date(date).ok_or(bad_value)?);
            }
            "address-postalcode" | "address-postcode" => postcode = Some(compact_postcode(&v)),
            "_fuzzy-match" => fuzzy = flag(&v)?,
            "_exact-match" => exact = flag(&v)?,
            "_history" => {
                flag(&v)?;
            }
            "_max-results" => {
                max = v.parse().ok().filter(|n| (1..=50).contains(n)).ok_or(bad_value)?;
            }
            "gender" => {}
            _ => return Err(("ADDITIONAL_PROPERTIES", "Unrecognised query parameter")),
        }
    }
    let (Some(family), Some(birth)) = (family.filter(|f| !f.is_empty()), birth) else {
        return Err(bad_search);
    };
    let given = given.join(" ");
    let wildcard = family.contains('*') || (fuzzy && (given.contains('*') || postcode.iter().any(|p| p.contains('*'))));
    if wildcard || (fuzzy && given.is_empty()) {
        return Err(bad_search);
    }
    Ok((Criteria { family, given, birth, postcode: postcode.filter(|p| !p.is_empty()), fuzzy }, max, exact))
}

/// `PATCH /Patient/{id}` with a JSON Patch of telecom entries and `If-Match: W/"<version>"`.
async fn update(State(h): State<SimHandle>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = match admit(&h, &headers).await {
        Ok(rid) => rid,
        Err(r) => return r,
    };
    let Some(nhs) = parse_id(&id) else { return invalid_id(&rid) };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json-patch+json") {
        return error(StatusCode::BAD_REQUEST, &rid, "value", "INVALID_VALUE", "Provided value is invalid");
    }
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).unwrap_or("");
    let wanted = if_match.strip_prefix("W/\"").and_then(|v| v.strip_suffix('"')).and_then(|v| v.parse::<u32>().ok());
    let Some(wanted) = wanted else {
        return error(StatusCode::PRECONDITION_FAILED, &rid, "structure", "PRECONDITION_FAILED", "Required condition was not fulfilled");
    };
    let Ok(patches) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, &rid, "structure", "INVALID_UPDATE", "Update is invalid");
    };
    let mut store = h.write_store();
    let Some(idx) = store.resolve(&nhs) else { return not_found(&rid) };
    let (patient, version) = store.get(idx);
    if version != wanted {
        return error(StatusCode::CONFLICT, &rid, "conflict", "RESOURCE_VERSION_MISMATCH", "Resource version mismatch");
    }
    let (mobile, email) = match patch::apply(fhir::telecom_of(&patient), &patches) {
        Ok(contacts) => contacts,
        Err(e) => {
            let status = if e.code == "FORBIDDEN_UPDATE" { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST };
            return error(status, &rid, "invalid", e.code, e.diagnostics);
        }
    };
    let version = store.set_contact(idx, mobile, email);
    let (patient, _) = store.get(idx);
    drop(store);
    let body = serde_json::to_vec(&fhir::to_fhir(&patient, version)).unwrap_or_default();
    fhir_response(StatusCode::OK, body, &rid, Some(version))
}

#[derive(Deserialize)]
struct ModeRequest {
    mode: SimMode,
    delay_ms: Option<u64>,
}

async fn set_mode(State(h): State<SimHandle>, Json(req): Json<ModeRequest>) -> Json<Value> {
    if let Some(ms) = req.delay_ms {
        h.set_slow_delay(Duration::from_millis(ms));
    }
    h.set_mode(req.mode);
    Json(json!({ "mode": req.mode }))
}

async fn get_mode(State(h): State<SimHandle>) -> Json<Value> {
    Json(json!({ "mode": h.mode() }))
}

async fn list_requests(State(h): State<SimHandle>) -> Json<Vec<String>> {
    Json(h.request_ids())
}
