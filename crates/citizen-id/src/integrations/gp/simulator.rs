//! A GP system simulator serving our HTTP rendering of NL01 (see [`super::client`]), for tests
//! and the sandpit.
//!
//! It keeps linkage records in memory per practice, seeded at start (the sandpit uses
//! [`super::documented_credentials`]); the practices it knows are those of the seed plus any
//! added through [`SimHandle`]. Like a GP system it creates a linkage key for any valid NHS
//! number at a known practice: a random 15-character upper-case key and a 9-digit account ID.
//! Requests without `X-Request-ID` are refused (400), so tests prove the client sends it; the
//! simulator echoes it back.
//!
//! Test hooks (no authentication; never expose this server publicly):
//! - `POST /_sim/mode` with `{"mode": "ok"|"fail_500"|"slow", "delay_ms": optional}` injects
//!   failures on the NL01 routes; `GET /_sim/mode` reads it.
//! - `GET /_sim/records`: every record, linkage keys included.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::NhsNumber;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::integrations::fault_injection::{self, FaultControl};
use super::wire::{self, CreateRequest, ErrorBody, VerifyRequest, VerifyResponse};
use super::{GpCredentials, LinkageRecord, parse_ods_code};

/// Delay in `slow` mode unless set: longer than the client's default timeout.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(15);
/// Length of the linkage keys the simulator creates.
pub const CREATED_KEY_LEN: usize = 15;

/// Failure injection for the NL01 routes (applied after the request id check).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimMode {
    #[default]
    #[serde(rename = "ok")]
    Ok,
    /// 500 with a `server_error` body.
    #[serde(rename = "fail_500")]
    Fail500,
    /// Waits the slow delay, then answers as normal.
    #[serde(rename = "slow")]
    Slow,
}

/// Shared view of a running simulator: read and add records, set the mode.
#[derive(Clone)]
pub struct SimHandle {
    state: Arc<Mutex<SimState>>,
}

struct SimState {
    /// ODS code -> NHS number -> record, both keys in canonical form.
    practices: BTreeMap<String, BTreeMap<String, LinkageRecord>>,
    mode: SimMode,
    slow_delay: Duration,
}

/// A router over an in-memory GP system seeded with `seed`.
pub fn router(seed: Vec<LinkageRecord>) -> (Router, SimHandle) {
    let handle = SimHandle {
        state: Arc::new(Mutex::new(SimState {
            practices: BTreeMap::new(),
            mode: SimMode::Ok,
            slow_delay: DEFAULT_SLOW_DELAY,
        })),
    };
    for record in seed {
        handle.insert(record);
    }
    let router = Router::new()
        .route("/practices/{ods}/linkage-keys", post(create))
        .route("/practices/{ods}/linkage-keys/verify", post(verify))
        .route("/practices/{ods}/linkage-keys/{nhs}", get(retrieve))
        .route("/_sim/mode", get(fault_injection::get_mode::<SimHandle>).post(fault_injection::set_mode::<SimHandle>))
        .route("/_sim/records", get(list_records))
        .with_state(handle.clone());
    (router, handle)
}

/// Binds `addr` (port 0 picks a free port) and serves in a spawned task for the life of the
/// runtime. Returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    seed: Vec<LinkageRecord>,
) -> io::Result<(SocketAddr, SimHandle)> {
    let (router, handle) = router(seed);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "GP simulator stopped");
        }
    });
    Ok((local, handle))
}

impl SimHandle {
    /// Every record, ordered by practice then NHS number.
    pub fn records(&self) -> Vec<LinkageRecord> {
        let s = self.lock();
        s.practices
            .values()
            .flat_map(|p| p.values().cloned())
            .collect()
    }

    /// The record for a patient at a practice, if any.
    pub fn record(&self, ods_code: &str, nhs_number: &str) -> Option<LinkageRecord> {
        let (ods, nhs) = (ods_key(ods_code), nhs_key(nhs_number));
        self.lock().practices.get(&ods)?.get(&nhs).cloned()
    }

    /// Adds or replaces a record, adding its practice if new.
    pub fn insert(&self, record: LinkageRecord) {
        let (ods, nhs) = (ods_key(&record.ods_code), nhs_key(&record.nhs_number));
        self.lock()
            .practices
            .entry(ods)
            .or_default()
            .insert(nhs, record);
    }

    /// Makes a practice known without any linkage records.
    pub fn add_practice(&self, ods_code: &str) {
        self.lock().practices.entry(ods_key(ods_code)).or_default();
    }

    pub fn mode(&self) -> SimMode {
        self.lock().mode
    }

    pub fn set_mode(&self, mode: SimMode) {
        self.lock().mode = mode;
    }

    /// How long `slow` mode waits before answering.
    pub fn set_slow_delay(&self, delay: Duration) {
        self.lock().slow_delay = delay;
    }

    /// Every update is a single insert or assignment, so a poisoned lock still holds
    /// consistent state.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Canonical map keys; malformed values (possible in a hand-written seed) are kept as given.
fn ods_key(ods: &str) -> String {
    parse_ods_code(ods).unwrap_or_else(|_| ods.to_owned())
}

fn nhs_key(nhs: &str) -> String {
    NhsNumber::parse(nhs).map_or_else(|_| nhs.to_owned(), |n| n.as_str().to_owned())
}

fn reply(rid: &HeaderValue, status: StatusCode, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(wire::REQUEST_ID_HEADER, rid.clone());
    response
}

fn error(rid: &HeaderValue, status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: code.to_owned(),
        message: message.to_owned(),
    };
    reply(rid, status, body)
}

