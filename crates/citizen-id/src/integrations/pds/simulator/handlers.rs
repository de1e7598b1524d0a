//! The `/Patient` endpoints: request checks shared by all three, then read, search and
//! update, each answering with PDS's status codes, error codes and FHIR shapes.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::NhsNumber;
use serde_json::Value;
use std::sync::atomic::Ordering;

use super::super::fhir::{self, operation_outcome};
use super::super::{compact_postcode, is_uuid};
use super::store::{self, Criteria};
use super::{DEFAULT_MAX_RESULTS, REQUEST_ID_CAPACITY, SimHandle, SimMode, patch};

/// A FHIR JSON response, echoing the request id as PDS does.
fn fhir_response(
    status: StatusCode,
    body: Vec<u8>,
    request_id: &str,
    version: Option<u32>,
) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("W/\"{v}\"")).ok()) {
        h.insert(header::ETAG, v);
    }
    r
}

fn error(
    status: StatusCode,
    request_id: &str,
    issue_code: &str,
    code: &str,
    display: &str,
) -> Response {
    let body = operation_outcome("error", issue_code, code, display)
        .to_string()
        .into_bytes();
    fhir_response(status, body, request_id, None)
}

/// Checks `X-Request-ID`, records it, then applies the failure mode. `Ok` is the request id.
async fn admit(h: &SimHandle, headers: &HeaderMap) -> Result<String, Response> {
    h.inner.served.fetch_add(1, Ordering::Relaxed);
    let Some(value) = headers.get("x-request-id") else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "",
            "required",
            "MISSING_VALUE",
            "Required value is missing",
        ));
    };
    let id = value.to_str().unwrap_or("").to_owned();
    if !is_uuid(&id) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "",
            "value",
            "INVALID_VALUE",
            "Provided value is invalid",
        ));
    }
    let (mode, delay) = {
        let mut c = h.control();
        c.request_ids.push_back(id.clone());
        while c.request_ids.len() > REQUEST_ID_CAPACITY {
            c.request_ids.pop_front();
        }
        (c.mode, c.slow_delay)
    };
    match mode {
        SimMode::Ok => Ok(id),
        SimMode::Slow => {
            tokio::time::sleep(delay).await;
            Ok(id)
        }
        SimMode::Fail500 => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &id,
            "exception",
            "SERVER_ERROR",
            "Internal server error",
        )),
    }
}

/// PDS takes exactly ten digits with a valid check digit in the path.
fn parse_id(id: &str) -> Option<NhsNumber> {
    (id.len() == 10 && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| NhsNumber::parse(id).ok())
        .flatten()
}

fn invalid_id(request_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        request_id,
        "value",
        "INVALID_RESOURCE_ID",
        "Resource Id is invalid",
    )
}

fn not_found(request_id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        request_id,
        "not_found",
        "RESOURCE_NOT_FOUND",
        "Resource not found",
    )
}

/// `GET /Patient/{id}`.
pub(super) async fn read(
    State(h): State<SimHandle>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rid = match admit(&h, &headers).await {
        Ok(rid) => rid,
        Err(r) => return r,
    };
    let Some(nhs) = parse_id(&id) else {
        return invalid_id(&rid);
    };
    let found = {
        let store = h.read_store();
        store.resolve(&nhs).map(|idx| store.get(idx))
    };
    let Some((patient, version)) = found else {
        return not_found(&rid);
    };
    let body = serde_json::to_vec(&fhir::to_fhir(&patient, version)).unwrap_or_default();
    fhir_response(StatusCode::OK, body, &rid, Some(version))
}

/// `GET /Patient?family&given&birthdate&address-postalcode&_fuzzy-match&_max-results...`.
pub(super) async fn search(
    State(h): State<SimHandle>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let rid = match admit(&h, &headers).await {
        Ok(rid) => rid,
        Err(r) => return r,
    };
    let (criteria, max, exact_only) = match parse_search(query.as_deref().unwrap_or("")) {
        Ok(parsed) => parsed,
        Err((code, display)) => {
            return error(StatusCode::BAD_REQUEST, &rid, "invalid", code, display);
        }
    };
    let found = {
        let store = h.read_store();
        let mut hits = store.search(&criteria);
        if exact_only {
            hits.retain(|(_, score)| *score >= 1.0);
        }
        if hits.len() > max {
            None
        } else {
            let to_fhir = |(idx, score)| {
                let (p, version) = store.get(idx);
                (fhir::to_fhir(&p, version), score)
            };
            Some(hits.into_iter().map(to_fhir).collect::<Vec<_>>())
        }
    };
    let body = match found {
        Some(patients) => fhir::search_bundle(patients),
        None => fhir::too_many_matches_bundle(),
    };
    fhir_response(StatusCode::OK, body.to_string().into_bytes(), &rid, None)
}

