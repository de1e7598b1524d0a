//! A cookie-keeping client that walks the HTML forms (like `support::web::WebClient`) and also
//! calls the passkey JSON endpoints the way `passkeys.js` does: the page's CSRF token in
//! `X-CSRF-Token`, and our own `Origin`.

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::support::web::Page;
use crate::support::{Citizen, TestApp};

pub struct PasskeyClient {
    base: String,
    http: Client,
    csrf: String,
}

impl PasskeyClient {
    pub fn new(app: &TestApp) -> PasskeyClient {
        let http = Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client");
        PasskeyClient { base: app.base.clone(), http, csrf: String::new() }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    async fn follow(&mut self, mut res: reqwest::Response) -> Page {
        loop {
            let url = res.url().to_string();
            if res.status().is_redirection() {
                let location = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
                let next = if location.starts_with('/') { format!("{}{location}", self.base) } else { location.clone() };
                if !next.starts_with(&self.base) {
                    return Page { status: res.status(), url, html: String::new(), left_to: Some(next) };
                }
                res = self.http.get(&next).send().await.expect("GET");
                continue;
            }
            let status = res.status();
            let html = res.text().await.unwrap_or_default();
            for marker in ["name=\"csrf_token\" value=\"", "data-csrf=\""] {
                if let Some(token) = html.split(marker).nth(1).and_then(|s| s.split('"').next()) {
                    self.csrf = token.to_string();
                }
            }
            return Page { status, url, html, left_to: None };
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self.http.get(self.absolute(path)).send().await.expect("GET");
        self.follow(res).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone();
        form.push(("csrf_token", &csrf));
        let res = self.http.post(self.absolute(path)).form(&form).send().await.expect("POST");
        self.follow(res).await
    }

    /// Posts JSON as the page script does; returns the status and the JSON answer.
    pub async fn json(&mut self, path: &str, body: &Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(self.absolute(path))
            .header("x-csrf-token", &self.csrf)
            .header("origin", &self.base)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Signs in with password and SMS code (`Cp.Cd`).
    pub async fn sign_in_with_password(&mut self, app: &TestApp, citizen: &Citizen) -> Page {
        self.get("/signin").await;
        let page = self.post("/signin", &[("email", &citizen.email), ("password", &citizen.password)]).await;
        assert_eq!(page.heading(), "Enter the security code", "{}", page.html);
        let code = app.next_code(&citizen.mobile).await;
        self.post("/signin/code", &[("code", &code)]).await
    }
}
