//! The slice of PDS's JSON Patch the simulator supports: a patient changing their own mobile
//! and email ("patient access" mode allows only those two telecom kinds).
//!
//! The rules are PDS's, so a client that passes here is likely to pass there: the body is
//! `{"patches": [...]}`; `replace` names an entry by index, must keep its `system` and `use`,
//! and must mirror its `id`; `add` goes to `/telecom/-`; `remove` must come straight after a
//! `test` of the same entry; one failing operation means none is applied.

use domain::{Email, MobileNumber};
use serde_json::Value;

use super::super::fhir::ContactPoint;

/// Why a patch was refused: the PDS error code and a diagnostic safe to send back (it never
/// contains the submitted values).
#[derive(Debug, PartialEq, Eq)]
pub struct PatchError {
    pub code: &'static str,
    pub diagnostics: &'static str,
}

fn invalid_update(diagnostics: &'static str) -> PatchError {
    PatchError {
        code: "INVALID_UPDATE",
        diagnostics,
    }
}

/// New mobile (E.164) and email after applying `body` to the stored `telecom`.
pub fn apply(
    mut telecom: Vec<ContactPoint>,
    body: &Value,
) -> Result<(Option<String>, Option<String>), PatchError> {
    let patches = body
        .get("patches")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or(invalid_update("Invalid patch - missing 'patches'"))?;
    let mut last_test: Option<usize> = None;
    for op in patches {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let rest = path.strip_prefix("/telecom/").ok_or(PatchError {
            code: "FORBIDDEN_UPDATE",
            diagnostics: "Only telecom can be updated here",
        })?;
        let tested = last_test.take();
        match kind {
            "add" => {
                let new = contact(op)?;
                match rest {
                    "-" => telecom.push(new),
                    i => {
                        let i = index(i, telecom.len() + 1)?;
                        telecom.insert(i, new);
                    }
                }
            }
            "replace" => {
                let i = index(rest, telecom.len())?;
                let new = contact(op)?;
                let old = &telecom[i];
                if new.id != old.id {
                    return Err(invalid_update(
                        "Invalid update - replace must include the telecom id",
                    ));
                }
                if new.system != old.system || new.use_ != old.use_ {
                    return Err(invalid_update(
                        "Invalid update - replace cannot change system or use",
                    ));
                }
                telecom[i] = new;
            }
            "remove" => {
                let i = index(rest, telecom.len())?;
                if tested != Some(i) {
                    return Err(invalid_update(
                        "Invalid update - remove must follow a test of the same item",
                    ));
                }
                telecom.remove(i);
            }
            "test" => {
                let (i, field) = rest.split_once('/').unwrap_or((rest, ""));
                let i = index(i, telecom.len())?;
                let have = serde_json::to_value(&telecom[i]).unwrap_or(Value::Null);
                let have = if field.is_empty() {
                    Some(&have)
                } else {
                    have.get(field)
                };
                if have != op.get("value") {
                    return Err(invalid_update("Invalid update - test failed"));
                }
                last_test = Some(i);
            }
            _ => return Err(invalid_update("Invalid patch - unsupported op")),
        }
    }
    read_contacts(&telecom)
}

fn contact(op: &Value) -> Result<ContactPoint, PatchError> {
    let value = op
        .get("value")
        .cloned()
        .ok_or(invalid_update("Invalid patch - missing value"))?;
    serde_json::from_value(value)
        .map_err(|_| invalid_update("Invalid patch - value is not a telecom"))
}

fn index(s: &str, len: usize) -> Result<usize, PatchError> {
    s.parse::<usize>()
        .ok()
        .filter(|i| *i < len)
        .ok_or(invalid_update("Invalid patch - telecom index out of range"))
}

/// The mobile and email in the patched list; a later entry of the same kind wins, as the
/// simulator holds one of each (PDS keeps "one instance of each telecom value").
fn read_contacts(telecom: &[ContactPoint]) -> Result<(Option<String>, Option<String>), PatchError> {
    let bad_value = |diagnostics| PatchError {
        code: "INVALID_VALUE",
        diagnostics,
    };
    let (mut mobile, mut email) = (None, None);
    for t in telecom {
        let value = t.value.as_deref().unwrap_or("");
        if t.is_mobile() {
            let m = MobileNumber::parse(value)
                .map_err(|_| bad_value("Invalid value in field 'telecom' (mobile)"))?;
            mobile = Some(m.as_str().to_owned());
        } else if t.is_email() {
            let e = Email::parse(value)
                .map_err(|_| bad_value("Invalid value in field 'telecom' (email)"))?;
            email = Some(e.as_str().to_owned());
        } else {
            return Err(PatchError {
                code: "FORBIDDEN_UPDATE",
                diagnostics: "Only mobile and email telecom can be updated here",
            });
        }
    }
    Ok((mobile, email))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored() -> Vec<ContactPoint> {
        serde_json::from_value(json!([
            { "id": "M", "system": "phone", "use": "mobile", "value": "07700900001" },
            { "id": "E", "system": "email", "use": "home", "value": "old@example.com" },
        ]))
        .unwrap()
    }

    #[test]
    fn replaces_adds_and_removes() {
        let body = json!({ "patches": [
            { "op": "replace", "path": "/telecom/0",
              "value": { "id": "M", "system": "phone", "use": "mobile", "value": "+447700900999" } },
        ]});
        let got = apply(stored(), &body).unwrap();
        assert_eq!(
            got,
            (Some("+447700900999".into()), Some("old@example.com".into()))
        );

        let body = json!({ "patches": [
            { "op": "test", "path": "/telecom/1/id", "value": "E" },
            { "op": "remove", "path": "/telecom/1" },
        ]});
        assert_eq!(
            apply(stored(), &body).unwrap(),
            (Some("+447700900001".into()), None)
        );
    }

    #[test]
    fn refuses_what_pds_refuses() {
        let no_id = json!({ "patches": [
            { "op": "replace", "path": "/telecom/0", "value": { "system": "phone", "use": "mobile", "value": "07700900002" } },
        ]});
        assert_eq!(apply(stored(), &no_id).unwrap_err().code, "INVALID_UPDATE");
        let untested = json!({ "patches": [{ "op": "remove", "path": "/telecom/0" }] });
        assert_eq!(
            apply(stored(), &untested).unwrap_err().code,
            "INVALID_UPDATE"
        );
        let gender =
            json!({ "patches": [{ "op": "replace", "path": "/gender", "value": "male" }] });
        assert_eq!(
            apply(stored(), &gender).unwrap_err().code,
            "FORBIDDEN_UPDATE"
        );
        let bad = json!({ "patches": [
            { "op": "add", "path": "/telecom/-", "value": { "system": "email", "use": "home", "value": "nope" } },
        ]});
        assert_eq!(apply(stored(), &bad).unwrap_err().code, "INVALID_VALUE");
        assert_eq!(
            apply(stored(), &json!({})).unwrap_err().code,
            "INVALID_UPDATE"
        );
    }
}
