//! The token signing key ring: RS512 (the reference's only algorithm) with RSA-2048 keys.
//!
//! Keys are generated here, stored sealed (`store::keys`), and cached in memory parsed, so a
//! signature costs one RSA operation and nothing else. Every serving process re-reads the keys
//! every few seconds (`server::start`), so a rotation by the CLI or by another instance reaches it
//! without a restart. Rotation publishes the new key first and makes it the signer later
//! (`signs_from`): by then every instance serves it in JWKS, so no partner meets a `kid` it
//! cannot find. The old key signs until then, and stays in JWKS until every token it signed has
//! expired (the ID token lifetime).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA512, RSA_PKCS1_SHA512};
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock;
use crate::crypto::{KeyEncryptionKey, b64url, b64url_decode, random_token};
use crate::store::keys::SigningKeyRecord;
use crate::store::{Db, StoreResult};

struct LoadedKey {
    kid: String,
    signs_from: i64,
    /// When it stops signing (a retired key stays published, to verify what it signed).
    signs_until: Option<i64>,
    /// When it leaves JWKS.
    publish_until: Option<i64>,
    /// `None` for a retired key: it only verifies.
    signer: Option<KeyPair>,
    /// Parsed once: building the RSA key (and its Montgomery context) per verification would
    /// cost about as much again as the verification itself.
    verifier: ParsedPublicKey,
    jwk: Value,
}

/// The signing keys, shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<Vec<Arc<LoadedKey>>>>,
    /// Tokens already verified by `verify_cached`, by SHA-256 of the whole token.
    verified: Arc<Mutex<HashMap<[u8; 32], Verified>>>,
}

/// The claims of a token whose signature has been checked, and when it stops mattering.
struct Verified {
    claims: Arc<Value>,
    exp: i64,
}

/// How many verified tokens are remembered (each about 1 KiB): a partner's repeated userinfo
/// calls within a token's five minutes find theirs here.
const VERIFIED_CACHE_ENTRIES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
}

fn sealing_context(kid: &str) -> String {
    format!("signing_keys:{kid}")
}

impl KeyRing {
    /// Loads the published keys; creates the first key when there is none.
    pub async fn load(db: &Db, kek: &KeyEncryptionKey) -> anyhow::Result<KeyRing> {
        let ring = KeyRing { keys: Arc::new(RwLock::new(Vec::new())), verified: Arc::default() };
        ring.reload(db, kek).await?;
        if ring.current_kid().is_none() {
            generate_key(db, kek, clock::now_ms()).await?;
            ring.reload(db, kek).await?;
        }
        Ok(ring)
    }

