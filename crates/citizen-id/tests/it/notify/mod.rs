//! Tests for the notifications integration, run against the Notify simulator
//! over real HTTP on 127.0.0.1.
//!
//! When moved into crates/citizen-id, change `citizen_id::integrations::notify` in the
//! two `pub use` lines below to `citizen_id::integrations::notify`.

mod api_key;
mod client;
mod dev_sink;
mod failover;
mod simulator;

pub use citizen_id::integrations::notify as api;
pub use citizen_id::integrations::notify::{Channel, DeliveryError, NotificationProvider, OutgoingMessage};

use std::net::SocketAddr;
use std::time::Duration;

use api::simulator::{NotifySimulator, SimulatorHandle};
use serde_json::json;

pub const SERVICE_ID: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
pub const SECRET: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";
pub const TEMPLATE_ID: &str = "f33517ff-2a88-4f6e-b855-c550268ce08a";

pub fn api_key(service_id: &str, secret: &str) -> String {
    format!("citizen-id-test-{service_id}-{secret}")
}

/// A simulator for SERVICE_ID/SECRET on a free loopback port.
pub async fn spawn_sim() -> (SocketAddr, SimulatorHandle) {
    NotifySimulator::spawn("127.0.0.1:0".parse().unwrap(), SERVICE_ID, SECRET)
        .await
        .expect("simulator binds a loopback port")
}

pub fn client_for(addr: SocketAddr, secret: &str) -> api::notify_client::NotifyClient {
    api::notify_client::NotifyClient::new(
        reqwest::Client::new(),
        &format!("http://{addr}"),
        &api_key(SERVICE_ID, secret),
    )
    .expect("valid client config")
    .with_timeout(Duration::from_secs(5))
}

pub fn email(to: &str) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Email,
        to: to.to_owned(),
        template_id: TEMPLATE_ID.to_owned(),
        personalisation: json!({ "code": "493817", "name": "Ada" })
            .as_object()
            .unwrap()
            .clone(),
        reference: "outbox-0001".to_owned(),
    }
}

pub fn sms(to: &str) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Sms,
        to: to.to_owned(),
        template_id: TEMPLATE_ID.to_owned(),
        personalisation: json!({ "code": "271828" }).as_object().unwrap().clone(),
        reference: "outbox-0002".to_owned(),
    }
}
