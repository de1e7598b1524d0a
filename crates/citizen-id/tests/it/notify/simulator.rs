//! The simulator refuses what Notify refuses, with Notify's status codes and
//! error shapes. Tokens here are built by hand, not by the crate's client.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{SECRET, SERVICE_ID, TEMPLATE_ID, spawn_sim};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(header: &Value, claims: &Value, secret: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let sig = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn hs256() -> Value {
    json!({ "typ": "JWT", "alg": "HS256" })
}

fn good_body() -> Value {
    json!({ "email_address": "ada@example.com", "template_id": TEMPLATE_ID })
}

/// POSTs `body` to the email endpoint; returns status and JSON body.
async fn post_email(
    addr: std::net::SocketAddr,
    auth: Option<String>,
    body: &Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/v2/notifications/email"))
        .json(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn auth_error(status: u16, message: &str) -> Value {
    json!({ "status_code": status, "errors": [{ "error": "AuthError", "message": message }] })
}

#[tokio::test]
async fn accepts_a_valid_token_with_a_notify_shaped_reply() {
    let (addr, sim) = spawn_sim().await;
    let bearer = format!(
        "Bearer {}",
        token(&hs256(), &json!({"iss": SERVICE_ID, "iat": now()}), SECRET)
    );
    let mut body = good_body();
    body["reference"] = json!("ref-1");
    body["personalisation"] = json!({ "code": "123456" });

    let (status, reply) = post_email(addr, Some(bearer.clone()), &body).await;

    assert_eq!(status, 201, "{reply}");
    let id = reply["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(reply["reference"], "ref-1");
    assert_eq!(reply["template"]["id"], TEMPLATE_ID);
    assert!(
        reply["content"]["body"]
            .as_str()
            .unwrap()
            .contains("code: 123456")
    );
    assert_eq!(sim.messages()[0].id, id);

    let status = reqwest::Client::new()
        .get(format!("http://{addr}/v2/notifications/{id}"))
        .header("authorization", bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    let got: Value = status.json().await.unwrap();
    assert_eq!(got["status"], "delivered");
    assert_eq!(got["email_address"], "ada@example.com");
}

#[tokio::test]
async fn refuses_bad_tokens_like_notify() {
    let (addr, sim) = spawn_sim().await;
    let claims = json!({ "iss": SERVICE_ID, "iat": now() });
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let cases: Vec<(Option<String>, u16, &str)> = vec![
        (
            None,
            401,
            "Unauthorized: authentication token must be provided",
        ),
        (
            Some(format!("Basic {}", token(&hs256(), &claims, SECRET))),
            401,
            "Unauthorized: authentication bearer scheme must be used",
        ),
        (
            bearer("not.a.jwt".into()),
            403,
            "Invalid token: signature, api token is not valid",
        ),
        (
            bearer(token(&hs256(), &claims, "wrong-secret")),
            403,
            "Invalid token: API key not found",
        ),
        (
            bearer(token(
                &hs256(),
                &json!({"iss": "someone-else", "iat": now()}),
                SECRET,
            )),
            403,
            "Invalid token: service not found",
        ),
        (
            bearer(token(&hs256(), &json!({"iat": now()}), SECRET)),
            403,
            "Invalid token: iss field not provided",
        ),
        (
            bearer(token(
                &hs256(),
                &json!({"iss": SERVICE_ID, "iat": now() - 31}),
                SECRET,
            )),
            403,
            "Error: Your system clock must be accurate to within 30 seconds",
        ),
        (
            bearer(token(
                &hs256(),
                &json!({"iss": SERVICE_ID, "iat": now() + 60}),
                SECRET,
            )),
            403,
            "Error: Your system clock must be accurate to within 30 seconds",
        ),
        (
            bearer(token(
                &json!({"typ": "JWT", "alg": "HS512"}),
                &claims,
                SECRET,
            )),
            403,
            "Invalid token: algorithm used is not HS256",
        ),
        (
            // Unsigned `alg: none` token.
            bearer(format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )),
            403,
            "Invalid token: algorithm used is not HS256",
        ),
    ];
    for (auth, want_status, want_message) in cases {
        let (status, reply) = post_email(addr, auth.clone(), &good_body()).await;
        assert_eq!(status, want_status, "{auth:?}: {reply}");
        assert_eq!(reply, auth_error(want_status, want_message), "{auth:?}");
    }
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn refuses_bad_bodies_with_validation_errors() {
    let (addr, sim) = spawn_sim().await;
    let bearer = || {
        Some(format!(
            "Bearer {}",
            token(&hs256(), &json!({"iss": SERVICE_ID, "iat": now()}), SECRET)
        ))
    };

    let (status, reply) = post_email(addr, bearer(), &json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(
        reply,
        json!({ "status_code": 400, "errors": [
            { "error": "ValidationError", "message": "email_address is a required property" },
            { "error": "ValidationError", "message": "template_id is a required property" },
        ]})
    );

    let mut body = good_body();
    body["personalisation"] = json!("not an object");
    let (status, reply) = post_email(addr, bearer(), &body).await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["errors"][0]["message"],
        "personalisation is not of type object"
    );

    let (status, reply) = post_email(
        addr,
        bearer(),
        &json!({"email_address": "nope", "template_id": TEMPLATE_ID}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["errors"][0]["message"],
        "email_address Not a valid email address"
    );
    assert!(sim.messages().is_empty());
}