    /// Re-reads keys from the database (after a rotation by the CLI or another instance); does
    /// nothing when they are as last read.
    pub async fn reload(&self, db: &Db, kek: &KeyEncryptionKey) -> anyhow::Result<()> {
        let now = clock::now_ms();
        let records = db.published_signing_keys(now).await?;
        let unchanged = {
            let keys = self.keys.read().expect("key ring lock");
            keys.len() == records.len()
                && keys.iter().zip(&records).all(|(k, r)| {
                    (k.kid.as_str(), k.signs_from, k.signs_until, k.publish_until) == (r.kid.as_str(), r.signs_from, r.retired_at, r.publish_until)
                })
        };
        if unchanged {
            return Ok(());
        }
        let mut loaded = Vec::with_capacity(records.len());
        for r in records {
            let jwk: Value = serde_json::from_str(&r.public_jwk)?;
            let verifier = components_from_jwk(&jwk)
                .and_then(|c| c.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA512).ok())
                .ok_or_else(|| anyhow::anyhow!("stored JWK {} is malformed", r.kid))?;
            let signer = if r.retired_at.is_none_or(|at| at > now) {
                let der = kek.open(&sealing_context(&r.kid), &r.sealed_private_key)?;
                Some(KeyPair::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("signing key {}: {e}", r.kid))?)
            } else {
                None
            };
            let (signs_from, signs_until, publish_until) = (r.signs_from, r.retired_at, r.publish_until);
            loaded.push(Arc::new(LoadedKey { kid: r.kid, signs_from, signs_until, publish_until, signer, verifier, jwk }));
        }
        *self.keys.write().expect("key ring lock") = loaded;
        // A key withdrawn from the ring takes its tokens' verdicts with it.
        self.verified.lock().expect("verified cache lock").clear();
        Ok(())
    }

    pub fn current_kid(&self) -> Option<String> {
        self.current().map(|k| k.kid.clone())
    }

    /// The key that signs now: the one that began signing last among those signing now (the
    /// keys are held newest first). Should none be in its window (a clock stepped back), the
    /// newest key able to sign: a token is never refused for want of a key.
    fn current(&self) -> Option<Arc<LoadedKey>> {
        let now = clock::now_ms();
        let keys = self.keys.read().expect("key ring lock");
        let can_sign = |k: &&Arc<LoadedKey>| k.signer.is_some() && k.signs_until.is_none_or(|until| until > now);
        keys.iter().filter(can_sign).find(|k| k.signs_from <= now).or_else(|| keys.iter().find(can_sign)).cloned()
    }

    /// The JWKS document: every published key's public half.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.read().expect("key ring lock").iter().map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` as a compact JWS with RS512 and the current key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let key = self.current().ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
        sign_with(key.signer.as_ref().expect("current key signs"), &key.kid, claims)
    }

    /// Verifies a token this service signed and returns its claims (no time checks: callers
    /// check `exp` and the rest).
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let (header, claims, signing_input, sig) = split_jws(token)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS512") {
            return Err(JwtError::Algorithm);
        }
        let kid = header.get("kid").and_then(Value::as_str).ok_or(JwtError::UnknownKey)?;
        let key = {
            let keys = self.keys.read().expect("key ring lock");
            keys.iter().find(|k| k.kid == kid).cloned().ok_or(JwtError::UnknownKey)?
        };
        key.verifier.verify_sig(signing_input.as_bytes(), &sig).map_err(|_| JwtError::Signature)?;
        Ok(claims)
    }

    /// `verify`, remembering the verdict for the token's lifetime: a partner calling userinfo
    /// again with the same access token skips the RSA verification and the JSON parsing (a
    /// quarter of such a request's CPU). Only a byte-identical token hits, and callers still
    /// check `exp` and revocation every time; reloading the keys forgets every verdict.
    pub fn verify_cached(&self, token: &str) -> Result<Arc<Value>, JwtError> {
        let digest: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        if let Some(hit) = self.verified.lock().expect("verified cache lock").get(&digest) {
            return Ok(hit.claims.clone());
        }
        let claims = Arc::new(self.verify(token)?);
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let now = clock::now_secs();
        if exp > now {
            let mut cache = self.verified.lock().expect("verified cache lock");
            if cache.len() >= VERIFIED_CACHE_ENTRIES {
                cache.retain(|_, v| v.exp > now);
                if cache.len() >= VERIFIED_CACHE_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(digest, Verified { claims: claims.clone(), exp });
        }
        Ok(claims)
    }
}

/// Signs `claims` as a compact RS512 JWS with `kid` (also used by the sandpit's demo partner
/// for its client assertions).
pub fn sign_with<T: Serialize>(pair: &KeyPair, kid: &str, claims: &T) -> anyhow::Result<String> {
    let header = json!({ "alg": "RS512", "typ": "JWT", "kid": kid });
    let mut input = b64url(header.to_string().as_bytes());
    input.push('.');
    input.push_str(&b64url(&serde_json::to_vec(claims)?));
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA512, &SystemRandom::new(), input.as_bytes(), &mut sig).map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
    input.push('.');
    input.push_str(&b64url(&sig));
    Ok(input)
}

/// A fresh RSA-2048 key pair as PKCS#8 DER and its public JWK (without `kid`).
pub fn generate_rsa_pkcs8() -> anyhow::Result<(Vec<u8>, Value)> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let der = pair.as_der().map_err(|_| anyhow::anyhow!("PKCS#8 export failed"))?.as_ref().to_vec();
    let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    Ok((der, json!({ "kty": "RSA", "n": b64url(&public.n), "e": b64url(&public.e) })))
}

