//! A GOV.UK Notify-compatible server for tests and the sandpit.
//!
//! It checks the bearer JWT and request body the way Notify does and answers
//! with Notify's status codes and JSON shapes, so [`super::notify_client`] is
//! tested over real HTTP without reaching the internet. Missing or non-Bearer
//! `Authorization` gets 401 and a bad token 403, as in Notify.
//!
//! Test hooks (no authentication; never expose this server publicly):
//! - `GET /_sim/messages`: accepted messages as JSON, newest last.
//! - `POST /_sim/mode` with `{"mode": "ok"|"fail_500"|"fail_429"|"slow",
//!   "delay_ms": optional}` to inject failures; `GET /_sim/mode` reads it.
//!
//! [`SimulatorHandle`] gives Rust code the same controls directly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::integrations::fault_injection::{self, FaultControl};
use super::{Channel, jwt};

mod wire;
use wire::{created_body, notify_error, render, validate};

/// Messages kept; older ones are dropped so a long-running sandpit is bounded.
pub const SIMULATOR_CAPACITY: usize = 1000;
/// Delay in `slow` mode unless set: longer than the client's default timeout.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(15);

/// Failure injection for the send endpoints (applied after authentication).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimMode {
    #[default]
    #[serde(rename = "ok")]
    Ok,
    /// 500 with Notify's `Exception` error body.
    #[serde(rename = "fail_500")]
    Fail500,
    /// 429 with Notify's `RateLimitError` error body.
    #[serde(rename = "fail_429")]
    Fail429,
    /// Waits the slow delay, then accepts as normal.
    #[serde(rename = "slow")]
    Slow,
}

/// A message the simulator accepted. Test-only, so `Debug` shows content.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimMessage {
    pub id: String,
    pub channel: Channel,
    pub to: String,
    pub template_id: String,
    pub personalisation: Map<String, Value>,
    pub reference: Option<String>,
    pub received_at_unix_ms: u64,
}

/// Constructors for the simulator; its state lives in [`SimulatorHandle`].
pub struct NotifySimulator;

/// Shared view of a running simulator: read messages, set the mode.
#[derive(Clone)]
pub struct SimulatorHandle {
    inner: Arc<Inner>,
}

struct Inner {
    service_id: String,
    secret: String,
    state: Mutex<SimState>,
}

struct SimState {
    messages: VecDeque<SimMessage>,
    mode: SimMode,
    slow_delay: Duration,
}

impl NotifySimulator {
    /// A router accepting tokens for `service_id` signed with `secret`.
    pub fn router(service_id: &str, secret: &str) -> (Router, SimulatorHandle) {
        let handle = SimulatorHandle {
            inner: Arc::new(Inner {
                service_id: service_id.to_owned(),
                secret: secret.to_owned(),
                state: Mutex::new(SimState {
                    messages: VecDeque::new(),
                    mode: SimMode::Ok,
                    slow_delay: DEFAULT_SLOW_DELAY,
                }),
            }),
        };
        let router = Router::new()
            .route("/v2/notifications/email", post(send_email))
            .route("/v2/notifications/sms", post(send_sms))
            .route("/v2/notifications/{id}", get(get_notification))
            .route("/_sim/messages", get(list_messages))
            .route("/_sim/mode", get(fault_injection::get_mode::<SimulatorHandle>).post(fault_injection::set_mode::<SimulatorHandle>))
            .with_state(handle.clone());
        (router, handle)
    }

    /// Binds `addr` (port 0 picks a free port) and serves in a spawned task
    /// for the life of the runtime. Returns the bound address.
    pub async fn spawn(
        addr: SocketAddr,
        service_id: &str,
        secret: &str,
    ) -> std::io::Result<(SocketAddr, SimulatorHandle)> {
        let (router, handle) = Self::router(service_id, secret);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "notify simulator stopped");
            }
        });
        Ok((local, handle))
    }
}

