//! The integration suite: one binary, every test against a running server, on SQLite and on
//! PostgreSQL (`on_both_databases!`). Browser tests drive Debian's Chromium.

mod support;

mod asserted_identity;
mod browser_flow;
mod browser_journeys;
mod cli;
mod delivery;
mod gp;
mod journeys;
mod key_rotation;
mod notify;
mod operations;
mod operator_surfaces;
mod passkeys;
mod pds;
mod proofing;
mod protocol_errors;
mod protocol_flow;
mod proxies;
mod redemption_batches;
mod rotation_batches;
mod sandpit;
mod security;
mod settings;
mod storage;
