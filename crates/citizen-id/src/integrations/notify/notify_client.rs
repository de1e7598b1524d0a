//! HTTP client for GOV.UK Notify's v2 API (and anything that speaks it, such
//! as [`super::simulator`]).
//!
//! Only the two calls Citizen ID needs are implemented: send an email and send
//! a text message. HTTP outcomes are mapped onto [`DeliveryError`] so the
//! outbox knows whether to retry: 400/403 (and other 4xx) are permanent,
//! 408/429/5xx, timeouts and connection failures are transient.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Channel, DeliveryError, NotificationProvider, OutgoingMessage, SendFuture, jwt};

/// Used when no timeout is configured: Notify normally answers in well under
/// a second, and the outbox would rather retry than hold a worker for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Notify API key, `{key_name}-{service_id}-{secret}`.
///
/// The two UUIDs are taken from the right because key names may themselves
/// contain hyphens. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    key_name: String,
    service_id: String,
    secret: String,
}

/// Why a client could not be configured. Messages never include the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("malformed Notify API key: {0}")]
    MalformedApiKey(&'static str),
    #[error("invalid Notify base URL: {0}")]
    InvalidBaseUrl(String),
}

impl ApiKey {
    /// Length of `{service_id}-{secret}`.
    const TAIL: usize = 36 + 1 + 36;

    /// Parses a key; surrounding whitespace (e.g. a newline from a secrets
    /// file) is ignored.
    pub fn parse(key: &str) -> Result<Self, NotifyConfigError> {
        let key = key.trim();
        let bad = NotifyConfigError::MalformedApiKey;
        // Work on bytes: the tail is checked to be ASCII before any slicing
        // of the str, so the slice points below are char boundaries.
        let b = key.as_bytes();
        if b.len() < Self::TAIL + 2 {
            return Err(bad("expected {key_name}-{service_id}-{secret}"));
        }
        let tail = &b[b.len() - Self::TAIL..];
        if !tail.is_ascii() || b[b.len() - Self::TAIL - 1] != b'-' || tail[36] != b'-' {
            return Err(bad("expected {key_name}-{service_id}-{secret}"));
        }
        let name_end = b.len() - Self::TAIL - 1;
        let service_id = &key[name_end + 1..name_end + 37];
        let secret = &key[name_end + 38..];
        if !super::is_uuid(service_id) {
            return Err(bad("service id is not a UUID"));
        }
        if !super::is_uuid(secret) {
            return Err(bad("secret is not a UUID"));
        }
        Ok(ApiKey {
            key_name: key[..name_end].to_owned(),
            service_id: service_id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The service id, sent as the JWT `iss`.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The signing secret. Never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_name", &self.key_name)
            .field("service_id", &self.service_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A [`NotificationProvider`] that sends through the Notify v2 HTTP API.
#[derive(Clone)]
pub struct NotifyClient {
    http: reqwest::Client,
    base_url: String,
    key: ApiKey,
    timeout: Duration,
    name: String,
    /// Our template names to this Notify service's template ids (each Notify service has
    /// its own ids, so a backup service has its own map). A name with no entry is sent as is.
    templates: std::collections::HashMap<String, String>,
}

impl fmt::Debug for NotifyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyClient")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl NotifyClient {
    /// `base_url` is e.g. `https://api.notifications.service.gov.uk` (a path
    /// prefix is kept; a trailing slash is dropped). The `reqwest::Client` is
    /// shared so connection pools and TLS setup are reused across the app.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: &str,
    ) -> Result<Self, NotifyConfigError> {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|e| NotifyConfigError::InvalidBaseUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(NotifyConfigError::InvalidBaseUrl(
                "scheme must be http or https".into(),
            ));
        }
        Ok(NotifyClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: ApiKey::parse(api_key)?,
            timeout: DEFAULT_TIMEOUT,
            name: "govuk-notify".to_owned(),
            templates: Default::default(),
        })
    }

    /// Whole-request timeout (connect to end of response body).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Name used in logs and failover errors, to tell two Notify services
    /// (e.g. primary and backup) apart. Defaults to `"govuk-notify"`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Maps our template names (`sign-in-code`, ...) to this service's template ids.
    pub fn with_templates(mut self, templates: std::collections::HashMap<String, String>) -> Self {
        self.templates = templates;
        self
    }

    pub fn api_key(&self) -> &ApiKey {
        &self.key
    }

    async fn deliver(&self, msg: &OutgoingMessage) -> Result<String, DeliveryError> {
        let url = format!(
            "{}/v2/notifications/{}",
            self.base_url,
            msg.channel.as_str()
        );
        let (email_address, phone_number) = match msg.channel {
            Channel::Email => (Some(msg.to.as_str()), None),
            Channel::Sms => (None, Some(msg.to.as_str())),
        };
        let body = SendBody {
            email_address,
            phone_number,
            template_id: self.templates.get(&msg.template_id).unwrap_or(&msg.template_id),
            personalisation: &msg.personalisation,
            reference: &msg.reference,
        };
        // A fresh token per request: Notify refuses tokens older than 30 s.
        let token = jwt::encode(
            self.key.service_id(),
            self.key.secret(),
            jwt::now_unix_secs(),
        );
        let response = self
            .http
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.request_error(&e))?;

        let status = response.status().as_u16();
        let bytes = response.bytes().await;
        read_response(&self.name, status, bytes.as_deref().ok())
    }

