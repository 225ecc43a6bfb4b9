//! The keys that verify tokens, read from `pg_rest.jwt_secret` (and
//! `pg_rest.jwt_secret_is_base64`). Tried in PostgREST's order: a JWKS (`{"keys": [...]}`), a
//! single JWK, then — beyond PostgREST — a PEM public key (RSA, EC or Ed25519), and last a
//! plain HMAC secret of at least 32 bytes. A plain secret verifies HS256, HS384 and HS512
//! (PostgREST: HS256 only); to restrict it, give it as a JWK with an `alg`.

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::str::FromStr;

/// Shortest plain secret accepted, in bytes (PostgREST's rule).
pub const MIN_SECRET_BYTES: usize = 32;

/// One verification key.
pub struct Key {
    pub kid: Option<String>,
    /// The only algorithm the key verifies, if it says so.
    pub alg: Option<Algorithm>,
    pub decoding: DecodingKey,
}

impl Key {
    /// Whether this key may verify a token with `alg` and `kid` (PostgREST's rules: a token
    /// with a kid only matches keys with that kid; one without a kid matches every key).
    pub fn accepts(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        let kid_ok = kid.is_none_or(|k| self.kid.as_deref() == Some(k));
        let alg_ok = self.alg.is_none_or(|a| a == alg);
        kid_ok && alg_ok && self.decoding.family() == alg.family()
    }
}

/// Every key of the configured secret, in the order they are tried.
pub struct Keys {
    pub keys: Vec<Key>,
}

impl Keys {
    /// Reads the secret. The error says why without showing the secret (it may be logged).
    pub fn parse(secret: &str, is_base64: bool) -> Result<Keys, String> {
        let bytes = if is_base64 {
            decode_base64(secret)?
        } else {
            secret.as_bytes().to_vec()
        };
        let text = std::str::from_utf8(&bytes).ok();
        if let Some(keys) = text.and_then(|t| serde_json::from_str::<JwkSet>(t).ok()) {
            return Ok(Keys {
                keys: keys.keys.iter().filter_map(from_jwk).collect(),
            });
        }
        if let Some(jwk) = text.and_then(|t| serde_json::from_str::<Jwk>(t).ok()) {
            return from_jwk(&jwk)
                .map(|k| Keys { keys: vec![k] })
                .ok_or_else(|| "the JWK is not a verification key pg_rest supports".to_string());
        }
        if let Some(pem) = text.filter(|t| t.trim_start().starts_with("-----BEGIN")) {
            // A setting cannot hold a line break (ALTER SYSTEM refuses one): `\n` stands for it.
            let pem = pem.trim().replace("\\n", "\n");
            return from_pem(pem.as_bytes()).map(|k| Keys { keys: vec![k] });
        }
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "a JWT secret must be at least {MIN_SECRET_BYTES} characters long"
            ));
        }
        Ok(Keys {
            keys: vec![Key {
                kid: None,
                alg: None,
                decoding: DecodingKey::from_secret(&bytes)
                    .map_err(|_| "the JWT secret cannot be used as an HMAC key".to_string())?,
            }],
        })
    }
}

/// PostgREST's base64 reading of a secret: URL-safe characters allowed, padding optional.
fn decode_base64(secret: &str) -> Result<Vec<u8>, String> {
    let normalized: String = secret
        .trim()
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            '.' => '=',
            c => c,
        })
        .collect();
    let unpadded = normalized.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(unpadded)
        .map_err(|_| "pg_rest.jwt_secret_is_base64 is on but the secret is not base64".to_string())
}

/// A JWK as a key, or None for one pg_rest cannot verify with (skipped, as PostgREST does).
fn from_jwk(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => return None,
        Some(a) => Some(Algorithm::from_str(&format!("{a:?}")).ok()?),
    };
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        decoding: DecodingKey::from_jwk(jwk).ok()?,
    })
}

/// A PEM public key: RSA (PKCS#1 or SPKI), EC or Ed25519.
fn from_pem(pem: &[u8]) -> Result<Key, String> {
    let decoding = DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .map_err(|_| "the PEM text is not an RSA, EC or Ed25519 public key".to_string())?;
    Ok(Key {
        kid: None,
        alg: None,
        decoding,
    })
}
