//! Small cryptographic building blocks: random tokens, digests of secrets kept at rest,
//! constant-time comparison, and authenticated encryption of reversible secrets.

pub mod password;
mod hashing_pool;
mod sealing;

pub use hashing_pool::{HashingPool, PoolStats};
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

/// A random value that sorts by the time it was made: 12 hex digits of the Unix time in
/// milliseconds, then `random_bytes` of randomness (base64url). Rows keyed by such values arrive
/// at the end of their index, whose last page the previous insert has just written, instead of
/// at a random page each: on the token endpoint's path that is a page fewer written to the
/// database log per row and per index. The prefix tells only when the value was issued, which
/// the row and the tokens say anyway; the secret is the random part.
pub fn time_ordered_token(now_ms: i64, random_bytes: usize) -> String {
    secret_key_floor(now_ms) + &random_token(random_bytes)
}

/// The time prefix of secrets issued at `ms`, and so a key that `secret_key` keys of time-ordered
/// secrets issued before `ms` sort below, and those issued at `ms` or later sort above (or on).
/// Bare-hash keys of secrets made before the prefix existed sort anywhere.
pub fn secret_key_floor(ms: i64) -> String {
    format!("{:012x}", ms.max(0))
}

/// Hex digits of a `time_ordered_token`'s time prefix.
const TIME_PREFIX: usize = 12;
/// Length of a `time_ordered_token` made with 32 random bytes (the secrets `secret_key` keys).
const ORDERED_SECRET_LEN: usize = TIME_PREFIX + 43;

/// The key a secret (an authorization code, a refresh token) is stored and found by: its SHA-256
/// in hex, behind the secret's time prefix when it is a `time_ordered_token` of 32 random bytes,
/// so that the keys too arrive in time order. Secrets made before the prefix existed (43
/// characters) are found by their bare hash, as they were stored. The key reveals nothing of the
/// secret beyond when it was issued.
pub fn secret_key(secret: &str) -> String {
    match secret.get(..TIME_PREFIX) {
        Some(prefix) if secret.len() == ORDERED_SECRET_LEN && prefix.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            format!("{prefix}{}", sha256_hex(secret))
        }
        _ => sha256_hex(secret),
    }
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
    fn time_ordered_secrets_and_their_keys_sort_by_time() {
        let times = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_060_000, 1_800_000_000_000];
        let secrets: Vec<String> = times.iter().map(|&t| time_ordered_token(t, 32)).collect();
        let keys: Vec<String> = secrets.iter().map(|s| secret_key(s)).collect();
        assert!(secrets.windows(2).all(|w| w[0] < w[1]) && keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (secret, key) in secrets.iter().zip(&keys) {
            assert_eq!(secret.len(), 55);
            assert_eq!(key, &format!("{}{}", &secret[..12], sha256_hex(secret)));
        }
        // The random part is the secret: same time, different secrets and keys.
        assert_ne!(time_ordered_token(times[0], 32)[12..], secrets[0][12..]);
    }

    #[test]
    fn secrets_from_before_the_time_prefix_keep_their_bare_hash() {
        let old = random_token(32);
        assert_eq!(old.len(), 43);
        assert_eq!(secret_key(&old), sha256_hex(&old));
        // Anything not shaped like a time-ordered secret is keyed by its bare hash too.
        for odd in ["", "0123456789ab", &format!("0123456789aB{}", &old), &format!("0123456789ab{}x", &old), "é".repeat(40).as_str()] {
            assert_eq!(secret_key(odd), sha256_hex(odd), "{odd}");
        }
    }

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
