//! The `vtr` authorize parameter (`domain::VectorRequest::parse`, with its hand-written JSON
//! reader) and single vectors (`domain::Vector::parse`).
//!
//! Invariants:
//! - parse, then serialise (`as_str`, and serde), then parse again gives the same request;
//!   the canonical text is a JSON array of 1 to 10 strings, each a vector's canonical text;
//! - nothing valid JSON is refused: a JSON array of 1 to 10 strings that are each a vector
//!   parses, to those vectors in that order;
//! - for printable ASCII, nothing but JSON is accepted (a regression check for "\u+050");
//! - a vector's canonical text parses back to the same vector.
#![no_main]

use domain::{MAX_VECTORS, Vector, VectorRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = Vector::parse(text) {
        assert_eq!(Vector::parse(v.as_str()).as_ref(), Ok(&v));
        assert!(!v.as_str().is_empty());
    }
    let parsed = VectorRequest::parse(text);
    if let Ok(request) = &parsed {
        assert_eq!(VectorRequest::parse(request.as_str()).as_ref(), Ok(request), "as_str does not round-trip");
        let json = serde_json::to_string(request).expect("serialises");
        let back: VectorRequest = serde_json::from_str(&json).expect("deserialises what it serialised");
        assert_eq!(&back, request, "serde does not round-trip");
        let strings: Vec<String> = serde_json::from_str(request.as_str()).expect("the canonical text is JSON");
        assert!((1..=MAX_VECTORS).contains(&strings.len()));
        let canonical: Vec<&str> = request.vectors().iter().map(Vector::as_str).collect();
        assert_eq!(strings, canonical);
        for v in request.vectors() {
            assert_eq!(Vector::parse(v.as_str()).as_ref(), Ok(v));
        }
        // Nothing but JSON is accepted: for printable ASCII (the reader also takes curly
        // quotes, Unicode spaces and raw tabs on purpose), what it read is what a JSON
        // parser reads.
        if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            let strings: Vec<String> = serde_json::from_str(text).expect("accepted a vtr that is not JSON");
            let vectors: Vec<Vector> = strings.iter().map(|s| Vector::parse(s).expect("a vector")).collect();
            assert_eq!(request.vectors(), vectors.as_slice());
        }
    }
    if let Ok(strings) = serde_json::from_str::<Vec<String>>(text)
        && (1..=MAX_VECTORS).contains(&strings.len())
        && let Ok(vectors) = strings.iter().map(|s| Vector::parse(s)).collect::<Result<Vec<_>, _>>()
    {
        let request = parsed.expect("refused a vtr that is a JSON array of valid vectors");
        assert_eq!(request.vectors(), vectors.as_slice());
    }
});