/// Splits a compact JWS into header, claims, signing input and signature.
pub fn split_jws(token: &str) -> Result<(Value, Value, &str, Vec<u8>), JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let decode = |p: &str| -> Result<Value, JwtError> {
        let bytes = b64url_decode(p).ok_or(JwtError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    let sig = b64url_decode(s).ok_or(JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    Ok((header, claims, signing_input, sig))
}

/// `n` and `e` of an RSA JWK.
pub fn components_from_jwk(jwk: &Value) -> Option<PublicKeyComponents<Vec<u8>>> {
    if jwk.get("kty")?.as_str()? != "RSA" {
        return None;
    }
    let n = b64url_decode(jwk.get("n")?.as_str()?)?;
    let e = b64url_decode(jwk.get("e")?.as_str()?)?;
    Some(PublicKeyComponents { n, e })
}

/// Generates a new RSA-2048 signing key that signs from `signs_from` and stores it; returns its
/// `kid`.
pub async fn generate_key(db: &Db, kek: &KeyEncryptionKey, signs_from: i64) -> anyhow::Result<String> {
    // RSA key generation takes tens of milliseconds: keep it off the async workers.
    let (der, public) = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let der = pair.as_der().map_err(|_| anyhow::anyhow!("PKCS#8 export failed"))?.as_ref().to_vec();
        Ok((der, PublicKeyComponents::<Vec<u8>>::from(pair.public_key())))
    })
    .await??;
    let kid = random_token(12);
    let sealed = kek.seal(&sealing_context(&kid), &der);
    let jwk = json!({ "kty": "RSA", "use": "sig", "alg": "RS512", "kid": kid, "n": b64url(&public.n), "e": b64url(&public.e) });
    db.insert_signing_key(&SigningKeyRecord {
        kid: kid.clone(),
        sealed_private_key: sealed,
        public_jwk: jwk.to_string(),
        created_at: clock::now_ms(),
        signs_from,
        retired_at: None,
        publish_until: None,
    })
    .await?;
    Ok(kid)
}

/// Rotation: a new key is published now and signs from `publish_ahead_ms` later, when the older
/// keys stop signing; they stay published `overlap_ms` more. Returns the new `kid` and when it
/// signs from.
pub async fn rotate(db: &Db, kek: &KeyEncryptionKey, publish_ahead_ms: i64, overlap_ms: i64) -> anyhow::Result<(String, i64)> {
    let switch = clock::now_ms() + publish_ahead_ms;
    let kid = generate_key(db, kek, switch).await?;
    db.retire_signing_keys_except(&kid, switch, switch + overlap_ms).await?;
    Ok((kid, switch))
}

/// Every key still published, for `citizen-id keys list`.
pub async fn list(db: &Db) -> StoreResult<Vec<SigningKeyRecord>> {
    db.published_signing_keys(clock::now_ms()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verdicts_are_remembered_until_the_key_leaves_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display())).await.unwrap();
        let kek = KeyEncryptionKey::from_secret(&"k".repeat(40));
        let ring = KeyRing::load(&db, &kek).await.unwrap();
        let token = ring.sign(&json!({ "sub": "a", "exp": clock::now_secs() + 300 })).unwrap();
        let first = ring.verify_cached(&token).unwrap();
        assert!(Arc::ptr_eq(&first, &ring.verify_cached(&token).unwrap()), "the second call is answered from the cache");
        // A token differing in one signature byte is checked afresh, and refused.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(ring.verify_cached(std::str::from_utf8(&tampered).unwrap()).is_err());
        // A reload that finds the keys as they were keeps the verdicts.
        ring.reload(&db, &kek).await.unwrap();
        assert!(Arc::ptr_eq(&first, &ring.verify_cached(&token).unwrap()));
        // The signing key is withdrawn at once (no overlap): its tokens stop verifying, cached or not.
        rotate(&db, &kek, 0, -1).await.unwrap();
        ring.reload(&db, &kek).await.unwrap();
        assert!(matches!(ring.verify_cached(&token), Err(JwtError::UnknownKey)));
    }

    #[tokio::test]
    async fn a_rotated_key_is_published_before_it_signs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display())).await.unwrap();
        let kek = KeyEncryptionKey::from_secret(&"k".repeat(40));
        let ring = KeyRing::load(&db, &kek).await.unwrap();
        let old = ring.current_kid().unwrap();
        let (new, signs_from) = rotate(&db, &kek, 60_000, 3_600_000).await.unwrap();
        assert!(signs_from > clock::now_ms());
        ring.reload(&db, &kek).await.unwrap();
        let kids = |ring: &KeyRing| -> Vec<String> { ring.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect() };
        assert_eq!(kids(&ring), [new.clone(), old.clone()], "both published, the new one first");
        assert_eq!(ring.current_kid().as_deref(), Some(old.as_str()), "the old key signs until the new one's time");
        let token = ring.sign(&json!({ "sub": "a" })).unwrap();
        assert_eq!(split_jws(&token).unwrap().0["kid"], old.as_str());
        // Rotated again at once: the newest key signs now, and the one that never signed stays
        // published (as the first does) until its overlap ends.
        let (newest, _) = rotate(&db, &kek, 0, 3_600_000).await.unwrap();
        ring.reload(&db, &kek).await.unwrap();
        assert_eq!(ring.current_kid().as_deref(), Some(newest.as_str()));
        assert_eq!(kids(&ring).len(), 3);
    }
}
