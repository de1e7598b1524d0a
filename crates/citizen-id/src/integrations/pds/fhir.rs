//! The few FHIR R4 shapes PDS uses, and the mapping to and from [`PdsPatient`].
//!
//! The client reads them and the simulator writes them, so both ends share one definition and
//! one mapping: what the simulator withholds for a restricted patient is exactly what the
//! client expects to be missing. Unknown fields are ignored on read, because the real API sends
//! far more than Citizen ID uses (extensions, identifiers, contact, communication...).

use domain::{MobileNumber, NhsNumber, Postcode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PdsError, PdsPatient};

/// The code system of PDS error codes in `OperationOutcome.issue[].details.coding[]`.
pub const SPINE_ERROR_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode";
/// Where real PDS points a search entry's `fullUrl`; only informative.
pub const FULL_URL_BASE: &str = "https://api.service.nhs.uk/personal-demographics/FHIR/R4/Patient/";
/// `deceasedDateTime` given to deceased patients, whose dataset rows hold only a flag.
const DEATH_DATE_TIME: &str = "2024-01-01T00:00:00+00:00";
/// Stable ids of the two telecom entries the simulator serves: JSON Patch `replace` must name
/// the entry's `id`, as the real API requires.
pub const MOBILE_TELECOM_ID: &str = "789A1B2C";
pub const EMAIL_TELECOM_ID: &str = "789A1B2D";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub general_practitioner: Vec<Reference>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<Coding>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Coding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HumanName {
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl ContactPoint {
    pub fn is_mobile(&self) -> bool {
        self.system.as_deref() == Some("phone") && self.use_.as_deref() == Some("mobile")
    }

    pub fn is_email(&self) -> bool {
        self.system.as_deref() == Some("email")
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reference {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

/// The FHIR form of a stored patient, as PDS releases it: a restricted patient loses address,
/// telecom and GP and is labelled `R`; everyone else is labelled `U` (unrestricted).
pub fn to_fhir(p: &PdsPatient, version: u32) -> Patient {
    let (code, display) = if p.restricted {
        ("R", "restricted")
    } else {
        ("U", "unrestricted")
    };
    let mut out = Patient {
        resource_type: "Patient".into(),
        id: p.nhs_number.as_str().into(),
        meta: Some(Meta {
            version_id: Some(version.to_string()),
            security: vec![Coding {
                system: Some("http://terminology.hl7.org/CodeSystem/v3-Confidentiality".into()),
                code: Some(code.into()),
                display: Some(display.into()),
            }],
        }),
        identifier: vec![Identifier {
            system: Some("https://fhir.nhs.uk/Id/nhs-number".into()),
            value: Some(p.nhs_number.as_str().into()),
        }],
        name: vec![HumanName {
            use_: Some("usual".into()),
            family: Some(p.family_name.clone()),
            given: p.given_names.clone(),
        }],
        birth_date: Some(p.birth_date.clone()),
        deceased_date_time: p.deceased.then(|| DEATH_DATE_TIME.into()),
        ..Patient::default()
    };
    if p.restricted {
        return out;
    }
    if let Some(pc) = &p.postcode {
        out.address.push(Address {
            use_: Some("home".into()),
            postal_code: Some(pc.clone()),
        });
    }
    out.telecom = telecom_of(p);
    if let Some(ods) = &p.gp_ods_code {
        out.general_practitioner.push(Reference {
            type_: Some("Organization".into()),
            identifier: Some(Identifier {
                system: Some("https://fhir.nhs.uk/Id/ods-organization-code".into()),
                value: Some(ods.clone()),
            }),
        });
    }
    out
}

/// The telecom list PDS would hold: the mobile in the national form PDS usually stores (so
/// the client's E.164 normalisation is exercised), then the email.
pub fn telecom_of(p: &PdsPatient) -> Vec<ContactPoint> {
    let mut out = Vec::new();
    if let Some(m) = &p.mobile {
        let national = MobileNumber::parse(m)
            .map(|m| m.national())
            .unwrap_or_else(|_| m.clone());
        out.push(contact(MOBILE_TELECOM_ID, "phone", "mobile", national));
    }
    if let Some(e) = &p.email {
        out.push(contact(EMAIL_TELECOM_ID, "email", "home", e.clone()));
    }
    out
}

fn contact(id: &str, system: &str, use_: &str, value: String) -> ContactPoint {
    ContactPoint {
        id: Some(id.into()),
        system: Some(system.into()),
        use_: Some(use_.into()),
        value: Some(value),
    }
}

/// Reads a FHIR Patient. `etag` (e.g. `W/"2"`) wins over `meta.versionId` for the version, as
/// PDS documents the ETag as the value to send back in `If-Match`.
pub fn from_fhir(p: Patient, etag: Option<&str>) -> Result<PdsPatient, PdsError> {
    if p.resource_type != "Patient" {
        return Err(PdsError::Invalid(format!(
            "expected a Patient, got {:?}",
            p.resource_type
        )));
    }
    let nhs_number = NhsNumber::parse(&p.id).map_err(|_| {
        PdsError::Invalid("PDS returned a Patient without a valid NHS number".into())
    })?;
    let security = p
        .meta
        .as_ref()
        .and_then(|m| m.security.first())
        .and_then(|c| c.code.as_deref());
    let restricted = matches!(security, Some("R" | "V"));
    let version = etag
        .and_then(version_from_etag)
        .or_else(|| p.meta.as_ref().and_then(|m| m.version_id.clone()))
        .unwrap_or_default();
    let name = p
        .name
        .iter()
        .find(|n| n.use_.as_deref() == Some("usual"))
        .or(p.name.first());
    let postcode = p
        .address
        .iter()
        .find(|a| a.use_.as_deref() == Some("home"))
        .and_then(|a| a.postal_code.as_deref())
        .map(|pc| {
            Postcode::parse(pc)
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|_| pc.trim().to_owned())
        });
    let mobile = p
        .telecom
        .iter()
        .filter(|t| t.is_mobile())
        .find_map(|t| MobileNumber::parse(t.value.as_deref()?).ok())
        .map(|m| m.as_str().to_owned());
    let email = p
        .telecom
        .iter()
        .filter(|t| t.is_email())
        .find_map(|t| t.value.clone());
    let gp_ods_code = p
        .general_practitioner
        .first()
        .and_then(|g| g.identifier.as_ref())
        .and_then(|i| i.value.clone());
    Ok(PdsPatient {
        nhs_number,
        given_names: name.map(|n| n.given.clone()).unwrap_or_default(),
        family_name: name.and_then(|n| n.family.clone()).unwrap_or_default(),
        birth_date: p.birth_date.unwrap_or_default(),
        postcode,
        gp_ods_code,
        mobile,
        email,
        restricted,
        deceased: p.deceased_date_time.is_some(),
        superseded_by: None,
        version,
    })
}

/// `W/"2"` (or `"2"`, or `2`) to `2`.
pub fn version_from_etag(etag: &str) -> Option<String> {
    let v = etag.trim();
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    (!v.is_empty()).then(|| v.to_owned())
}

/// The first PDS error code in an OperationOutcome (or in an OperationOutcome entry of a
/// Bundle), e.g. `INVALID_RESOURCE_ID` or `TOO_MANY_MATCHES`.
pub fn error_code(body: &Value) -> Option<String> {
    match body.get("resourceType").and_then(Value::as_str)? {
        "OperationOutcome" => body
            .pointer("/issue/0/details/coding/0/code")
            .and_then(Value::as_str)
            .map(str::to_owned),
        "Bundle" => body
            .get("entry")?
            .as_array()?
            .iter()
            .filter_map(|e| e.get("resource"))
            .find_map(error_code),
        _ => None,
    }
}

/// A PDS-style OperationOutcome with one issue.
pub fn operation_outcome(severity: &str, issue_code: &str, code: &str, display: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": severity,
            "code": issue_code,
            "details": { "coding": [{
                "system": SPINE_ERROR_SYSTEM, "version": "1", "code": code, "display": display,
            }]},
        }],
    })
}

/// What PDS answers (HTTP 200) when a search matches more patients than `_max-results`: an
/// empty searchset whose only entry is an OperationOutcome with `TOO_MANY_MATCHES`.
pub fn too_many_matches_bundle() -> Value {
    let outcome = operation_outcome(
        "information",
        "multiple-matches",
        "TOO_MANY_MATCHES",
        "Too many matches",
    );
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
        "entry": [{ "resource": outcome }],
    })
}

/// A searchset Bundle of patients with their match scores, best first.
pub fn search_bundle(found: Vec<(Patient, f64)>) -> Value {
    let entries: Vec<Value> = found
        .into_iter()
        .map(|(p, score)| {
            json!({
                "fullUrl": format!("{FULL_URL_BASE}{}", p.id),
                "search": { "score": score },
                "resource": p,
            })
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries })
}
