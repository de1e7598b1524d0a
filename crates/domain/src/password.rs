//! The shape rules for a new password.
//!
//! Only length and "not just spaces" are checked here, following NCSC and
//! NIST SP 800-63B guidance: no composition rules (they make passwords worse
//! and harder to remember). Whether a password is common or breached is
//! judged elsewhere, with zxcvbn. Length counts characters, not bytes, so a
//! citizen typing in Welsh or with emoji gets the limit the message states.

use thiserror::Error;

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters a password may have: long passphrases are welcome, but
/// hashing unbounded input is a denial-of-service risk.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Why a password cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PasswordPolicyError {
    #[error("Your password must be at least 8 characters")]
    TooShort,
    #[error("Your password must be 128 characters or fewer")]
    TooLong,
    #[error("Your password must include characters other than spaces")]
    AllWhitespace,
}

/// Checks that a proposed password has an acceptable length and is not
/// only whitespace. The password is never trimmed or otherwise changed.
pub fn check_password_shape(password: &str) -> Result<(), PasswordPolicyError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    if password.chars().all(char::is_whitespace) {
        return Err(PasswordPolicyError::AllWhitespace);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordPolicyError::*;

    #[test]
    fn shape_table() {
        let max = "a".repeat(128);
        let over = "a".repeat(129);
        let emoji_eight = "🔑".repeat(8);
        let cases: Vec<(&str, Result<(), PasswordPolicyError>)> = vec![
            ("correct horse", Ok(())),
            ("12345678", Ok(())),
            ("  padded  ", Ok(())),
            (&max, Ok(())),
            (&emoji_eight, Ok(())),
            ("", Err(TooShort)),
            ("1234567", Err(TooShort)),
            ("🔑🔑🔑", Err(TooShort)),
            (&over, Err(TooLong)),
            ("        ", Err(AllWhitespace)),
            ("\t\n \u{a0}    ", Err(AllWhitespace)),
        ];
        for (input, expected) in cases {
            assert_eq!(check_password_shape(input), expected, "input {input:?}");
        }
    }
}
