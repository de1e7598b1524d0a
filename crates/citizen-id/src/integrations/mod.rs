//! Third parties, each a trait with a real HTTP client and a bundled simulator.

pub mod fault_injection;
pub mod gp;
pub mod notify;
pub mod pds;
