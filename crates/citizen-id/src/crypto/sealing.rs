//! AES-256-GCM sealing of secrets that must be read back (signing keys, outbox messages,
//! later GP credentials and evidence). The key is derived from the operator's key-encryption
//! secret, so a copy of the database alone reveals none of them.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use rand::RngCore as _;

use super::{b64url, b64url_decode};

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data does not open with this key (wrong key-encryption secret, or tampered)")]
    WrongKey,
}

/// The key that seals secrets at rest, and the pepper for one-time-code HMACs.
pub struct KeyEncryptionKey {
    key: LessSafeKey,
    pepper: [u8; 32],
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// Derives independent sealing and pepper keys from the operator's secret.
    pub fn from_secret(secret: &str) -> KeyEncryptionKey {
        let derive = |label: &str| {
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(label.as_bytes());
            ctx.update(secret.as_bytes());
            let mut out = [0u8; 32];
            out.copy_from_slice(ctx.finish().as_ref());
            out
        };
        let seal_key = derive("citizen-id seal v1:");
        let pepper = derive("citizen-id pepper v1:");
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &seal_key).expect("32-byte key"));
        KeyEncryptionKey { key, pepper }
    }

    pub fn pepper(&self) -> &[u8] {
        &self.pepper
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. the table and row it belongs in),
    /// and returns `v1.<nonce>.<ciphertext>` in base64url.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .expect("AES-GCM sealing cannot fail for in-memory data");
        format!("v1.{}.{}", b64url(&nonce), b64url(&data))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(nonce), Some(data), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let nonce: [u8; 12] = b64url_decode(nonce).and_then(|n| n.try_into().ok()).ok_or(SealError::Malformed)?;
        let mut data = b64url_decode(data).ok_or(SealError::Malformed)?;
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_context() {
        let k = KeyEncryptionKey::from_secret("correct horse");
        let sealed = k.seal("signing_keys:1", b"secret");
        assert_eq!(k.open("signing_keys:1", &sealed).unwrap(), b"secret");
        assert!(matches!(k.open("signing_keys:2", &sealed), Err(SealError::WrongKey)));
        let other = KeyEncryptionKey::from_secret("battery staple");
        assert!(matches!(other.open("signing_keys:1", &sealed), Err(SealError::WrongKey)));
        assert!(matches!(k.open("x", "garbage"), Err(SealError::Malformed)));
    }
}
