//! GOV.UK Notify answers, as `integrations::notify::notify_client` reads them: the message id
//! of an accepted message and the error codes of a refusal (`read_response`).
//!
//! Input: bytes 0-1 the status, byte 2 whether the body could be read, the rest the body.
//!
//! Invariants: a message id only from a 2xx; a 2xx is never "transient" (Notify has the
//! message: a retry would send it twice); a 4xx other than 408 and 429 is "permanent"; 408,
//! 429 and 5xx are "transient"; the error text keeps only the codes, never a `message`.
#![no_main]

use citizen_id::integrations::notify::DeliveryError;
use citizen_id::integrations::notify::notify_client::read_response;
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 8] = [201, 200, 400, 403, 408, 429, 500, 503];
/// Planted in free-text fields: it must never reach a log line.
const SECRET: &str = "echoed-personal-data";

fuzz_target!(|data: &[u8]| {
    let [s1, s2, readable, body @ ..] = data else { return };
    let raw = u16::from_be_bytes([*s1, *s2]);
    let status = if raw < 0x8000 { STATUSES[usize::from(raw) % STATUSES.len()] } else { 100 + raw % 900 };
    let body = (readable & 1 == 0).then_some(body);
    let result = read_response("notify", status, body);
    match &result {
        Ok(_) => assert!((200..300).contains(&status), "a message id from HTTP {status}"),
        Err(DeliveryError::Transient(_)) => assert!(!(200..300).contains(&status) && !matches!(status, 400..=407 | 409..=428 | 430..=499)),
        Err(DeliveryError::Permanent(_)) => assert!((200..300).contains(&status) || matches!(status, 400..=407 | 409..=428 | 430..=499)),
    }
    // The same body with a planted free-text message: the message never shows.
    if let Some(b) = body
        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(b)
        && let Some(errors) = v.get_mut("errors").and_then(|e| e.as_array_mut())
    {
        for e in errors.iter_mut().filter_map(|e| e.as_object_mut()) {
            e.insert("message".into(), SECRET.into());
        }
        let planted = serde_json::to_vec(&v).expect("serialises");
        if let Err(DeliveryError::Transient(t) | DeliveryError::Permanent(t)) = read_response("notify", status, Some(&planted)) {
            assert!(!t.contains(SECRET) || b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "a free-text message reached the error: {t}");
        }
    }
});
