//! A cookie-keeping HTTP client that walks the HTML forms like a browser without JavaScript:
//! it follows redirects on our own host, stops at the partner's redirect, and sends each form
//! with the CSRF token of the page it came from.

use std::sync::Arc;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};

pub struct WebClient {
    base: String,
    http: Client,
    jar: Arc<Jar>,
    csrf: String,
}

/// A page as the citizen would see it (after our own redirects).
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub url: String,
    pub html: String,
    /// Set when a redirect left our host (the partner's callback).
    pub left_to: Option<String>,
}

impl Page {
    pub fn contains(&self, text: &str) -> bool {
        self.html.contains(text)
    }

    /// The `<h1>` text.
    pub fn heading(&self) -> String {
        self.html.split("<h1>").nth(1).and_then(|s| s.split("</h1>").next()).unwrap_or("").trim().to_string()
    }

    /// A query parameter of the partner redirect.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(self.left_to.as_ref()?).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

impl WebClient {
    pub fn new(base: &str) -> WebClient {
        let jar = Arc::new(Jar::default());
        let http = Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).build().expect("client");
        WebClient { base: base.to_string(), http, jar, csrf: String::new() }
    }

    /// The value of cookie `name` as this browser would send it to the server.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).expect("base URL");
        let header = self.jar.cookies(&url)?;
        let prefix = format!("{name}=");
        header.to_str().ok()?.split("; ").find_map(|c| c.strip_prefix(prefix.as_str()).map(String::from))
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
            if let Some(token) = html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|s| s.split('"').next()) {
                self.csrf = token.to_string();
            }
            return Page { status, url, html, left_to: None };
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self.http.get(self.absolute(path)).send().await.expect("GET");
        self.follow(res).await
    }

    /// Posts a form with the current page's CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone();
        form.push(("csrf_token", &csrf));
        let res = self.http.post(self.absolute(path)).form(&form).send().await.expect("POST");
        self.follow(res).await
    }

    /// Posts a raw body (for malformed-input tests).
    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        let res = self.http.post(self.absolute(path)).header("content-type", content_type).body(body).send().await.expect("POST");
        self.follow(res).await
    }
}
