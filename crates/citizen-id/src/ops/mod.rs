//! Operations: health and readiness, metrics, logs, and the background workers.

pub mod delivery;
pub mod health;
pub mod telemetry;
