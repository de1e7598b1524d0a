//! Cross-cutting layers: security headers with a per-request CSP nonce, request ids, the
//! client's address, metrics, and the answer to a body over the size limit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::crypto::random_token;
use crate::state::AppState;

/// The nonce that lets this response's own scripts run under the CSP. Made on first use: a
/// response that never asked for one (every JSON endpoint) gets a policy that allows no script.
#[derive(Debug, Clone, Default)]
pub struct CspNonce(Arc<OnceLock<String>>);

impl CspNonce {
    pub fn value(&self) -> String {
        self.0.get_or_init(|| random_token(16)).clone()
    }

    fn issued(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The page policy, around its `script-src` sources: the response's nonce, or `'none'` when no
/// nonce was issued.
fn csp(script_src: &str) -> String {
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data:; \
         font-src 'self' https://assets.nhs.uk; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The policy of every response without scripts, built once.
static CSP_WITHOUT_SCRIPTS: LazyLock<HeaderValue> = LazyLock::new(|| HeaderValue::from_str(&csp("'none'")).expect("ascii"));

/// An opaque id tying a request's log lines together (also echoed to the client).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's address: the socket peer, or when that is one of the `trusted_proxies`, the
/// address those proxies saw (`web::client_ip`: never a hop the client wrote).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

pub async fn security_headers(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let nonce = CspNonce::default();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(String::from)
        .unwrap_or_else(|| random_token(12));
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = peer.map_or_else(|| "unknown".to_string(), |peer| state.settings.trusted_proxies.client_ip(peer, req.headers()).to_string());
    req.extensions_mut().insert(nonce.clone());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(ClientIp(ip));

    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method());
    let mut res = tracing::Instrument::instrument(next.run(req), span).await;

    let h = res.headers_mut();
    // Room for the headers below at once, rather than growing the map as they arrive.
    h.reserve(7);
    let policy = match nonce.issued() {
        Some(n) => HeaderValue::from_str(&csp(&format!("'nonce-{n}' 'strict-dynamic'"))).expect("ascii"),
        None => CSP_WITHOUT_SCRIPTS.clone(),
    };
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Codes and states travel in URLs: never leak them to other sites through Referer. (Not
    // `no-referrer`: browsers then send `Origin: null` on our own form posts.)
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("x-request-id", HeaderValue::from_str(&request_id).expect("ascii"));
    if state.settings.secure_cookies() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Counts requests by route and status and records latency. The label values come from small
/// fixed sets (the router's routes, HTTP methods, status codes), interned once each so a
/// request allocates nothing here.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| intern(p.as_str()));
    let method = intern(req.method().as_str());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = intern(res.status().as_str());
    metrics::counter!("citizen_id_http_requests_total", "route" => route, "method" => method, "status" => status).increment(1);
    metrics::histogram!("citizen_id_http_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    res
}

/// A `'static` copy of a label value. Only route templates, method names and status codes come
/// here (never anything a client chooses freely: unmatched paths are "unmatched", and hyper
/// refuses methods over a small length), and the set is capped besides.
fn intern(value: &str) -> &'static str {
    static INTERNED: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Some(found) = INTERNED.read().expect("intern lock").get(value) {
        return found;
    }
    let mut set = INTERNED.write().expect("intern lock");
    if set.len() >= 1024 {
        return "other";
    }
    let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// A body over the router's size limit is refused (413) before it is read; axum's own answer is
/// plain text ("length limit exceeded"). Partners get the service's protocol error instead, a
/// JSON `invalid_request` (Federation spec Tables 10 and 13), on the endpoints they call
/// directly; a citizen's browser gets the service's page, on every other route. (`/authorize`
/// is a browser's: with its body unread, its redirect URI is unchecked, so RFC 6749 4.1.2.1
/// asks for a page, never a redirect.)
pub async fn oversized_bodies(req: Request, next: Next) -> Response {
    let nonce = req.extensions().get::<CspNonce>().cloned().unwrap_or_default();
    let json = is_json_endpoint(req.uri().path(), req.method());
    let authorize = req.uri().path() == "/authorize";
    let res = next.run(req).await;
    if res.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return res;
    }
    let description = "The request body is too large";
    if json {
        let body = serde_json::json!({ "error": "invalid_request", "error_description": description });
        return (StatusCode::PAYLOAD_TOO_LARGE, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response();
    }
    let page = super::pages::PageContext { nonce: nonce.value(), ..Default::default() };
    if authorize {
        // As for any authorization request that cannot be read (`journeys::authorize`).
        let lines = ["The request could not be read", "Go back to the service and try again. If it keeps happening, contact that service."];
        return super::pages::message(page, StatusCode::PAYLOAD_TOO_LARGE, "Sorry, there is a problem with the service you came from", &lines, None);
    }
    super::pages::message(
        page,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Sorry, there is a problem",
        &["What you sent was too large for us to read. Nothing has been changed.", "Go back and try again."],
        Some(("/", "Go to the start")),
    )
}

/// The endpoints partners and scripts call without a page: the token and UserInfo endpoints
/// (Federation spec 3.5, 3.6) and the passkey ceremonies' JSON.
fn is_json_endpoint(path: &str, method: &Method) -> bool {
    matches!(path, "/token" | "/userinfo") || (path.starts_with("/passkeys/") && method == Method::POST)
}
