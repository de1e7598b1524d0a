//! Try providers in order so an outage or rate limit at the primary does not
//! stop sign-in codes from going out.
//!
//! Rules, and why:
//! - A `Transient` error moves on to the next provider: another service may
//!   well be up.
//! - A `Permanent` error from the primary is returned at once: the request
//!   itself is bad (template, recipient, credentials), and sending it through
//!   the backup would at best fail the same way and at worst deliver through
//!   a path nobody meant to use for it.
//! - A `Permanent` error from a fallback does not end the attempt, and if
//!   nothing succeeds the result is `Transient`: the primary's failure was
//!   temporary, so the outbox should retry later rather than give up because
//!   a backup is misconfigured. The fallback's error is logged as a warning.

use std::sync::Arc;

use super::{DeliveryError, NotificationProvider, OutgoingMessage, SendFuture};

pub struct FailoverProvider {
    providers: Vec<Arc<dyn NotificationProvider>>,
    name: String,
}

impl FailoverProvider {
    /// `providers[0]` is the primary, the rest are fallbacks in order. An
    /// empty list is allowed but every send then fails permanently.
    pub fn new(providers: Vec<Arc<dyn NotificationProvider>>) -> Self {
        let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
        let name = format!("failover[{}]", names.join(","));
        FailoverProvider { providers, name }
    }

    pub fn providers(&self) -> &[Arc<dyn NotificationProvider>] {
        &self.providers
    }

    async fn deliver(&self, msg: &OutgoingMessage) -> Result<String, DeliveryError> {
        let mut failures: Vec<String> = Vec::new();
        for (i, provider) in self.providers.iter().enumerate() {
            match provider.send(msg).await {
                Ok(id) => {
                    if i > 0 {
                        tracing::info!(
                            provider = provider.name(),
                            reference = %msg.reference,
                            "notification delivered by fallback provider"
                        );
                    }
                    return Ok(id);
                }
                Err(DeliveryError::Permanent(e)) if i == 0 => {
                    return Err(DeliveryError::Permanent(e));
                }
                Err(DeliveryError::Permanent(e)) => {
                    tracing::warn!(
                        provider = provider.name(),
                        reference = %msg.reference,
                        error = %e,
                        "fallback notification provider refused the message"
                    );
                    failures.push(e);
                }
                Err(DeliveryError::Transient(e)) => {
                    tracing::warn!(
                        provider = provider.name(),
                        reference = %msg.reference,
                        error = %e,
                        "notification provider failed transiently"
                    );
                    failures.push(e);
                }
            }
        }
        if self.providers.is_empty() {
            return Err(DeliveryError::Permanent(
                "no notification providers configured".to_owned(),
            ));
        }
        Err(DeliveryError::Transient(format!(
            "all providers failed: {}",
            failures.join("; ")
        )))
    }
}

impl NotificationProvider for FailoverProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, msg: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(msg))
    }
}