type SearchParseError = (&'static str, &'static str);

/// Reads the query string the way PDS validates it; `Err` is (error code, display).
fn parse_search(query: &str) -> Result<(Criteria, usize, bool), SearchParseError> {
    let bad_value = ("INVALID_VALUE", "Provided value is invalid");
    let bad_search = ("INVALID_SEARCH_DATA", "Search data is invalid");
    let (mut family, mut given, mut birth, mut postcode) = (None, Vec::new(), None, None);
    let (mut fuzzy, mut exact, mut max) = (false, false, DEFAULT_MAX_RESULTS);
    let flag = |v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_value),
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "family" => family = Some(v.trim().to_owned()),
            "given" => given.push(v.trim().to_owned()),
            "birthdate" => {
                let date = v.strip_prefix("eq").unwrap_or(&v);
                birth = Some(store::parse_date(date).ok_or(bad_value)?);
            }
            "address-postalcode" | "address-postcode" => postcode = Some(compact_postcode(&v)),
            "_fuzzy-match" => fuzzy = flag(&v)?,
            "_exact-match" => exact = flag(&v)?,
            "_history" => {
                flag(&v)?;
            }
            "_max-results" => {
                max = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or(bad_value)?;
            }
            "gender" => {}
            _ => return Err(("ADDITIONAL_PROPERTIES", "Unrecognised query parameter")),
        }
    }
    let (Some(family), Some(birth)) = (family.filter(|f| !f.is_empty()), birth) else {
        return Err(bad_search);
    };
    let given = given.join(" ");
    let wildcard = family.contains('*')
        || (fuzzy && (given.contains('*') || postcode.iter().any(|p| p.contains('*'))));
    if wildcard || (fuzzy && given.is_empty()) {
        return Err(bad_search);
    }
    Ok((
        Criteria {
            family,
            given,
            birth,
            postcode: postcode.filter(|p| !p.is_empty()),
            fuzzy,
        },
        max,
        exact,
    ))
}

/// `PATCH /Patient/{id}` with a JSON Patch of telecom entries and `If-Match: W/"<version>"`.
pub(super) async fn update(
    State(h): State<SimHandle>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rid = match admit(&h, &headers).await {
        Ok(rid) => rid,
        Err(r) => return r,
    };
    let Some(nhs) = parse_id(&id) else {
        return invalid_id(&rid);
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json-patch+json") {
        return error(
            StatusCode::BAD_REQUEST,
            &rid,
            "value",
            "INVALID_VALUE",
            "Provided value is invalid",
        );
    }
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wanted = if_match
        .strip_prefix("W/\"")
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<u32>().ok());
    let Some(wanted) = wanted else {
        return error(
            StatusCode::PRECONDITION_FAILED,
            &rid,
            "structure",
            "PRECONDITION_FAILED",
            "Required condition was not fulfilled",
        );
    };
    let Ok(patches) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            &rid,
            "structure",
            "INVALID_UPDATE",
            "Update is invalid",
        );
    };
    let mut store = h.write_store();
    let Some(idx) = store.resolve(&nhs) else {
        return not_found(&rid);
    };
    let (patient, version) = store.get(idx);
    if version != wanted {
        return error(
            StatusCode::CONFLICT,
            &rid,
            "conflict",
            "RESOURCE_VERSION_MISMATCH",
            "Resource version mismatch",
        );
    }
    let (mobile, email) = match patch::apply(fhir::telecom_of(&patient), &patches) {
        Ok(contacts) => contacts,
        Err(e) => {
            let status = if e.code == "FORBIDDEN_UPDATE" {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            return error(status, &rid, "invalid", e.code, e.diagnostics);
        }
    };
    let version = store.set_contact(idx, mobile, email);
    let (patient, _) = store.get(idx);
    drop(store);
    let body = serde_json::to_vec(&fhir::to_fhir(&patient, version)).unwrap_or_default();
    fhir_response(StatusCode::OK, body, &rid, Some(version))
}
