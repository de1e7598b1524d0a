//! Citizen ID: identity verification and OpenID Connect sign-in for health and care,
//! wire-compatible with NHS login.
//!
//! Layers, with imports running one way (web -> identity logic -> store / domain):
//! - `oidc`: the partner-facing protocol (authorize, token, userinfo, keys, discovery).
//! - `accounts`: registration, sign-in, one-time codes, recovery, consent.
//! - `passkeys`: FIDO2/WebAuthn ceremonies (the `Cm` credential).
//! - `partners`: the partner registry rules (validation on top of `store::partners`).
//! - `store`: SQL over SQLite and PostgreSQL.
//! - `integrations`: third parties (notifications), each a trait, a real HTTP client and a simulator.
//! - `web`: axum routes, sessions, CSRF, pages.
//! - `ops`: health, metrics, logging, background workers.
//! - `cli`: the `citizen-id` command.

pub mod accounts;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod integrations;
pub mod oidc;
pub mod ops;
pub mod partners;
pub mod passkeys;
pub mod proofing;
pub mod server;
pub mod state;
pub mod store;
pub mod web;
