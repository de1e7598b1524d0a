//! Small cryptographic building blocks: random tokens, digests of secrets kept at rest,
//! constant-time comparison, and authenticated encryption of reversible secrets.

pub mod password;
mod sealing;

pub use sealing::{KeyEncryptionKey, SealError};

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// A random URL-safe token with `bytes` bytes of entropy (sessions, codes, refresh tokens).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random six-digit one-time code, uniformly distributed.
pub fn random_digits(len: u32) -> String {
    use rand::Rng as _;
    let n: u32 = rand::rng().random_range(0..10u32.pow(len));
    format!("{n:0width$}", width = len as usize)
}

/// SHA-256 of a high-entropy secret, hex encoded: what we store instead of the secret itself.
pub fn sha256_hex(input: &str) -> String {
    hex(digest::digest(&digest::SHA256, input.as_bytes()).as_ref())
}

/// HMAC-SHA256 under the server pepper: for low-entropy secrets (six-digit codes), so a copy of
/// the database alone does not let anyone brute-force them.
pub fn hmac_hex(pepper: &[u8], input: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, pepper);
    hex(hmac::sign(&key, input.as_bytes()).as_ref())
}

/// Constant-time equality of two strings.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    // By table, not `write!` per byte: every token request hashes two secrets this way, and the
    // formatting machinery cost more than the SHA-256 itself.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_fixed_width() {
        for _ in 0..200 {
            let code = random_digits(6);
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn hmac_depends_on_pepper() {
        assert_ne!(hmac_hex(b"a", "123456"), hmac_hex(b"b", "123456"));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
    }
}
