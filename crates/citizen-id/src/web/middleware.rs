//! Cross-cutting layers: security headers with a per-request CSP nonce, request ids, metrics.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::crypto::random_token;
use crate::state::AppState;

/// The nonce that lets this response's own scripts run under the CSP.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// An opaque id tying a request's log lines together (also echoed to the client).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's address: the socket peer, or `X-Forwarded-For`'s first hop when configured
/// to sit behind a trusted proxy (never trusted otherwise: it is client-controlled).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

pub async fn security_headers(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let nonce = random_token(16);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(String::from)
        .unwrap_or_else(|| random_token(12));
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let forwarded = state
        .settings
        .trust_forwarded_for
        .then(|| req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string());
    let ip = forwarded.or(peer).unwrap_or_else(|| "unknown".to_string());
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(ClientIp(ip));

    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method());
    let mut res = tracing::Instrument::instrument(next.run(req), span).await;

    let h = res.headers_mut();
    let csp = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'; style-src 'self'; img-src 'self' data:; \
         font-src 'self' https://assets.nhs.uk; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("ascii"));
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

/// Counts requests by route and status and records latency.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("citizen_id_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("citizen_id_http_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    res
}
