//! Proving identity (F6): demographics matched against PDS (P5), then IDVM, AMNV and POL
//! (P9), and the duplicate-account rules (F7). No HTTP here; the web layer calls these.

pub mod matching;
pub mod uplift;
