//! PDS FHIR answers, as `integrations::pds::client` reads them: the status mapping, the
//! OperationOutcome error codes, a Patient (read or update answer, with its ETag) and a
//! searchset Bundle (`client::read_answer`, `fhir::from_fhir`).
//!
//! Input: byte 0 picks read or search, bytes 1-2 the status, then the ETag up to a `\0`
//! (no ETag without one) and the body.
//!
//! Invariants: a patient comes back only from a 200; "not found" only from a 404; every
//! patient has a valid NHS number (the type) and a mobile, when there is one, in E.164; a read's
//! version is the ETag's when the ETag names one.
#![no_main]

use citizen_id::integrations::pds::PdsError;
use citizen_id::integrations::pds::client::read_answer;
use libfuzzer_sys::fuzz_target;

/// Statuses worth hitting often; any other is taken as is.
const STATUSES: [u16; 8] = [200, 404, 400, 409, 412, 429, 500, 503];

fuzz_target!(|data: &[u8]| {
    let [mode, s1, s2, rest @ ..] = data else { return };
    let raw = u16::from_be_bytes([*s1, *s2]);
    let status = if raw < 0x8000 { STATUSES[usize::from(raw) % STATUSES.len()] } else { raw % 1000 };
    let search = mode & 1 == 1;
    let (etag, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
        None => (None, rest),
    };
    match read_answer(search, status, etag, body) {
        Ok(patients) => {
            assert_eq!(status, 200, "patients from a non-200 answer");
            assert!(search || patients.len() == 1);
            for p in &patients {
                if let Some(m) = &p.mobile {
                    assert!(m.starts_with("+44") && m[1..].bytes().all(|b| b.is_ascii_digit()), "mobile not E.164: {m:?}");
                }
            }
            if let (false, Some(etag)) = (search, etag) {
                let v = etag.trim();
                let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
                if !v.is_empty() {
                    assert_eq!(patients[0].version, v, "the ETag's version is not the one kept");
                }
            }
        }
        Err(PdsError::NotFound) => assert_eq!(status, 404),
        Err(_) => {}
    }
});
