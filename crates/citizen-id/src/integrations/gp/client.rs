//! HTTP client for GP system linkage keys: our JSON-over-HTTP rendering of the IM1 "IDS68
//! NL01" operations.
//!
//! NL01 says what a GP system must offer (create and retrieve the linkage key for an NHS
//! number at a practice), not a wire format: the real interfaces are brokered by each GP
//! system supplier, with their own endpoints and authentication. This client speaks the
//! rendering below, which the bundled [`super::simulator`] serves and a broker or gateway can
//! expose; a supplier-specific adapter implements the same [`GpLinkageClient`] trait instead,
//! and nothing else in Citizen ID changes.
//!
//! | operation | request | answers |
//! |---|---|---|
//! | create | `POST {base}/practices/{ods}/linkage-keys` `{"nhsNumber"}` | 201 (or 200 when one already existed) + record; 404 |
//! | get | `GET {base}/practices/{ods}/linkage-keys/{nhs}` | 200 + record; 404 |
//! | verify | `POST {base}/practices/{ods}/linkage-keys/verify` `{"nhsNumber","accountId","linkageKey"}` | 200 `{"match":true\|false}`; 404 |
//!
//! A record is `{"nhsNumber","odsCode","accountId","linkageKey"}`; a 4xx body is
//! `{"error": code, "message"}`, where the code tells the two 404s apart (`practice_unknown`,
//! `linkage_not_found`). Every request carries a fresh `X-Request-ID`. 5xx, 408, 429,
//! timeouts and connection failures are [`GpError::Unavailable`]; so is anything the client
//! cannot make sense of, because then the citizen's credentials have not really been judged.

use std::fmt;
use std::time::Duration;

use domain::NhsNumber;
use reqwest::StatusCode;

use super::wire::{self, CreateRequest, ErrorBody, VerifyRequest, VerifyResponse};
use super::{GpCredentials, GpError, GpFuture, GpLinkageClient, LinkageRecord, parse_ods_code};

/// GP systems sit behind supplier gateways and can be slow; past this the citizen is better
/// served by "try again later" or another route than by a spinning page.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`GpLinkageClient`] over HTTP. Cheap to clone: the `reqwest::Client` is shared.
#[derive(Clone)]
pub struct HttpGpLinkageClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl fmt::Debug for HttpGpLinkageClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpGpLinkageClient")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpGpLinkageClient {
    /// `base_url` is e.g. `https://gp-gateway.example/nl01` (a path prefix is kept, a trailing
    /// slash dropped). `timeout` covers each whole request, connect to end of body. Fails with
    /// `GpError::Invalid` when the URL is not http(s).
    pub fn new(http: reqwest::Client, base_url: &str, timeout: Duration) -> Result<Self, GpError> {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|e| GpError::Invalid(format!("GP system base URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(GpError::Invalid(
                "GP system base URL: scheme must be http or https".into(),
            ));
        }
        Ok(HttpGpLinkageClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn create(&self, ods: &str, nhs: &str) -> Result<LinkageRecord, GpError> {
        let (ods, nhs) = checked(ods, nhs)?;
        let url = format!("{}/practices/{ods}/linkage-keys", self.base_url);
        let body = CreateRequest {
            nhs_number: nhs.as_str().to_owned(),
        };
        let (status, bytes, rid) = self.send("create", self.http.post(url).json(&body)).await?;
        record_answer(true, status, &bytes, &ods, &nhs, &rid)
    }

    async fn get(&self, ods: &str, nhs: &str) -> Result<LinkageRecord, GpError> {
        let (ods, nhs) = checked(ods, nhs)?;
        let url = format!(
            "{}/practices/{ods}/linkage-keys/{}",
            self.base_url,
            nhs.as_str()
        );
        let (status, bytes, rid) = self.send("get", self.http.get(url)).await?;
        record_answer(false, status, &bytes, &ods, &nhs, &rid)
    }

    async fn check(&self, creds: &GpCredentials, nhs: &str) -> Result<(), GpError> {
        let (ods, nhs) = checked(creds.ods_code(), nhs)?;
        let url = format!("{}/practices/{ods}/linkage-keys/verify", self.base_url);
        let body = VerifyRequest {
            nhs_number: nhs.as_str().to_owned(),
            account_id: creds.account_id().to_owned(),
            linkage_key: creds.linkage_key().to_owned(),
        };
        let (status, bytes, rid) = self.send("verify", self.http.post(url).json(&body)).await?;
        verify_answer(status, &bytes, &rid)
    }

    /// Sends with a fresh request id and the timeout; transport failures become
    /// `Unavailable`. Returns the status, the body and the request id for error messages.
    async fn send(
        &self,
        op: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>, String), GpError> {
        let rid = super::request_id();
        let sent = request
            .header(wire::REQUEST_ID_HEADER, &rid)
            .timeout(self.timeout)
            .send()
            .await;
        let response = sent.map_err(|e| self.transport_error(&e, &rid))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e, &rid))?
            .to_vec();
        tracing::debug!(op, request_id = %rid, status = status.as_u16(), "GP linkage call");
        Ok((status, bytes, rid))
    }

    fn transport_error(&self, e: &reqwest::Error, rid: &str) -> GpError {
        if e.is_timeout() {
            unavailable(rid, &format!("timed out after {:?}", self.timeout))
        } else if e.is_connect() {
            unavailable(rid, "connection failed")
        } else if e.is_builder() {
            GpError::Invalid(format!("could not build request {rid}"))
        } else {
            unavailable(rid, "request failed")
        }
    }
}

