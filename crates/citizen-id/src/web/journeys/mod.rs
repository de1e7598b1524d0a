//! Citizen journeys: one file per journey, each handler thin (extract, call the logic, render).

pub mod authorize;
pub mod consent;
pub mod home;
pub mod passkey_pages;
pub mod passkeys;
pub mod prove;
pub mod reauth;
pub mod register;
pub mod reset;
pub mod settings;
pub mod settings_contact;
pub mod signin;

use axum::http::StatusCode;
use axum::response::Response;

use crate::web::ctx::Ctx;
use crate::web::pages::message;

/// The page for a message cap reached (`accounts::limits::message`): the same whoever the
/// address belongs to, so it tells nothing about which addresses have accounts.
pub fn too_many_messages(ctx: &Ctx) -> Response {
    message(
        ctx.page(),
        StatusCode::TOO_MANY_REQUESTS,
        "Too many codes requested",
        &[
            "For your security, we have stopped sending codes to this email address or phone number for now.",
            "Wait an hour, then try again. If you already have a code that has not expired, you can still use it.",
        ],
        Some(("/", "Go to the start")),
    )
}
