//! Password hashing (Argon2id, OWASP parameters m=19456 KiB, t=2, p=1) and strength checking.
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking pool and never stalls
//! the async workers. Unknown emails are verified against a fixed dummy hash so a sign-in for an
//! account that does not exist takes as long as one that does (no enumeration by timing).

use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Each Argon2id computation holds 19 MiB: at most this many run at once, so a burst of
/// sign-ins queues instead of multiplying memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A hash computed once, used to spend the same time on unknown accounts.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hasher().hash_password(b"not a real password, only for timing").expect("hash").to_string()
});

pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        hasher().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
}

/// Verifies `password` against `stored`; with `None`, spends the same time and returns false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (DUMMY_HASH.clone(), false),
        };
        let ok = hasher().verify_password(password.as_bytes(), hash.as_str()).is_ok();
        ok && real
    })
    .await
    .unwrap_or(false)
}

/// Why a new password was refused, in words to show the citizen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("{0}")]
    Shape(String),
    #[error("Choose a password that is harder to guess. {0}")]
    Guessable(String),
}

/// Why a new password (with its confirmation) was refused: the form field and the message.
#[derive(Debug)]
pub enum NewPasswordError {
    Refused { field: &'static str, message: String },
    Internal(anyhow::Error),
}

/// Checks a new password and its confirmation against the policy, then hashes it: the one
/// path every "choose a password" page (register, reset, settings) goes through.
pub async fn choose(password: &str, confirm: &str, personal: &[&str]) -> Result<String, NewPasswordError> {
    if let Err(weak) = check_strength(password, personal) {
        return Err(NewPasswordError::Refused { field: "password", message: weak.to_string() });
    }
    if password != confirm {
        return Err(NewPasswordError::Refused { field: "confirm", message: "The passwords do not match".into() });
    }
    hash(password.to_string()).await.map_err(NewPasswordError::Internal)
}

/// Checks length, then strength against common passwords, keyboard patterns, dates and the
/// citizen's own details (zxcvbn; score 3 of 4 or more is required).
pub fn check_strength(password: &str, personal: &[&str]) -> Result<(), WeakPassword> {
    domain::check_password_shape(password).map_err(|e| WeakPassword::Shape(e.to_string()))?;
    let entropy = zxcvbn::zxcvbn(password, personal);
    if (entropy.score() as u8) < 3 {
        let hint = entropy
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "Avoid common words, names and patterns.".to_string());
        return Err(WeakPassword::Guessable(hint));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let h = hash("a long correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("a long correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong".into(), Some(h)).await);
        assert!(!verify("not a real password, only for timing".into(), None).await);
    }

    #[test]
    fn refuses_common_and_personal_passwords() {
        assert!(matches!(check_strength("password1", &[]), Err(WeakPassword::Guessable(_))));
        assert!(matches!(check_strength("short", &[]), Err(WeakPassword::Shape(_))));
        assert!(check_strength("violet-tractor-harbour-91", &[]).is_ok());
        assert!(check_strength("janedoe@example.com1", &["janedoe@example.com"]).is_err());
    }
}
