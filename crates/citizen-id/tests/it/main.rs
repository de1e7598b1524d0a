//! The integration suite: one binary, every test against a running server, on SQLite and on
//! PostgreSQL (`on_both_databases!`). Browser tests drive Debian's Chromium.

mod support;

mod asserted_identity;
mod browser_flow;
mod browser_journeys;
mod cli;
mod client_assertions;
mod delivery;
mod gp;
mod journeys;
mod key_rotation;
mod lockout;
mod message_caps;
mod notify;
mod operations;
mod operator_surfaces;
mod partner_libraries;
mod passkeys;
mod pds;
mod proofing;
mod proving;
mod protocol_errors;
mod protocol_flow;
mod reauth;
mod proxies;
mod redemption_batches;
mod rotation_batches;
mod sandpit;
mod security;
mod settings;
mod state_changes;
mod storage;
