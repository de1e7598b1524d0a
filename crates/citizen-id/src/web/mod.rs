//! The HTTP layer: every route in `router.rs`, thin handlers, sessions, pages.

pub mod assets;
pub mod client_ip;
pub mod ctx;
pub mod demo;
pub mod forms;
pub mod journeys;
pub mod middleware;
pub mod pages;
pub mod protocol;
pub mod router;
pub mod session;
