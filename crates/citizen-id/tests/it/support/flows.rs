//! Journeys through the HTML forms, shared by the tests.

use super::web::{Page, WebClient};
use super::{Citizen, TestApp};

/// Registers through every form page, declines the passkey offered at the end ("Not now"),
/// and ends wherever the journey goes next.
pub async fn register(app: &TestApp, web: &mut WebClient, email: &str, mobile: &str) -> Page {
    let page = web.get("/register").await;
    assert_eq!(page.heading(), "Create your Citizen ID account");
    let page = web.post("/register", &[("email", email)]).await;
    assert_eq!(page.heading(), "Check your email");
    let code = app.next_code(email).await;
    let page = web.post("/register/email-code", &[("code", &code)]).await;
    assert_eq!(page.heading(), "Create a password");
    let page = web.post("/register/password", &[("password", super::PASSWORD), ("confirm", super::PASSWORD)]).await;
    assert_eq!(page.heading(), "Enter your mobile phone number");
    let page = web.post("/register/mobile", &[("mobile", mobile)]).await;
    assert_eq!(page.heading(), "Check your phone");
    let e164 = domain::MobileNumber::parse(mobile).unwrap().as_str().to_string();
    let code = app.next_code(&e164).await;
    let page = web.post("/register/mobile-code", &[("code", &code)]).await;
    assert_eq!(page.heading(), "Sign in faster with a passkey");
    assert!(page.contains("href=\"/authorize/resume\" id=\"passkey-skip\">Not now</a>"), "the offer is skippable");
    web.get("/authorize/resume").await
}

/// Signs in with password and SMS code; ends wherever the journey goes next.
pub async fn sign_in(app: &TestApp, web: &mut WebClient, citizen: &Citizen) -> Page {
    let page = web.get("/signin").await;
    assert_eq!(page.heading(), "Sign in");
    let page = web.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
    assert_eq!(page.heading(), "Enter the security code", "{}", page.html);
    let code = app.next_code(&citizen.mobile).await;
    web.post("/signin/code", &[("code", &code)]).await
}
