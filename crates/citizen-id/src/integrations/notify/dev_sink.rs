//! The development provider for the sandpit: messages are kept in memory for
//! a development web page to show (so a tester can read their sign-in code)
//! instead of being sent anywhere.
//!
//! Only the last [`DEV_SINK_CAPACITY`] messages are kept so a long-running
//! sandpit does not grow without bound. The log line per message carries the
//! channel, template id and reference only: recipients and personalisation
//! (which holds one-time codes) are personal data and secrets, and logs are
//! shipped and kept far more widely than this in-memory list.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use super::{Channel, NotificationProvider, OutgoingMessage, SendFuture};

/// How many messages [`DevSink`] keeps; older ones are dropped.
pub const DEV_SINK_CAPACITY: usize = 200;

/// A captured message, as the development page shows it. Unlike
/// [`OutgoingMessage`] its `Debug` is not redacted: showing the content is
/// this type's whole purpose, and it exists only in development.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SentMessage {
    pub at_unix_ms: u64,
    pub channel: Channel,
    pub to: String,
    pub template_id: String,
    pub personalisation: serde_json::Map<String, serde_json::Value>,
}

/// Cheap to clone; clones share the same message list, so the web page and
/// the outbox worker can each hold one.
#[derive(Clone, Debug, Default)]
pub struct DevSink {
    messages: Arc<Mutex<VecDeque<SentMessage>>>,
}

impl DevSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// All kept messages, newest first.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.lock().iter().rev().cloned().collect()
    }

    /// The newest message sent to `to` (compared exactly), if still kept.
    pub fn latest_for(&self, to: &str) -> Option<SentMessage> {
        self.lock().iter().rev().find(|m| m.to == to).cloned()
    }

    /// A panic elsewhere while holding the lock cannot leave the queue in a
    /// broken state (every update is a single push/pop), so poisoning is
    /// ignored rather than taking the dev page down with it.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SentMessage>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, msg: &OutgoingMessage) -> String {
        let sent = SentMessage {
            at_unix_ms: super::now_unix_ms(),
            channel: msg.channel,
            to: msg.to.clone(),
            template_id: msg.template_id.clone(),
            personalisation: msg.personalisation.clone(),
        };
        {
            let mut q = self.lock();
            q.push_back(sent);
            while q.len() > DEV_SINK_CAPACITY {
                q.pop_front();
            }
        }
        tracing::info!(
            channel = %msg.channel,
            template_id = %msg.template_id,
            reference = %msg.reference,
            "dev sink captured notification"
        );
        super::random_uuid()
    }
}

impl NotificationProvider for DevSink {
    fn name(&self) -> &str {
        "dev-sink"
    }

    fn send<'a>(&'a self, msg: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move { Ok(self.record(msg)) })
    }
}
