//! HTTP client for the PDS FHIR R4 API (and anything that speaks it, such as
//! [`super::simulator`]).
//!
//! Only the three calls Citizen ID needs: read a patient by NHS number, search by demographics,
//! and update a patient's mobile and email. Every request carries a fresh `X-Request-ID` (PDS
//! refuses requests without one) and `Accept: application/fhir+json`. HTTP outcomes are mapped
//! onto [`PdsError`] so the proofing journey knows whether to tell the citizen "no match" or
//! "try again later": 404 is not found, 408/429/5xx, timeouts and connection failures are
//! unavailable, and PDS error codes pick out the rest.

use std::time::Duration;

use domain::NhsNumber;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, IF_MATCH};
use serde_json::{Value, json};

use super::fhir::{self, ContactPoint, Patient};
use super::{BoxFuture, PdsClient, PdsError, PdsPatient, SearchQuery, random_request_id};

/// Used when no timeout is configured. PDS normally answers in well under a second; a citizen
/// waiting on a page would rather see "try again" than a spinner.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// FHIR's JSON media type, sent in `Accept`.
const FHIR_JSON: &str = "application/fhir+json";
/// PDS only accepts JSON Patch updates with this content type.
const JSON_PATCH: &str = "application/json-patch+json";

/// Why a client could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdsConfigError {
    #[error("invalid PDS base URL: {0}")]
    InvalidBaseUrl(String),
}

/// A [`PdsClient`] over HTTP.
///
/// The real API also wants an OAuth 2.0 bearer token (application-restricted or user-restricted
/// access); this client does not obtain one, so for now it must come from the shared
/// `reqwest::Client`'s default headers. The simulator needs none.
#[derive(Clone, Debug)]
pub struct HttpPdsClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

/// One HTTP answer, read in full: status, ETag and the body parsed as JSON (if it was JSON).
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Option<Value>,
}