    fn request_error(&self, e: &reqwest::Error) -> DeliveryError {
        if e.is_timeout() {
            DeliveryError::Transient(format!("{}: timed out after {:?}", self.name, self.timeout))
        } else if e.is_connect() {
            DeliveryError::Transient(format!("{}: connection failed", self.name))
        } else if e.is_builder() {
            DeliveryError::Permanent(format!("{}: could not build request", self.name))
        } else {
            DeliveryError::Transient(format!("{}: request failed: {e}", self.name))
        }
    }
}

impl NotificationProvider for NotifyClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, msg: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(msg))
    }
}

/// How Notify's answer is read, from the status and the body (`None`: it could not be read),
/// with no I/O: the fuzzing entry point (`fuzz/fuzz_targets/notify_response.rs`). `name` is
/// the provider's name for the messages. A 2xx is never [`DeliveryError::Transient`]: Notify
/// has the message, and a retry would send it twice.
pub fn read_response(name: &str, status: u16, bytes: Option<&[u8]>) -> Result<String, DeliveryError> {
    if (200..300).contains(&status) {
        // Notify has accepted the message: retrying now would send it a
        // second time, so an unreadable reply is not Transient.
        let accepted = |why: &str| {
            DeliveryError::Permanent(format!(
                "{name}: accepted (HTTP {status}) but {why}; not retrying to avoid a duplicate"
            ))
        };
        let bytes = bytes.ok_or_else(|| accepted("the response body could not be read"))?;
        let created: Created =
            serde_json::from_slice(bytes).map_err(|_| accepted("the response has no message id"))?;
        return Ok(created.id);
    }

    // Only Notify's error codes go into the message: its free-text
    // messages may echo parts of the request.
    let codes = bytes
        .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
        .map(|e| {
            e.errors
                .into_iter()
                .map(|e| e.error)
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "no error code".to_owned());
    let text = format!("{name}: HTTP {status} ({codes})");
    match status {
        408 | 429 | 500..=599 => Err(DeliveryError::Transient(text)),
        400..=499 => Err(DeliveryError::Permanent(text)),
        // 1xx/3xx here means a proxy or redirect in the way; the outbox
        // should try again rather than give the message up.
        _ => Err(DeliveryError::Transient(text)),
    }
}

/// Request body for both endpoints; exactly one recipient field is set.
#[derive(Serialize)]
struct SendBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<&'a str>,
    template_id: &'a str,
    personalisation: &'a serde_json::Map<String, serde_json::Value>,
    reference: &'a str,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    error: String,
}
