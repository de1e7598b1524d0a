//! Page structs for the askama templates, and the one place HTML responses are built.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What every page needs from the request: the CSP nonce, the CSRF token, who is signed in.
#[derive(Debug, Clone, Default)]
pub struct PageContext {
    pub nonce: String,
    pub csrf: String,
    pub signed_in: bool,
}

/// One error against a form field, shown in the error summary and beside the field.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub autocomplete: &'static str,
    pub input_type: &'static str,
    pub hint: String,
    pub error: Option<String>,
}

impl Field {
    pub fn new(name: &'static str, label: &'static str, input_type: &'static str, autocomplete: &'static str) -> Field {
        Field { name, label, value: String::new(), autocomplete, input_type, hint: String::new(), error: None }
    }

    pub fn value(mut self, v: impl Into<String>) -> Field {
        self.value = v.into();
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> Field {
        self.hint = h.into();
        self
    }
}

/// A one-question page (most journey steps).
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub heading: String,
    pub intro: Vec<String>,
    pub action: String,
    pub fields: Vec<Field>,
    pub checkbox: Option<String>,
    pub submit: String,
    pub links: Vec<(String, String)>,
    /// A second action on the page that changes something (e.g. "send a new code"): a POST
    /// form of its own with a secondary button, never a link (a GET must not send a message).
    pub secondary: Option<(String, String)>,
    pub back: Option<String>,
    pub errors: Vec<FieldError>,
}

impl Form {
    pub fn new(heading: impl Into<String>, action: impl Into<String>, submit: impl Into<String>) -> Form {
        Form { heading: heading.into(), action: action.into(), submit: submit.into(), ..Form::default() }
    }

    pub fn intro(mut self, p: impl Into<String>) -> Form {
        self.intro.push(p.into());
        self
    }

    pub fn field(mut self, f: Field) -> Form {
        self.fields.push(f);
        self
    }

    pub fn link(mut self, href: impl Into<String>, text: impl Into<String>) -> Form {
        self.links.push((href.into(), text.into()));
        self
    }

    pub fn secondary(mut self, action: impl Into<String>, label: impl Into<String>) -> Form {
        self.secondary = Some((action.into(), label.into()));
        self
    }

    pub fn checkbox(mut self, label: impl Into<String>) -> Form {
        self.checkbox = Some(label.into());
        self
    }

    pub fn back(mut self, href: impl Into<String>) -> Form {
        self.back = Some(href.into());
        self
    }

    /// Marks `field` as wrong, both in the summary and beside the field.
    pub fn error(mut self, field: &str, message: impl Into<String>) -> Form {
        let message = message.into();
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == field) {
            f.error = Some(message.clone());
        }
        self.errors.push(FieldError { field: field.to_string(), message });
        self
    }
}

#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    pub page: PageContext,
    pub form: Form,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub page: PageContext,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub page: PageContext,
    pub partner_name: String,
    pub details: Vec<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub page: PageContext,
    pub sandpit: bool,
    pub test_code: String,
}

#[derive(Template)]
#[template(path = "dev_messages.html")]
pub struct DevMessagesPage {
    pub page: PageContext,
    /// (to, template, personalisation) rows.
    pub messages: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "demo.html")]
pub struct DemoPage {
    pub page: PageContext,
    pub claims: Option<String>,
    pub error: Option<String>,
}

/// Renders a template with a status; a rendering failure is a 500 page of plain text.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Sorry, there is a problem with the service.").into_response()
        }
    }
}

pub fn message(page: PageContext, status: StatusCode, heading: &str, paragraphs: &[&str], link: Option<(&str, &str)>) -> Response {
    render(
        status,
        &MessagePage {
            page,
            heading: heading.to_string(),
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
            link: link.map(|(h, t)| (h.to_string(), t.to_string())),
        },
    )
}

pub fn form(page: PageContext, status: StatusCode, form: Form) -> Response {
    render(status, &FormPage { page, form })
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub page: PageContext,
    pub notice: Option<String>,
    pub level_text: String,
    pub raise: Option<(String, String)>,
    /// (label, value, change link or "").
    pub rows: Vec<(String, String, String)>,
    pub pds_rows: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: String,
    pub client_id: String,
    pub last_used: String,
    pub details: Vec<String>,
}

#[derive(Template)]
#[template(path = "services.html")]
pub struct ServicesPage {
    pub page: PageContext,
    pub services: Vec<ServiceView>,
}

/// "24 November 2026" for a unix-ms time (UTC), the NHS.UK date style.
pub fn long_date(unix_ms: i64) -> String {
    const MONTHS: [&str; 12] =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    let (y, m, d) = domain::civil_from_days(unix_ms.div_euclid(86_400_000));
    format!("{d} {} {y}", MONTHS[(m - 1) as usize])
}