/// Checks the request id, applies the failure mode and checks the practice. `Ok` carries the
/// request id to echo and the canonical ODS code; `Err` is the response to send instead.
async fn prelude(
    h: &SimHandle,
    headers: &HeaderMap,
    ods: &str,
) -> Result<(HeaderValue, String), Response> {
    let Some(rid) = headers.get(wire::REQUEST_ID_HEADER).cloned() else {
        let body = json!({ "error": wire::INVALID_REQUEST, "message": "X-Request-ID is required" });
        return Err((StatusCode::BAD_REQUEST, Json(body)).into_response());
    };
    let (mode, delay) = {
        let s = h.lock();
        (s.mode, s.slow_delay)
    };
    match mode {
        SimMode::Ok => {}
        SimMode::Slow => tokio::time::sleep(delay).await,
        SimMode::Fail500 => {
            let (status, msg) = (StatusCode::INTERNAL_SERVER_ERROR, "simulated failure");
            return Err(error(&rid, status, wire::SERVER_ERROR, msg));
        }
    }
    let ods = ods_key(ods);
    if !h.lock().practices.contains_key(&ods) {
        let msg = "no practice with this ODS code";
        return Err(error(
            &rid,
            StatusCode::NOT_FOUND,
            wire::PRACTICE_UNKNOWN,
            msg,
        ));
    }
    Ok((rid, ods))
}

fn bad_request(rid: &HeaderValue, message: &str) -> Response {
    error(rid, StatusCode::BAD_REQUEST, wire::INVALID_REQUEST, message)
}

/// `POST /practices/{ods}/linkage-keys`: returns the existing record (200) or makes one (201).
async fn create(
    State(h): State<SimHandle>,
    Path(ods): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (rid, ods) = match prelude(&h, &headers, &ods).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(req) = serde_json::from_slice::<CreateRequest>(&body) else {
        return bad_request(&rid, "body must be {\"nhsNumber\": ...}");
    };
    let Ok(nhs) = NhsNumber::parse(&req.nhs_number) else {
        return bad_request(&rid, "nhsNumber is not a valid NHS number");
    };
    let mut s = h.lock();
    let practice = s.practices.entry(ods.clone()).or_default();
    if let Some(existing) = practice.get(nhs.as_str()) {
        return reply(&rid, StatusCode::OK, existing.clone());
    }
    let mut rng = rand::rng();
    let account_id = loop {
        let candidate = rng.random_range(100_000_000u32..=999_999_999).to_string();
        if !practice.values().any(|r| r.account_id == candidate) {
            break candidate;
        }
    };
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let linkage_key = (0..CREATED_KEY_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let record = LinkageRecord {
        nhs_number: nhs.as_str().to_owned(),
        ods_code: ods,
        account_id,
        linkage_key,
    };
    practice.insert(record.nhs_number.clone(), record.clone());
    reply(&rid, StatusCode::CREATED, record)
}

/// `GET /practices/{ods}/linkage-keys/{nhs}`.
async fn retrieve(
    State(h): State<SimHandle>,
    Path((ods, nhs)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (rid, ods) = match prelude(&h, &headers, &ods).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(nhs) = NhsNumber::parse(&nhs) else {
        return bad_request(&rid, "not a valid NHS number");
    };
    match h.record(&ods, nhs.as_str()) {
        Some(record) => reply(&rid, StatusCode::OK, record),
        None => {
            let msg = "no linkage key for this patient at this practice";
            error(&rid, StatusCode::NOT_FOUND, wire::LINKAGE_NOT_FOUND, msg)
        }
    }
}

/// `POST /practices/{ods}/linkage-keys/verify`: `{"match": bool}`. A patient with no linkage
/// here, or malformed credentials, simply do not match.
async fn verify(
    State(h): State<SimHandle>,
    Path(ods): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (rid, ods) = match prelude(&h, &headers, &ods).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(req) = serde_json::from_slice::<VerifyRequest>(&body) else {
        return bad_request(
            &rid,
            "body must be {\"nhsNumber\", \"accountId\", \"linkageKey\"}",
        );
    };
    let Ok(nhs) = NhsNumber::parse(&req.nhs_number) else {
        return bad_request(&rid, "nhsNumber is not a valid NHS number");
    };
    let creds = GpCredentials::parse(&ods, &req.account_id, &req.linkage_key);
    let record = h.record(&ods, nhs.as_str());
    let matched = match (creds, record) {
        (Ok(creds), Some(record)) => creds.matches(&record),
        _ => false,
    };
    reply(&rid, StatusCode::OK, VerifyResponse { matched })
}

impl FaultControl for SimHandle {
    type Mode = SimMode;
    fn mode(&self) -> SimMode {
        SimHandle::mode(self)
    }
    fn set_mode(&self, mode: SimMode) {
        SimHandle::set_mode(self, mode)
    }
    fn set_slow_delay(&self, delay: Duration) {
        SimHandle::set_slow_delay(self, delay)
    }
}

async fn list_records(State(h): State<SimHandle>) -> Json<Vec<LinkageRecord>> {
    Json(h.records())
}
