//! The `/_sim/mode` endpoint every bundled simulator offers, written once: tests (and partners
//! trying the sandpit) switch a simulator between answering, failing and answering slowly.
//! Each simulator keeps its own set of modes (Notify also has `fail_429`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A simulator handle whose failure mode can be switched.
pub trait FaultControl: Clone + Send + Sync + 'static {
    type Mode: Serialize + DeserializeOwned + Copy + Send + 'static;
    fn mode(&self) -> Self::Mode;
    fn set_mode(&self, mode: Self::Mode);
    fn set_slow_delay(&self, delay: Duration);
}

#[derive(serde::Deserialize)]
#[serde(bound = "M: DeserializeOwned")]
pub struct ModeRequest<M> {
    mode: M,
    delay_ms: Option<u64>,
}

/// `POST /_sim/mode {"mode": ..., "delay_ms": optional}`.
pub async fn set_mode<H: FaultControl>(State(h): State<H>, Json(req): Json<ModeRequest<H::Mode>>) -> Json<Value> {
    if let Some(ms) = req.delay_ms {
        h.set_slow_delay(Duration::from_millis(ms));
    }
    h.set_mode(req.mode);
    Json(json!({ "mode": req.mode }))
}

/// `GET /_sim/mode`.
pub async fn get_mode<H: FaultControl>(State(h): State<H>) -> Json<Value> {
    Json(json!({ "mode": h.mode() }))
}