impl HttpPdsClient {
    /// `base_url` is the FHIR base, e.g. `https://int.api.service.nhs.uk/personal-demographics/FHIR/R4`
    /// or a simulator's `http://127.0.0.1:PORT` (a trailing slash is dropped). The
    /// `reqwest::Client` is shared so connection pools and TLS setup are reused.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Self, PdsConfigError> {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|e| PdsConfigError::InvalidBaseUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PdsConfigError::InvalidBaseUrl(
                "scheme must be http or https".into(),
            ));
        }
        Ok(HttpPdsClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /Patient/{id}` for an id that has not been through [`NhsNumber::parse`] (one read
    /// from older data, say), leaving PDS to judge it: a malformed id is
    /// [`PdsError::InvalidResourceId`]. [`PdsClient::get_patient`] is this with a valid number.
    pub async fn get_patient_by_id(&self, id: &str) -> Result<PdsPatient, PdsError> {
        let (patient, etag) = self.read_patient(id).await?;
        fhir::from_fhir(patient, etag.as_deref())
    }

    async fn read_patient(&self, id: &str) -> Result<(Patient, Option<String>), PdsError> {
        let url = format!("{}/Patient/{}", self.base_url, url_segment(id));
        let answer = self.send(self.http.get(url)).await?;
        let body = expect_ok(answer.status, answer.body)?;
        let patient: Patient = serde_json::from_value(body).map_err(|_| {
            PdsError::Invalid("PDS returned a Patient that could not be read".into())
        })?;
        Ok((patient, answer.etag))
    }

    async fn find(&self, q: &SearchQuery) -> Result<Vec<PdsPatient>, PdsError> {
        let birthdate = format!("eq{}", q.birthdate);
        let max = q.max_results.to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("family", &q.family),
            ("given", &q.given),
            ("birthdate", &birthdate),
            ("_fuzzy-match", if q.fuzzy { "true" } else { "false" }),
            ("_max-results", &max),
        ];
        if !q.postcode.trim().is_empty() {
            params.push(("address-postalcode", &q.postcode));
        }
        let url = format!("{}/Patient", self.base_url);
        let answer = self.send(self.http.get(url).query(&params)).await?;
        search_results(answer.status, answer.body)
    }

    /// Reads the record first: PDS's JSON Patch names telecom entries by index and id, and its
    /// `If-Match` must carry the record's current version (the ETag of that read; one stored
    /// earlier, at proving time say, is stale as soon as anything on PDS changes). A change
    /// landing between the read and the patch answers 409: read again and retry, once.
    async fn update(
        &self,
        nhs: &NhsNumber,
        mobile: Option<&str>,
        email: Option<&str>,
    ) -> Result<PdsPatient, PdsError> {
        if mobile.is_none() && email.is_none() {
            return Err(PdsError::Invalid("nothing to update".into()));
        }
        match self.read_and_patch(nhs, mobile, email).await {
            Err(PdsError::Conflict) => self.read_and_patch(nhs, mobile, email).await,
            other => other,
        }
    }

    async fn read_and_patch(
        &self,
        nhs: &NhsNumber,
        mobile: Option<&str>,
        email: Option<&str>,
    ) -> Result<PdsPatient, PdsError> {
        let (current, etag) = self.read_patient(nhs.as_str()).await?;
        let version = etag
            .as_deref()
            .and_then(fhir::version_from_etag)
            .or_else(|| current.meta.as_ref().and_then(|m| m.version_id.clone()));
        let Some(version) = version else {
            return Err(PdsError::Invalid("PDS returned a Patient without a version".into()));
        };
        let mut patches = Vec::new();
        if let Some(m) = mobile {
            patches.push(telecom_patch(
                &current.telecom,
                ContactPoint::is_mobile,
                "phone",
                "mobile",
                m,
            ));
        }
        if let Some(e) = email {
            patches.push(telecom_patch(
                &current.telecom,
                ContactPoint::is_email,
                "email",
                "home",
                e,
            ));
        }
        let url = format!("{}/Patient/{}", self.base_url, url_segment(nhs.as_str()));
        let request = self
            .http
            .patch(url)
            .header(IF_MATCH, format!("W/\"{version}\""))
            .header(CONTENT_TYPE, JSON_PATCH)
            .body(json!({ "patches": patches }).to_string());
        let answer = self.send(request).await?;
        let body = expect_ok(answer.status, answer.body)?;
        let patient: Patient = serde_json::from_value(body).map_err(|_| {
            PdsError::Invalid("PDS returned an updated Patient that could not be read".into())
        })?;
        fhir::from_fhir(patient, answer.etag.as_deref())
    }

    /// Adds the headers every PDS call needs, sends, and reads the whole answer.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, PdsError> {
        let response = request
            .header("X-Request-ID", random_request_id())
            .header(ACCEPT, FHIR_JSON)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.request_error(&e))?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| self.request_error(&e))?;
        Ok(Answer {
            status,
            etag,
            body: serde_json::from_slice(&bytes).ok(),
        })
    }

    fn request_error(&self, e: &reqwest::Error) -> PdsError {
        if e.is_timeout() {
            PdsError::Unavailable(format!("timed out after {:?}", self.timeout))
        } else if e.is_connect() {
            PdsError::Unavailable("connection failed".into())
        } else if e.is_builder() {
            PdsError::Invalid("could not build the request".into())
        } else {
            PdsError::Unavailable(format!("request failed: {e}"))
        }
    }
}

impl PdsClient for HttpPdsClient {
    fn get_patient<'a>(
        &'a self,
        nhs: &'a NhsNumber,
    ) -> BoxFuture<'a, Result<PdsPatient, PdsError>> {
        Box::pin(self.get_patient_by_id(nhs.as_str()))
    }

    fn search<'a>(
        &'a self,
        q: &'a SearchQuery,
    ) -> BoxFuture<'a, Result<Vec<PdsPatient>, PdsError>> {
        Box::pin(self.find(q))
    }

    fn update_contact<'a>(
        &'a self,
        nhs: &'a NhsNumber,
        mobile: Option<&'a str>,
        email: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PdsPatient, PdsError>> {
        Box::pin(self.update(nhs, mobile, email))
    }
}

/// A search answer: the patients of a searchset Bundle, or the error it stands for.
fn search_results(status: u16, body: Option<Value>) -> Result<Vec<PdsPatient>, PdsError> {
    let body = expect_ok(status, body)?;
    if fhir::error_code(&body).as_deref() == Some("TOO_MANY_MATCHES") {
        return Err(PdsError::TooManyMatches);
    }
    if body.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(PdsError::Invalid(
            "PDS search did not return a Bundle".into(),
        ));
    }
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|mut e| e.get_mut("resource").map(Value::take))
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        .map(|r| {
            let p: Patient = serde_json::from_value(r).map_err(|_| {
                PdsError::Invalid("PDS search returned a Patient that could not be read".into())
            })?;
            fhir::from_fhir(p, None)
        })
        .collect()
}

/// How a PDS answer is read, from the raw status, ETag and body, with no I/O: a read (or an
/// update's answer) when `search` is false, a search otherwise. The fuzzing entry point
/// (`fuzz/fuzz_targets/pds_response.rs`); the client reads its answers the same way.
pub fn read_answer(
    search: bool,
    status: u16,
    etag: Option<&str>,
    body: &[u8],
) -> Result<Vec<PdsPatient>, PdsError> {
    let body = serde_json::from_slice(body).ok();
    if search {
        return search_results(status, body);
    }
    let patient: Patient = serde_json::from_value(expect_ok(status, body)?).map_err(|_| {
        PdsError::Invalid("PDS returned a Patient that could not be read".into())
    })?;
    Ok(vec![fhir::from_fhir(patient, etag)?])
}

/// Maps a non-200 answer onto [`PdsError`]; only PDS's error code is kept, as its diagnostics
/// may echo request values (personal data).
fn expect_ok(status: u16, body: Option<Value>) -> Result<Value, PdsError> {
    let code = body.as_ref().and_then(fhir::error_code);
    match (status, code.as_deref()) {
        (200, _) => body.ok_or_else(|| PdsError::Invalid("PDS answered 200 without JSON".into())),
        (_, Some("TOO_MANY_MATCHES")) => Err(PdsError::TooManyMatches),
        (_, Some("INVALID_RESOURCE_ID")) => Err(PdsError::InvalidResourceId),
        (404, _) => Err(PdsError::NotFound),
        (409, _) | (_, Some("RESOURCE_VERSION_MISMATCH")) => Err(PdsError::Conflict),
        (408 | 429 | 500..=599, code) => Err(PdsError::Unavailable(describe(status, code))),
        (400..=499, code) => Err(PdsError::Invalid(describe(status, code))),
        // 1xx/2xx/3xx other than 200: a proxy or redirect in the way, worth another try.
        (_, code) => Err(PdsError::Unavailable(describe(status, code))),
    }
}

fn describe(status: u16, code: Option<&str>) -> String {
    format!("HTTP {status} ({})", code.unwrap_or("no error code"))
}

/// One JSON Patch operation setting a telecom value: `replace` the existing entry of that kind
/// (mirroring its `id` and `use`, as PDS requires), or `add` one at `/telecom/-`.
fn telecom_patch(
    telecom: &[ContactPoint],
    is_kind: fn(&ContactPoint) -> bool,
    system: &str,
    use_: &str,
    value: &str,
) -> Value {
    match telecom.iter().position(is_kind) {
        Some(i) => {
            let old = &telecom[i];
            let new = ContactPoint {
                value: Some(value.to_owned()),
                ..old.clone()
            };
            json!({ "op": "replace", "path": format!("/telecom/{i}"), "value": new })
        }
        None => {
            let new = ContactPoint {
                id: None,
                system: Some(system.to_owned()),
                use_: Some(use_.to_owned()),
                value: Some(value.to_owned()),
            };
            json!({ "op": "add", "path": "/telecom/-", "value": new })
        }
    }
}

/// Percent-encodes an id for use as one path segment, so a malformed id reaches PDS as data
/// (and gets `INVALID_RESOURCE_ID`) rather than changing the path.
fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