impl GpLinkageClient for HttpGpLinkageClient {
    fn create_linkage_key<'a>(
        &'a self,
        ods_code: &'a str,
        nhs_number: &'a str,
    ) -> GpFuture<'a, LinkageRecord> {
        Box::pin(self.create(ods_code, nhs_number))
    }

    fn get_linkage_key<'a>(
        &'a self,
        ods_code: &'a str,
        nhs_number: &'a str,
    ) -> GpFuture<'a, LinkageRecord> {
        Box::pin(self.get(ods_code, nhs_number))
    }

    fn verify<'a>(
        &'a self,
        credentials: &'a GpCredentials,
        nhs_number: &'a str,
    ) -> GpFuture<'a, ()> {
        Box::pin(self.check(credentials, nhs_number))
    }
}

/// Checks both before they are put in a URL, so nothing malformed (or path-bending) is sent.
fn checked(ods: &str, nhs: &str) -> Result<(String, NhsNumber), GpError> {
    let ods = parse_ods_code(ods).map_err(|_| GpError::Invalid("malformed ODS code".into()))?;
    let nhs = NhsNumber::parse(nhs).map_err(|_| GpError::Invalid("malformed NHS number".into()))?;
    Ok((ods, nhs))
}

fn unavailable(rid: &str, why: &str) -> GpError {
    GpError::Unavailable(format!("GP system: {why} (request {rid})"))
}

/// How the answers are read, from the raw status and body, with no I/O: the fuzzing entry
/// point (`fuzz/fuzz_targets/gp_response.rs`). `op` is `create`, `get` or `verify`; a record
/// comes back for the first two, none for `verify`. A status outside 100-999 is `Invalid`.
pub fn read_answer(
    op: &str,
    status: u16,
    bytes: &[u8],
    ods: &str,
    nhs: &str,
) -> Result<Option<LinkageRecord>, GpError> {
    let (ods, nhs) = checked(ods, nhs)?;
    let status = StatusCode::from_u16(status).map_err(|_| GpError::Invalid("no such HTTP status".into()))?;
    match op {
        "create" => record_answer(true, status, bytes, &ods, &nhs, "fuzz").map(Some),
        "get" => record_answer(false, status, bytes, &ods, &nhs, "fuzz").map(Some),
        _ => verify_answer(status, bytes, "fuzz").map(|()| None),
    }
}

/// A create (`created`: 201 is success too) or get answer.
fn record_answer(
    created: bool,
    status: StatusCode,
    bytes: &[u8],
    ods: &str,
    nhs: &NhsNumber,
    rid: &str,
) -> Result<LinkageRecord, GpError> {
    match status {
        StatusCode::OK => record(bytes, ods, nhs, rid),
        StatusCode::CREATED if created => record(bytes, ods, nhs, rid),
        StatusCode::NOT_FOUND => not_found(bytes, rid, GpError::NotFound),
        _ => Err(failure(status, bytes, rid)),
    }
}

fn verify_answer(status: StatusCode, bytes: &[u8], rid: &str) -> Result<(), GpError> {
    match status {
        StatusCode::OK => match serde_json::from_slice::<VerifyResponse>(bytes) {
            Ok(VerifyResponse { matched: true }) => Ok(()),
            Ok(VerifyResponse { matched: false }) => Err(GpError::Mismatch),
            Err(_) => Err(unavailable(rid, "verify answer has no \"match\"")),
        },
        // Should a GP system say "no linkage" here, it is still just "does not match".
        StatusCode::NOT_FOUND => not_found(bytes, rid, GpError::Mismatch),
        _ => Err(failure(status, bytes, rid)),
    }
}

/// A record answer, checked to be well formed and about the patient and practice we asked
/// for: a record for anyone else is a GP-side fault, never something to hand on.
fn record(bytes: &[u8], ods: &str, nhs: &NhsNumber, rid: &str) -> Result<LinkageRecord, GpError> {
    let rec: LinkageRecord =
        serde_json::from_slice(bytes).map_err(|_| unavailable(rid, "linkage record unreadable"))?;
    let same_patient = NhsNumber::parse(&rec.nhs_number).is_ok_and(|n| &n == nhs);
    let same_practice = parse_ods_code(&rec.ods_code).is_ok_and(|o| o == ods);
    if !same_patient || !same_practice {
        return Err(unavailable(
            rid,
            "linkage record is for another patient or practice",
        ));
    }
    if rec.credentials().is_err() {
        return Err(unavailable(rid, "linkage record malformed"));
    }
    Ok(rec)
}

fn error_code(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(bytes)
        .ok()
        .map(|b| b.error)
}

/// Tells the two 404s apart by the error code. A 404 with neither code came from something
/// that is not an NL01 endpoint (a wrong base URL, a proxy), so it says nothing about the
/// patient and is `Unavailable`.
fn not_found<T>(bytes: &[u8], rid: &str, linkage_missing: GpError) -> Result<T, GpError> {
    match error_code(bytes).as_deref() {
        Some(wire::PRACTICE_UNKNOWN) => Err(GpError::PracticeUnknown),
        Some(wire::LINKAGE_NOT_FOUND) => Err(linkage_missing),
        _ => Err(unavailable(
            rid,
            "HTTP 404 without an NL01 error code; check the base URL",
        )),
    }
}

/// Any other status. Only the error code goes in the message: free text may echo the request.
fn failure(status: StatusCode, bytes: &[u8], rid: &str) -> GpError {
    let code = error_code(bytes).unwrap_or_else(|| "no error code".into());
    let what = format!("HTTP {} ({code})", status.as_u16());
    match status.as_u16() {
        400 | 422 => GpError::Invalid(format!(
            "GP system refused the request: {what} (request {rid})"
        )),
        _ => unavailable(rid, &what),
    }
}
