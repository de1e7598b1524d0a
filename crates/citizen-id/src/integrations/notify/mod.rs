//! Outbound notifications (email and SMS) for Citizen ID.
//!
//! Everything that sends a message to a person goes through the
//! [`NotificationProvider`] trait, so the outbox worker does not care whether
//! it is talking to GOV.UK Notify ([`notify_client::NotifyClient`]), a chain of
//! providers ([`failover::FailoverProvider`]) or the in-memory development
//! sink ([`dev_sink::DevSink`]). [`simulator`] is a Notify-compatible server
//! for tests and the sandpit, so the real HTTP client is exercised end to end
//! without reaching the internet.
//!
//! Recipients and personalisation are personal data (personalisation often
//! carries one-time codes), so nothing in this module logs them or puts them
//! in error messages, and [`OutgoingMessage`]'s `Debug` redacts them.

pub mod dev_sink;
pub mod failover;
mod jwt;
pub mod notify_client;
pub mod simulator;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How a message reaches the person. Serialised as `"email"` / `"sms"`,
/// matching Notify's notification `type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    /// The lowercase name used in URLs, logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to send, as taken from the outbox.
#[derive(Clone, PartialEq)]
pub struct OutgoingMessage {
    pub channel: Channel,
    /// Email address or phone number, depending on `channel`.
    pub to: String,
    /// The provider's template id (a UUID for Notify).
    pub template_id: String,
    /// Values for the template's placeholders.
    pub personalisation: serde_json::Map<String, serde_json::Value>,
    /// Our outbox id, sent as Notify's `reference` so the two can be matched
    /// up in Notify's dashboard and callbacks. Not personal data.
    pub reference: String,
}

/// Hand-written so that `{:?}` in a log line or panic message can never leak
/// the recipient or a one-time code: only the personalisation keys are shown.
impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("channel", &self.channel)
            .field("to", &"<redacted>")
            .field("template_id", &self.template_id)
            .field(
                "personalisation_keys",
                &self.personalisation.keys().collect::<Vec<_>>(),
            )
            .field("reference", &self.reference)
            .finish()
    }
}

/// Why a send failed, split by what the caller should do next.
///
/// The messages never contain the recipient or personalisation, so they are
/// safe to log and to store on the outbox row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later or with another provider: rate limiting, provider
    /// outage, timeout, connection failure.
    #[error("transient delivery failure: {0}")]
    Transient(String),
    /// Retrying the same message will not help: bad request, bad credentials,
    /// unknown template. Needs a person to look at configuration or data.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

impl DeliveryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }
}

/// The boxed future returned by [`NotificationProvider::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, DeliveryError>> + Send + 'a>>;

/// Something that can deliver an [`OutgoingMessage`].
///
/// Object safe (boxed future rather than `async fn`) so providers can be held
/// as `Arc<dyn NotificationProvider>` and chosen by configuration at startup.
pub trait NotificationProvider: Send + Sync + 'static {
    /// Short name for logs and metrics, e.g. `"govuk-notify"`.
    fn name(&self) -> &str;

    /// Sends one message; on success returns the provider's message id.
    fn send<'a>(&'a self, msg: &'a OutgoingMessage) -> SendFuture<'a>;
}

/// A random (version 4) UUID string. Used for message ids where we play the
/// provider; not used for anything security sensitive.
fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// True for the canonical 8-4-4-4-12 hex form, as Notify uses for service
/// ids, secrets and template ids.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
