//! Just enough JSON to read the `vtr` parameter: one array of strings.
//!
//! The domain crate carries no JSON library, and the grammar needed here is
//! tiny. Reading it by hand also lets us accept the curly quotes that the
//! specification's examples (and so partners' copy-paste) contain.

use super::VectorRequestError;
use std::iter::Peekable;
use std::str::Chars;

/// Reads `[ "a", "b" ]` into its strings. An empty array is returned as
/// such; the caller decides what that means.
pub(super) fn string_array(input: &str) -> Result<Vec<String>, VectorRequestError> {
    let normalised = input.replace(['\u{201C}', '\u{201D}'], "\"");
    let mut chars = normalised.chars().peekable();
    skip_whitespace(&mut chars);
    if chars.next() != Some('[') {
        return Err(VectorRequestError::NotJsonArray);
    }
    let mut strings = Vec::new();
    skip_whitespace(&mut chars);
    if chars.peek() == Some(&']') {
        chars.next();
    } else {
        loop {
            skip_whitespace(&mut chars);
            match chars.next() {
                Some('"') => strings.push(string_body(&mut chars)?),
                Some(']') | None => return Err(VectorRequestError::NotJsonArray),
                Some(_) => return Err(VectorRequestError::NotAString),
            }
            skip_whitespace(&mut chars);
            match chars.next() {
                Some(',') => continue,
                Some(']') => break,
                _ => return Err(VectorRequestError::NotJsonArray),
            }
        }
    }
    skip_whitespace(&mut chars);
    match chars.next() {
        None => Ok(strings),
        Some(_) => Err(VectorRequestError::NotJsonArray),
    }
}

fn skip_whitespace(chars: &mut Peekable<Chars<'_>>) {
    while chars.next_if(|c| c.is_whitespace()).is_some() {}
}

/// Reads a string after its opening quote, up to and including the closing one.
fn string_body(chars: &mut Peekable<Chars<'_>>) -> Result<String, VectorRequestError> {
    let mut out = String::new();
    loop {
        match chars.next().ok_or(VectorRequestError::NotJsonArray)? {
            '"' => return Ok(out),
            '\\' => out.push(escape(chars)?),
            c => out.push(c),
        }
    }
}

fn escape(chars: &mut Peekable<Chars<'_>>) -> Result<char, VectorRequestError> {
    let c = match chars.next().ok_or(VectorRequestError::NotJsonArray)? {
        '"' => '"',
        '\\' => '\\',
        '/' => '/',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'u' => {
            // Four hex digits exactly (RFC 8259 7): `from_str_radix` alone would also take a
            // sign, reading "\u+050" as "P".
            let hex: String = chars.by_ref().take(4).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(char::from_u32)
                .ok_or(VectorRequestError::NotJsonArray)?
        }
        _ => return Err(VectorRequestError::NotJsonArray),
    };
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use VectorRequestError::*;

    #[test]
    fn reads_arrays_of_strings() {
        let cases: &[(&str, Result<&[&str], VectorRequestError>)] = &[
            (r#"["a","b"]"#, Ok(&["a", "b"])),
            (" [ \"a\" ,\n\"b\" ] ", Ok(&["a", "b"])),
            ("[]", Ok(&[])),
            ("[ ]", Ok(&[])),
            ("[\u{201C}a\u{201D},\u{201C}b\u{201D}]", Ok(&["a", "b"])),
            (r#"["a\"b","\u0050\/"]"#, Ok(&["a\"b", "P/"])),
            ("", Err(NotJsonArray)),
            ("\"a\"", Err(NotJsonArray)),
            ("P9.Cp.Cd", Err(NotJsonArray)),
            ("[\"a\"", Err(NotJsonArray)),
            ("[\"a", Err(NotJsonArray)),
            ("[\"a\",]", Err(NotJsonArray)),
            ("[\"a\" \"b\"]", Err(NotJsonArray)),
            ("[\"a\"]x", Err(NotJsonArray)),
            ("[\"a\\q\"]", Err(NotJsonArray)),
            ("[\"\\u00\"]", Err(NotJsonArray)),
            ("[\"\\u+050\"]", Err(NotJsonArray)),
            ("[1]", Err(NotAString)),
            ("[null]", Err(NotAString)),
            ("[[\"a\"]]", Err(NotAString)),
            ("[P9.Cp]", Err(NotAString)),
            ("[", Err(NotJsonArray)),
        ];
        for (input, expected) in cases {
            let got = string_array(input);
            let expected = expected
                .clone()
                .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, expected, "input {input:?}");
        }
    }
}
