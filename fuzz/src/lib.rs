//! What the fuzz targets share: a fixed partner with a fixed registered key, a fixed clock, and
//! the seed step that writes valid tokens for the JWS targets.
//!
//! The key in `keys/fuzz-partner.pk8` is a throwaway RSA-2048 key made for fuzzing
//! (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform DER`, then
//! `openssl pkcs8 -topk8 -nocrypt -inform DER -outform DER`); it is
//! registered nowhere. RS512 signatures (PKCS#1 v1.5) are deterministic, so the seeds it signs
//! are the same on every run and can be committed.

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA512, RSA_PKCS1_SHA512};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use citizen_id::store::partners::PartnerRecord;
use serde_json::{Value, json};

/// The fixed "now" of every check (unix seconds), so that seeds stay in date.
pub const NOW: i64 = 1_700_000_000;
/// The partner's client id.
pub const CLIENT_ID: &str = "fuzz-rp";
/// The token endpoint URL the client assertion must name in `aud`.
pub const TOKEN_ENDPOINT: &str = "https://id.example/token";
/// The issuer identifier, which `aud` may name instead of the token endpoint.
pub const ISSUER: &str = "https://id.example";
/// The `kid` the partner's key is registered under.
pub const KID: &str = "fuzz-k1";

pub static KEY: LazyLock<KeyPair> =
    LazyLock::new(|| KeyPair::from_pkcs8(include_bytes!("../keys/fuzz-partner.pk8")).expect("the fuzzing key is PKCS#8 RSA"));

/// The partner, as the registry would return it: one RSA key under [`KID`].
pub static PARTNER: LazyLock<PartnerRecord> = LazyLock::new(|| {
    let c = PublicKeyComponents::<Vec<u8>>::from(KEY.public_key());
    let jwk = json!({ "kty": "RSA", "kid": KID, "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e) });
    serde_json::from_value(json!({
        "client_id": CLIENT_ID, "name": "Fuzz RP", "redirect_uris": ["https://rp.example/cb"],
        "public_keys": [jwk], "scopes": ["openid"], "vectors": ["P9.Cp.Cd"],
        "refresh_tokens": false, "im1": false, "created_at": 0, "updated_at": 0,
    }))
    .expect("a partner record")
});

/// `header.claims` base64url-encoded and signed RS512 with the fixed key: a compact JWS.
pub fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let mut sig = vec![0u8; KEY.public_modulus_len()];
    KEY.sign(&RSA_PKCS1_SHA512, &SystemRandom::new(), input.as_bytes(), &mut sig).expect("RSA signing");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig))
}

/// An independent reading of a compact JWS the parser accepted: the header and claims as JSON,
/// and whether the signature verifies with the fixed key (straight through aws-lc, not through
/// the code under test).
pub fn independent_read(token: &str) -> (Value, Value, bool) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "an accepted token has three parts");
    let json = |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON") };
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url signature");
    let signed_input = &token[..parts[0].len() + 1 + parts[1].len()];
    let c = PublicKeyComponents::<Vec<u8>>::from(KEY.public_key());
    let key = PublicKeyComponents { n: c.n.as_slice(), e: c.e.as_slice() };
    let ok = key.verify(&RSA_PKCS1_2048_8192_SHA512, signed_input.as_bytes(), &sig).is_ok();
    (json(parts[0]), json(parts[1]), ok)
}

/// Input of the JWS targets. The first byte picks the form:
/// - `b'T'`: the rest is the token text as a partner would send it (base64url, dots, signature);
/// - `b'S'`: the rest is `header JSON \0 claims JSON`, which the target signs with the fixed
///   key, so the fuzzer can reach everything after the signature check with claims of its own;
/// - anything else: the rest is `header JSON \0 claims JSON \0 signature bytes`, encoded but not
///   signed.
pub fn token_of(data: &[u8]) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    match mode {
        b'T' => std::str::from_utf8(rest).ok().map(str::to_owned),
        b'S' => {
            let mut parts = rest.splitn(2, |b| *b == 0);
            let (header, claims) = (parts.next()?, parts.next()?);
            Some(sign(header, claims))
        }
        _ => {
            let mut parts = rest.splitn(3, |b| *b == 0);
            let (header, claims, sig) = (parts.next()?, parts.next()?, parts.next().unwrap_or_default());
            Some(format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims), URL_SAFE_NO_PAD.encode(sig)))
        }
    }
}

/// The seed step: when `CITIZEN_ID_FUZZ_SEEDS` names a directory, writes `seeds` there (as
/// `seed-N`) and exits. Called from each JWS target's `init`.
pub fn write_seeds_if_asked(seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os("CITIZEN_ID_FUZZ_SEEDS") else { return };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed).expect("seed written");
    }
    eprintln!("wrote {} seeds to {}", seeds.len(), dir.display());
    std::process::exit(0);
}

/// The seeds of a JWS target: a valid token in each of the three input forms, and a few
/// near misses, from `header` and `claims`.
pub fn jws_seeds(header: &Value, claims: &[Value]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in claims {
        let (h, c) = (header.to_string(), c.to_string());
        out.push([b"T".as_slice(), sign(h.as_bytes(), c.as_bytes()).as_bytes()].concat());
        out.push([b"S".as_slice(), h.as_bytes(), b"\0", c.as_bytes()].concat());
        out.push([b"U".as_slice(), h.as_bytes(), b"\0", c.as_bytes(), b"\0", b"sig"].concat());
    }
    out
}
