//! `/health` (the process is up), `/ready` (it can serve: the database answers), `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;
use crate::web::ctx::Ctx;
use crate::web::pages::message;

pub async fn get_health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn get_ready(State(state): State<AppState>) -> Response {
    if state.db.ping().await {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database" }))).into_response()
    }
}

pub async fn get_metrics() -> Response {
    let body = super::telemetry::render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub async fn not_found(ctx: Result<Ctx, Response>) -> Response {
    match ctx {
        Ok(ctx) => message(ctx.page(), StatusCode::NOT_FOUND, "Page not found", &["If you typed the web address, check it is correct."], Some(("/", "Go to the start"))),
        Err(r) => r,
    }
}
