use std::io::Write;
use std::sync::{Arc, Mutex};

use super::api::dev_sink::{DEV_SINK_CAPACITY, DevSink};
use super::{Channel, NotificationProvider, email, sms};

#[tokio::test]
async fn keeps_messages_newest_first_and_finds_latest_for_recipient() {
    let sink = DevSink::new();
    let page_view = sink.clone(); // what the dev web page would hold

    let mut first = email("ada@example.com");
    first.personalisation.insert("code".into(), "111111".into());
    let mut second = email("ada@example.com");
    second
        .personalisation
        .insert("code".into(), "222222".into());
    sink.send(&first).await.unwrap();
    sink.send(&sms("07700900123")).await.unwrap();
    sink.send(&second).await.unwrap();

    let all = page_view.messages();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].personalisation["code"], "222222", "newest first");
    assert_eq!(all[1].channel, Channel::Sms);
    assert_eq!(all[2].personalisation["code"], "111111");
    assert!(all[0].at_unix_ms >= all[2].at_unix_ms);

    let latest = page_view.latest_for("ada@example.com").unwrap();
    assert_eq!(latest.personalisation["code"], "222222");
    assert_eq!(latest.template_id, super::TEMPLATE_ID);
    assert!(page_view.latest_for("nobody@example.com").is_none());
}

#[tokio::test]
async fn keeps_only_the_last_200() {
    let sink = DevSink::new();
    for i in 0..(DEV_SINK_CAPACITY + 5) {
        sink.send(&email(&format!("user{i}@example.com")))
            .await
            .unwrap();
    }
    let all = sink.messages();
    assert_eq!(all.len(), DEV_SINK_CAPACITY);
    assert_eq!(
        all[0].to,
        format!("user{}@example.com", DEV_SINK_CAPACITY + 4)
    );
    assert_eq!(all.last().unwrap().to, "user5@example.com");
    assert!(sink.latest_for("user0@example.com").is_none());
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_one_line_without_recipient_or_personalisation() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    DevSink::new()
        .send(&email("ada@example.com"))
        .await
        .unwrap();

    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("channel=email"), "{log}");
    assert!(log.contains(super::TEMPLATE_ID), "{log}");
    assert!(log.contains("outbox-0001"), "{log}");
    assert!(!log.contains("ada@example.com"), "recipient leaked: {log}");
    assert!(
        !log.contains("493817") && !log.contains("Ada"),
        "personalisation leaked: {log}"
    );
}

#[test]
fn outgoing_message_debug_redacts_personal_data() {
    let shown = format!("{:?}", email("ada@example.com"));
    assert!(
        !shown.contains("ada@example.com") && !shown.contains("493817"),
        "{shown}"
    );
    assert!(
        shown.contains("code") && shown.contains("outbox-0001"),
        "{shown}"
    );
}
