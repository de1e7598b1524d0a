//! GP linkage (NL01) answers, as `integrations::gp::client` reads them: a linkage record
//! (create, get), a verify verdict, and the error bodies that tell the two 404s apart
//! (`client::read_answer`).
//!
//! Input: byte 0 picks the operation, bytes 1-2 the status, the rest is the body.
//!
//! Invariants: a record comes back only from a 200 (or a create's 201), and only for the
//! patient and practice asked about, with well-formed credentials; "matches" only from a
//! verify's 200; "not found", "practice unknown" and "mismatch" only from a 200 or a 404 (a
//! GP system outage must never read as a verdict on the citizen's credentials).
#![no_main]

use citizen_id::integrations::gp::GpError;
use citizen_id::integrations::gp::client::read_answer;
use domain::NhsNumber;
use libfuzzer_sys::fuzz_target;

const ODS: &str = "A12345";
const NHS: &str = "9434765919";
const STATUSES: [u16; 8] = [200, 201, 404, 400, 422, 429, 500, 503];

fuzz_target!(|data: &[u8]| {
    let [op, s1, s2, body @ ..] = data else { return };
    let op = ["create", "get", "verify"][usize::from(*op) % 3];
    let raw = u16::from_be_bytes([*s1, *s2]);
    let status = if raw < 0x8000 { STATUSES[usize::from(raw) % STATUSES.len()] } else { 100 + raw % 900 };
    match read_answer(op, status, body, ODS, NHS) {
        Ok(Some(rec)) => {
            assert!(op != "verify");
            assert!(status == 200 || (op == "create" && status == 201), "a record from HTTP {status}");
            assert_eq!(NhsNumber::parse(&rec.nhs_number).ok(), NhsNumber::parse(NHS).ok(), "a record for another patient");
            assert_eq!(rec.ods_code.trim().to_ascii_uppercase(), ODS, "a record for another practice");
            assert!(rec.credentials().is_ok());
        }
        Ok(None) => assert!(op == "verify" && status == 200, "a match from {op} HTTP {status}"),
        Err(GpError::NotFound | GpError::PracticeUnknown | GpError::Mismatch) => {
            assert!(status == 200 || status == 404, "a verdict from HTTP {status}");
        }
        Err(_) => {}
    }
});
