//! Background workers: the outbox delivery loop (retries with exponential backoff, fail-over
//! between providers) and the purge of expired rows. Every instance runs them; the outbox's
//! leases stop two instances sending the same message.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::messages::{SealedContent, outbox_context};
use crate::clock::{self, MINUTE, SECOND};
use crate::integrations::notify::{Channel, NotificationProvider, OutgoingMessage};
use crate::state::AppState;

/// A message is retried for about a day before it is given up.
const MAX_ATTEMPTS: i64 = 12;

/// Backoff after the `attempts`-th failure: 5 s, 10 s, 20 s ... capped at 1 hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    (5 * SECOND * (1i64 << attempts.clamp(0, 10))).min(60 * MINUTE)
}

/// Delivers due messages once; returns how many were delivered.
pub async fn deliver_due(state: &AppState, provider: &dyn NotificationProvider) -> anyhow::Result<usize> {
    let now = clock::now_ms();
    let batch = state.db.claim_due_messages(now, MINUTE, 50).await?;
    let mut delivered = 0;
    for m in batch {
        let opened = state
            .kek
            .open(&outbox_context(&m.id), &m.sealed_message)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<SealedContent>(&bytes).ok());
        let Some(content) = opened else {
            state.db.mark_attempt_failed(&m.id, "content could not be opened", None, now).await?;
            continue;
        };
        let channel = if m.channel == "sms" { Channel::Sms } else { Channel::Email };
        let message = OutgoingMessage {
            channel,
            to: content.to,
            template_id: m.template.clone(),
            personalisation: content.personalisation,
            reference: m.id.clone(),
        };
        match provider.send(&message).await {
            Ok(_) => {
                state.db.mark_sent(&m.id, provider.name(), clock::now_ms()).await?;
                metrics::counter!("citizen_id_notifications_sent_total", "channel" => m.channel.clone()).increment(1);
                delivered += 1;
            }
            Err(e) => {
                let attempts = m.attempts + 1;
                let next = (e.is_transient() && attempts < MAX_ATTEMPTS).then(|| clock::now_ms() + backoff_ms(attempts));
                tracing::warn!(outbox_id = %m.id, template = %m.template, attempts, error = %e, "notification delivery failed");
                metrics::counter!("citizen_id_notification_failures_total", "channel" => m.channel.clone()).increment(1);
                state.db.mark_attempt_failed(&m.id, &e.to_string(), next, clock::now_ms()).await?;
            }
        }
    }
    Ok(delivered)
}

/// Runs the delivery loop and the purge until the process ends.
pub fn spawn_workers(state: AppState, provider: Arc<dyn NotificationProvider>, poll: Duration) {
    let s = state.clone();
    tokio::spawn(async move {
        loop {
            match deliver_due(&s, provider.as_ref()).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox delivery pass failed"),
            }
            tokio::time::sleep(poll).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let retention = crate::store::purge::Retention::from_lifetimes(&state.settings.lifetimes);
            if let Err(e) = state.db.purge_expired(clock::now_ms(), retention).await {
                tracing::warn!(error = %e, "purge of expired rows failed");
            }
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(0), 5_000);
        assert_eq!(backoff_ms(1), 10_000);
        assert!(backoff_ms(3) > backoff_ms(2));
        assert_eq!(backoff_ms(30), 60 * MINUTE);
    }
}
