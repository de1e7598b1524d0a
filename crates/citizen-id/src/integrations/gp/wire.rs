//! The JSON shapes of our HTTP rendering of NL01, shared by the client and the simulator so
//! the two cannot drift apart. A linkage record travels as [`super::LinkageRecord`] itself
//! (`{"nhsNumber","odsCode","accountId","linkageKey"}`).

use serde::{Deserialize, Serialize};

/// Sent on every request (and echoed by the simulator) so a call can be traced across our
/// logs and the GP system supplier's.
pub(super) const REQUEST_ID_HEADER: &str = "x-request-id";

/// `error` codes in a 4xx body. A 404 means two different things (practice or linkage not
/// found), so the client must read the code rather than the status alone.
pub(super) const PRACTICE_UNKNOWN: &str = "practice_unknown";
pub(super) const LINKAGE_NOT_FOUND: &str = "linkage_not_found";
pub(super) const INVALID_REQUEST: &str = "invalid_request";
pub(super) const SERVER_ERROR: &str = "server_error";

/// Body of `POST /practices/{ods}/linkage-keys`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateRequest {
    pub nhs_number: String,
}

/// Body of `POST /practices/{ods}/linkage-keys/verify`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VerifyRequest {
    pub nhs_number: String,
    pub account_id: String,
    pub linkage_key: String,
}

/// Answer of a verify that reached a known practice: `{"match": true|false}`.
#[derive(Serialize, Deserialize)]
pub(super) struct VerifyResponse {
    #[serde(rename = "match")]
    pub matched: bool,
}

/// Any non-2xx answer: a machine `error` code and a human `message` (which never echoes the
/// request, so it may be logged).
#[derive(Serialize, Deserialize)]
pub(super) struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub message: String,
}
