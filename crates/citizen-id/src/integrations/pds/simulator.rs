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

mod handlers;
mod patch;
mod store;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::NhsNumber;
use serde::{Deserialize, Serialize};

use crate::integrations::fault_injection::{self, FaultControl};
use super::{PdsPatient, dataset};
use handlers::{read, search, update};
use store::Store;

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
        tracing::warn!(
            skipped = store.skipped(),
            "PDS simulator skipped unreadable or repeated patients"
        );
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
        .route("/_sim/mode", get(fault_injection::get_mode::<SimHandle>).post(fault_injection::set_mode::<SimHandle>))
        .route("/_sim/requests", get(list_requests))
        .with_state(handle.clone());
    (router, handle)
}

/// A router serving a patients file ([`super::dataset`]'s JSON Lines), read as a stream so a
/// million-patient file is never held in memory twice. A bad line fails the whole load.
pub fn router_from_file(path: &Path) -> io::Result<(Router, SimHandle)> {
    let mut failure = None;
    let patients =
        dataset::stream_jsonl(path)?.map_while(|r| r.map_err(|e| failure = Some(e)).ok());
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

    /// Changes a record's contact details as another system updating PDS would (a GP
    /// practice, the NHS App): the version goes up. Returns the new version, or `None` for an
    /// unknown number.
    pub fn change_contact(&self, nhs: &NhsNumber, mobile: Option<String>, email: Option<String>) -> Option<u32> {
        let mut store = self.write_store();
        let idx = store.resolve(nhs)?;
        Some(store.set_contact(idx, mobile, email))
    }

    /// Every update is a single assignment or push, so a poisoned lock still holds consistent
    /// state.
    fn control(&self) -> MutexGuard<'_, Control> {
        self.inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read_store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_store(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.inner
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
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

async fn list_requests(State(h): State<SimHandle>) -> Json<Vec<String>> {
    Json(h.request_ids())
}
