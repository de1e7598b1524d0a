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
        WebClient::from_ip(base, "127.0.0.1")
    }

    /// A browser on another machine: its connections come from `ip`, an address in 127.0.0.0/8
    /// (the server sees it as the client IP).
    pub fn from_ip(base: &str, ip: &str) -> WebClient {
        let jar = Arc::new(Jar::default());
        let local: std::net::IpAddr = ip.parse().expect("an IP address");
        let http = Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).local_address(local).build().expect("client");
        WebClient { base: base.to_string(), http, jar, csrf: String::new() }
    }

    /// A browser whose every request carries `headers` (e.g. the `X-Forwarded-For` a proxy in
    /// front of the server adds).
    pub fn with_headers(base: &str, headers: &[(&str, &str)]) -> WebClient {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"), value.parse().expect("value"));
        }
        let jar = Arc::new(Jar::default());
        let http = Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).default_headers(map).build().expect("client");
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
            let problems = form_problems(&html);
            assert!(problems.is_empty(), "{url}: {problems:#?}");
            // A form's token, or (on a page whose only form is a passkey button) the script's.
            let token = ["name=\"csrf_token\" value=\"", "data-csrf=\""]
                .iter()
                .find_map(|marker| html.split(marker).nth(1).and_then(|s| s.split('"').next()));
            if let Some(token) = token {
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

    /// Posts JSON as `passkeys.js` does (the page's CSRF token in `X-CSRF-Token`, our own
    /// `Origin`); returns the status and the JSON answer.
    pub async fn json(&mut self, path: &str, body: &serde_json::Value) -> (StatusCode, serde_json::Value) {
        let res = self.http.post(self.absolute(path)).header("x-csrf-token", &self.csrf).header("origin", &self.base).json(body).send().await.expect("POST");
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Posts a raw body (for malformed-input tests).
    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        let res = self.http.post(self.absolute(path)).header("content-type", content_type).body(body).send().await.expect("POST");
        self.follow(res).await
    }
}

/// What every page's forms must have (issue items 4 and 6), checked on every page a test walks
/// through: each POST form carries its CSRF token; each field a citizen fills in has an id, a
/// visible `<label for>` and an `autocomplete` token (WCAG 1.3.5), and the fields whose purpose
/// WCAG names have the token for it.
pub fn form_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (at, form) in tags(html, "<form") {
        let post = attr(form, "method").is_some_and(|m| m.eq_ignore_ascii_case("post"));
        // The sample partner (`/demo`) is a partner's page, not ours: its button starts a sign-in.
        let ours = attr(form, "action") != Some("/demo/start");
        let body = &html[at..];
        let body = &body[..body.find("</form>").unwrap_or(body.len())];
        if post && ours && !body.contains("name=\"csrf_token\"") {
            problems.push(format!("a POST form without a CSRF token: {form}"));
        }
    }
    for (_, input) in tags(html, "<input") {
        let kind = attr(input, "type").unwrap_or("text");
        if matches!(kind, "hidden" | "submit" | "button" | "checkbox" | "radio") {
            continue;
        }
        let (Some(id), Some(name)) = (attr(input, "id"), attr(input, "name")) else {
            problems.push(format!("a field without an id or a name: {input}"));
            continue;
        };
        if !html.contains(&format!("for=\"{id}\"")) {
            problems.push(format!("{name}: no <label for=\"{id}\">"));
        }
        let Some(token) = attr(input, "autocomplete") else {
            problems.push(format!("{name}: no autocomplete token"));
            continue;
        };
        let expected: &[&str] = match name {
            "email" => &["email", "username webauthn"],
            "password" => &["current-password", "new-password"],
            "confirm" => &["new-password"],
            "current" => &["current-password"],
            "code" => &["one-time-code"],
            "mobile" | "landline" => &["tel"],
            "given_name" => &["given-name"],
            "family_name" => &["family-name"],
            "postcode" => &["postal-code"],
            "dob_day" => &["bday-day"],
            "dob_month" => &["bday-month"],
            "dob_year" => &["bday-year"],
            _ => &[],
        };
        if !expected.is_empty() && !expected.contains(&token) {
            problems.push(format!("{name}: autocomplete=\"{token}\", expected one of {expected:?}"));
        }
    }
    problems
}

/// The opening tags in `html` that start with `start` (e.g. `<input`), each up to its `>`, with
/// where each begins.
fn tags<'h>(html: &'h str, start: &str) -> Vec<(usize, &'h str)> {
    html.match_indices(start)
        .filter(|(i, _)| html[i + start.len()..].starts_with([' ', '>', '\n']))
        .filter_map(|(i, _)| html[i..].find('>').map(|end| (i, &html[i..=i + end])))
        .collect()
}

/// The value of attribute `name` in an opening tag.
fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    tag[start..].find('"').map(|end| &tag[start..start + end])
}

#[test]
fn form_problems_are_found() {
    let good = r#"<form method="post" action="/x"><input type="hidden" name="csrf_token" value="t"><label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email"></form>"#;
    assert!(form_problems(good).is_empty(), "{:?}", form_problems(good));
    let bad = r#"<form method="post" action="/x"><input id="code" name="code" autocomplete="off"><input id="mobile" name="mobile"></form>"#;
    let problems = form_problems(bad);
    assert_eq!(problems.len(), 5, "{problems:#?}");
}
