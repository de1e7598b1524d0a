//! Third parties, each a trait with a real HTTP client and a bundled simulator.

pub mod notify;
