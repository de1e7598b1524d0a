//! Form bodies: the citizen pages' `web::forms::parse_fields` and the token endpoint's
//! `web::protocol::form_pairs_of_text` (a hand-written fast path).
//!
//! Invariants, against a reference decoder written here from the WHATWG urlencoded parser
//! (split on `&`, drop empty pieces, split at the first `=`, `+` is a space, percent-decode,
//! UTF-8 lossily):
//! - `form_pairs_of_text` gives exactly the reference's pairs, in order;
//! - `parse_fields` accepts a body only if it is UTF-8 with no name twice, and then holds
//!   exactly the reference's pairs: never a pair that was not in the input, none dropped.
#![no_main]

use std::collections::HashMap;

use citizen_id::web::forms::parse_fields;
use citizen_id::web::protocol::form_pairs_of_text;
use libfuzzer_sys::fuzz_target;

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        let hex = |c: u8| (c as char).to_digit(16);
        match b {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reference(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|b| *b == b'=') {
            Some(eq) => (percent_decode(&piece[..eq]), percent_decode(&piece[eq + 1..])),
            None => (percent_decode(piece), String::new()),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let expected = reference(data);
    let utf8 = std::str::from_utf8(data).ok();
    if let Some(text) = utf8 {
        assert_eq!(form_pairs_of_text(text), expected, "the token endpoint's fast path differs from the decoder");
    }
    let mut names = std::collections::HashSet::new();
    let unique = expected.iter().all(|(k, _)| names.insert(k.as_str()));
    match parse_fields(data) {
        Ok(map) => {
            assert!(utf8.is_some(), "accepted a body that is not UTF-8");
            assert!(unique, "accepted a body with a field named twice");
            let want: HashMap<String, String> = expected.into_iter().collect();
            assert_eq!(map, want, "the fields are not the body's pairs");
        }
        Err(_) => assert!(utf8.is_none() || !unique, "refused a UTF-8 body without repeats"),
    }
});
