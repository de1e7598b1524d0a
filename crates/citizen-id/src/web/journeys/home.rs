//! The start page and the sandpit's development pages.

use axum::http::StatusCode;
use axum::response::Response;

use crate::config::Mode;
use crate::web::ctx::Ctx;
use crate::web::pages::{DevMessagesPage, HomePage, render};

pub async fn get_home(ctx: Ctx) -> Response {
    let page = ctx.page();
    let sandpit = ctx.state.settings.mode == Mode::Sandpit;
    let test_code = ctx.state.settings.test_code.clone().unwrap_or_default();
    ctx.finish(render(StatusCode::OK, &HomePage { page, sandpit, test_code })).await
}

/// Sandpit only: what the development notification sink would have sent.
pub async fn get_dev_messages(ctx: Ctx) -> Response {
    let Some(sink) = ctx.state.dev_sink.clone() else {
        return render(StatusCode::NOT_FOUND, &crate::web::pages::MessagePage {
            page: ctx.page(),
            heading: "Page not found".into(),
            paragraphs: vec![],
            link: None,
        });
    };
    let messages = sink
        .messages()
        .into_iter()
        .map(|m| (m.to.clone(), m.template_id.clone(), serde_json::Value::Object(m.personalisation.clone()).to_string()))
        .collect();
    let page = ctx.page();
    render(StatusCode::OK, &DevMessagesPage { page, messages })
}
