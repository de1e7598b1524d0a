//! The simulator's view of Notify's wire format: request validation with
//! Notify's messages, and Notify-shaped success and error bodies. Kept apart
//! from the routing so each file stays readable.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::super::{Channel, is_uuid, now_unix_ms, random_uuid};
use super::SimMessage;

/// Notify's error body: `{"status_code": n, "errors": [{"error", "message"}]}`.
pub(super) fn notify_error(status: StatusCode, error: &str, messages: &[&str]) -> Response {
    let errors: Vec<Value> = messages
        .iter()
        .map(|m| json!({ "error": error, "message": m }))
        .collect();
    let body = json!({ "status_code": status.as_u16(), "errors": errors });
    (status, Json(body)).into_response()
}

/// Notify-style field checks; error messages name fields, never values.
pub(super) fn validate(
    channel: Channel,
    req: &Map<String, Value>,
) -> Result<SimMessage, Vec<&'static str>> {
    let mut errs = Vec::new();
    let mut string = |field: &str, missing: &'static str, wrong: &'static str| match req.get(field)
    {
        Some(Value::String(s)) => Some(s.clone()),
        other => {
            errs.push(if other.is_none() { missing } else { wrong });
            None
        }
    };
    let to = match channel {
        Channel::Email => string(
            "email_address",
            "email_address is a required property",
            "email_address is not of type string",
        ),
        Channel::Sms => string(
            "phone_number",
            "phone_number is a required property",
            "phone_number is not of type string",
        ),
    };
    let template_id = string(
        "template_id",
        "template_id is a required property",
        "template_id is not of type string",
    );
    if template_id.as_deref().is_some_and(|t| !is_uuid(t)) {
        errs.push("template_id is not a valid UUID");
    }
    match (channel, to.as_deref()) {
        (Channel::Email, Some(e)) if !looks_like_email(e) => {
            errs.push("email_address Not a valid email address")
        }
        (Channel::Sms, Some(p)) if !looks_like_phone(p) => {
            errs.push("phone_number Must not contain letters or symbols")
        }
        _ => {}
    }
    let personalisation = match req.get("personalisation") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errs.push("personalisation is not of type object");
            Map::new()
        }
    };
    let reference = match req.get("reference") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(_) => {
            errs.push("reference is not of type string");
            None
        }
    };
    match (to, template_id) {
        (Some(to), Some(template_id)) if errs.is_empty() => Ok(SimMessage {
            id: random_uuid(),
            channel,
            to,
            template_id,
            personalisation,
            reference,
            received_at_unix_ms: now_unix_ms(),
        }),
        _ => Err(errs),
    }
}

fn looks_like_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@')
    }) && !s.chars().any(char::is_whitespace)
}

fn looks_like_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    s.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) && (7..=15).contains(&digits)
}

/// Stand-in for the rendered template: the simulator has no template text.
pub(super) fn render(m: &SimMessage) -> String {
    let mut body = format!("Template {}", m.template_id);
    for (k, v) in &m.personalisation {
        let v = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        body.push_str(&format!("\n{k}: {v}"));
    }
    body
}

pub(super) fn created_body(m: &SimMessage) -> Value {
    let content = match m.channel {
        Channel::Email => json!({
            "subject": "Simulated email",
            "body": render(m),
            "from_email": "simulator@notify.invalid",
        }),
        Channel::Sms => json!({ "body": render(m), "from_number": "SIMULATOR" }),
    };
    json!({
        "id": m.id,
        "reference": m.reference,
        "content": content,
        "uri": format!("/v2/notifications/{}", m.id),
        "template": { "id": m.template_id, "version": 1, "uri": format!("/v2/template/{}", m.template_id) },
        "scheduled_for": null,
    })
}