impl SimulatorHandle {
    /// Accepted messages, oldest first.
    pub fn messages(&self) -> Vec<SimMessage> {
        self.lock().messages.iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().messages.clear();
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

    pub fn service_id(&self) -> &str {
        &self.inner.service_id
    }

    /// Every update is a single assignment or push, so a poisoned lock still
    /// holds consistent state.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `Err` is the status and Notify's message for an `AuthError` body.
fn authenticate(
    h: &SimulatorHandle,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        let msg = "Unauthorized: authentication token must be provided";
        return Err((StatusCode::UNAUTHORIZED, msg));
    };
    let value = value.to_str().unwrap_or("");
    let token = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value[7..].trim(),
        _ => {
            let msg = "Unauthorized: authentication bearer scheme must be used";
            return Err((StatusCode::UNAUTHORIZED, msg));
        }
    };
    let (service_id, secret) = (&h.inner.service_id, &h.inner.secret);
    jwt::verify(token, service_id, secret, jwt::now_unix_secs())
        .map_err(|e| (StatusCode::FORBIDDEN, e.message()))
}

/// Applies the failure mode; `Err` is the response to send instead.
async fn apply_mode(h: &SimulatorHandle) -> Result<(), Response> {
    let (mode, delay) = {
        let s = h.lock();
        (s.mode, s.slow_delay)
    };
    match mode {
        SimMode::Ok => Ok(()),
        SimMode::Slow => {
            tokio::time::sleep(delay).await;
            Ok(())
        }
        SimMode::Fail500 => Err(notify_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Exception",
            &["Internal server error"],
        )),
        SimMode::Fail429 => Err(notify_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimitError",
            &["Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"],
        )),
    }
}

async fn send_email(State(h): State<SimulatorHandle>, headers: HeaderMap, body: Bytes) -> Response {
    accept(h, Channel::Email, &headers, &body).await
}

async fn send_sms(State(h): State<SimulatorHandle>, headers: HeaderMap, body: Bytes) -> Response {
    accept(h, Channel::Sms, &headers, &body).await
}

async fn accept(
    h: SimulatorHandle,
    channel: Channel,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err((status, msg)) = authenticate(&h, headers) {
        return notify_error(status, "AuthError", &[msg]);
    }
    if let Err(r) = apply_mode(&h).await {
        return r;
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        let msg = "Invalid JSON supplied in POST data";
        return notify_error(StatusCode::BAD_REQUEST, "BadRequestError", &[msg]);
    };
    let msg = match validate(channel, &req) {
        Ok(m) => m,
        Err(errs) => return notify_error(StatusCode::BAD_REQUEST, "ValidationError", &errs),
    };
    {
        let mut s = h.lock();
        s.messages.push_back(msg.clone());
        while s.messages.len() > SIMULATOR_CAPACITY {
            s.messages.pop_front();
        }
    }
    (StatusCode::CREATED, Json(created_body(&msg))).into_response()
}

/// `GET /v2/notifications/{id}`: status lookup; everything is "delivered".
async fn get_notification(
    State(h): State<SimulatorHandle>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, msg)) = authenticate(&h, &headers) {
        return notify_error(status, "AuthError", &[msg]);
    }
    let found = h.lock().messages.iter().find(|m| m.id == id).cloned();
    let Some(m) = found else {
        return notify_error(StatusCode::NOT_FOUND, "NoResultFound", &["No result found"]);
    };
    let to_field = match m.channel {
        Channel::Email => "email_address",
        Channel::Sms => "phone_number",
    };
    let mut body = json!({
        "id": m.id, "reference": m.reference, "type": m.channel, "status": "delivered",
        "template": { "id": m.template_id, "version": 1 }, "body": render(&m),
    });
    body[to_field] = Value::String(m.to);
    Json(body).into_response()
}

async fn list_messages(State(h): State<SimulatorHandle>) -> Json<Vec<SimMessage>> {
    Json(h.messages())
}

impl FaultControl for SimulatorHandle {
    type Mode = SimMode;
    fn mode(&self) -> SimMode {
        SimulatorHandle::mode(self)
    }
    fn set_mode(&self, mode: SimMode) {
        SimulatorHandle::set_mode(self, mode)
    }
    fn set_slow_delay(&self, delay: Duration) {
        SimulatorHandle::set_slow_delay(self, delay)
    }
}
