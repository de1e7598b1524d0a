//! A software authenticator: an ES256 key, "none" attestation, and the JSON a browser would
//! send, built by hand so a test can bend any part of it (origin, user verification, user
//! handle, the challenge it answers). Rust-level twin of Chromium's virtual authenticator.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use citizen_id::crypto::{b64url, b64url_decode};
use serde_json::{Value, json};

/// Authenticator data flags (WebAuthn 6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

pub struct SoftKey {
    key: EcdsaKeyPair,
    pub cred_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    rp_id: String,
    pub counter: u32,
}

/// How the authenticator answers one ceremony.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The origin the "browser" writes into clientDataJSON.
    pub origin: String,
    /// Whether the user was verified (the UV flag).
    pub verified: bool,
}

impl Answer {
    pub fn from(origin: &str) -> Answer {
        Answer { origin: origin.to_string(), verified: true }
    }

    pub fn unverified(mut self) -> Answer {
        self.verified = false;
        self
    }
}

fn challenge(options: &Value) -> String {
    options["publicKey"]["challenge"].as_str().expect("a challenge").to_string()
}

fn client_data(kind: &str, options: &Value, origin: &str) -> Vec<u8> {
    json!({ "type": kind, "challenge": challenge(options), "origin": origin, "crossOrigin": false }).to_string().into_bytes()
}

impl SoftKey {
    /// Answers `navigator.credentials.create` options: a new key for their RP and user.
    /// Backed up and backup-eligible, like a synced passkey.
    pub fn register(options: &Value, answer: &Answer) -> (SoftKey, Value) {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp id").to_string();
        let user_handle = b64url_decode(pk["user"]["id"].as_str().expect("user id")).expect("user id is base64url");
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key");
        let cred_id = citizen_id::crypto::random_token(16).into_bytes();
        let soft = SoftKey { key, cred_id, user_handle, rp_id, counter: 0 };
        let point = soft.key.public_key().as_ref().to_vec(); // 0x04 | x | y
        let mut cose = Vec::new();
        map(5, &mut cose);
        int(1, &mut cose);
        int(2, &mut cose); // kty: EC2
        int(3, &mut cose);
        int(-7, &mut cose); // alg: ES256
        int(-1, &mut cose);
        int(1, &mut cose); // crv: P-256
        int(-2, &mut cose);
        bytes(&point[1..33], &mut cose);
        int(-3, &mut cose);
        bytes(&point[33..65], &mut cose);
        let mut auth_data = soft.auth_data(answer.verified, AT);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(soft.cred_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&soft.cred_id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = Vec::new();
        map(3, &mut attestation);
        text("fmt", &mut attestation);
        text("none", &mut attestation);
        text("attStmt", &mut attestation);
        map(0, &mut attestation);
        text("authData", &mut attestation);
        bytes(&auth_data, &mut attestation);
        let credential = json!({
            "id": b64url(&soft.cred_id),
            "rawId": b64url(&soft.cred_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(&attestation),
                "clientDataJSON": b64url(&client_data("webauthn.create", options, &answer.origin)),
            },
            "extensions": {},
        });
        (soft, credential)
    }

    /// Answers `navigator.credentials.get` options with this key (counter + 1).
    pub fn assert(&mut self, options: &Value, answer: &Answer) -> Value {
        let handle = self.user_handle.clone();
        self.assert_as(options, answer, &handle)
    }

    /// Like `assert`, but claiming `user_handle` as the account.
    pub fn assert_as(&mut self, options: &Value, answer: &Answer, user_handle: &[u8]) -> Value {
        self.counter += 1;
        let auth_data = self.auth_data(answer.verified, 0);
        let client = client_data("webauthn.get", options, &answer.origin);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).expect("sign");
        json!({
            "id": b64url(&self.cred_id),
            "rawId": b64url(&self.cred_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(&auth_data),
                "clientDataJSON": b64url(&client),
                "signature": b64url(signature.as_ref()),
                "userHandle": b64url(user_handle),
            },
            "extensions": {},
        })
    }

    pub fn id(&self) -> String {
        b64url(&self.cred_id)
    }

    fn auth_data(&self, verified: bool, extra: u8) -> Vec<u8> {
        let mut data = digest(&SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        data.push(UP | BE | BS | extra | if verified { UV } else { 0 });
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }
}

// The few CBOR items (RFC 8949) an attestation object needs.
fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..24 => out.push(m | n as u8),
        24..256 => out.extend_from_slice(&[m | 24, n as u8]),
        256..65_536 => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 { head(0, i as u64, out) } else { head(1, (-1 - i) as u64, out) }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn map(entries: u64, out: &mut Vec<u8>) {
    head(5, entries, out);
}
