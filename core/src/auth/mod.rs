//! Auth: who a request runs as. `Authorization: Bearer <jwt>` is verified against the keys of
//! `pg_rest.jwt_secret`, its time and audience claims are checked, and the role is read from
//! the claims at `pg_rest.jwt_role_claim_key`; no token (or no role claim) means
//! `pg_rest.anon_role`. Authorization itself is the database's: GRANTs and row level security.
//!
//! PostgREST v16's rules and messages, checked in its order (empty token, parts, header,
//! key choice, signature, claims object; then exp, nbf, iat, aud with 30 s of clock skew).
//! Verified claims are cached per worker ([`JwtCache`]), so a repeated token costs no
//! signature check; the time claims are checked again on every use.

pub mod jspath;
pub mod keys;

use crate::error::ApiError;
use crate::lru::Lru;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use jspath::JsPath;
use keys::Keys;
use serde_json::{Map, Value};
use std::str::FromStr;

/// Clock skew allowed for `exp`, `nbf` and `iat`, in seconds (PostgREST's).
pub const CLOCK_SKEW_SECONDS: i64 = 30;
/// Verified tokens a worker remembers (PostgREST's default jwt-cache-max-entries).
pub const JWT_CACHE_ENTRIES: usize = 1000;

/// What authentication needs from the settings.
pub struct AuthConfig {
    /// None when `pg_rest.jwt_secret` is empty (or unusable): a token is then PGRST300.
    pub keys: Option<Keys>,
    pub audience: Option<String>,
    pub role_claim: JsPath,
    pub anon_role: Option<String>,
}

/// The outcome: the role to run as and what SQL may read of the claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub role: String,
    /// `request.jwt.claims`: the claims as JSON, `role` set to the role used (PostgREST's).
    pub claims: String,
    /// The role is not the anonymous role: 42501 is then 403, not 401.
    pub authenticated: bool,
}

/// A verified token's outcome and the claims that expire.
struct Verified {
    outcome: Authenticated,
    times: Times,
}

/// Verified tokens, by token text; bounded, least recently used evicted. Emptied by the
/// caller when the auth settings change (so is the anonymous outcome kept beside them).
pub struct JwtCache {
    entries: Lru<Verified>,
    /// The outcome of a request without a token, made at the first such request.
    anonymous: Option<Authenticated>,
}

impl Default for JwtCache {
    fn default() -> Self {
        JwtCache {
            entries: Lru::new(JWT_CACHE_ENTRIES),
            anonymous: None,
        }
    }
}

impl JwtCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Authenticates a request from its `Authorization` header at time `now` (Unix seconds).
/// The outcome is the cache's: a request with a token verified before, or without one, costs
/// a lookup and no copies.
pub fn authenticate<'c>(
    authorization: Option<&str>,
    config: &AuthConfig,
    cache: &'c mut JwtCache,
    now: i64,
) -> Result<&'c Authenticated, ApiError> {
    let Some(token) = authorization.and_then(bearer_token) else {
        let anonymous = match cache.anonymous.take() {
            Some(kept) => kept,
            None => outcome(&Map::new(), config)?,
        };
        return Ok(cache.anonymous.insert(anonymous));
    };
    let Some(keys) = &config.keys else {
        return Err(ApiError::jwt_secret_missing());
    };
    let hit = cache.entries.get(token).map(|hit| hit.times.check(now));
    match hit {
        Some(Err(e)) => {
            cache.entries.remove(token);
            return Err(e);
        }
        Some(Ok(())) => {}
        None => {
            let claims = verify(token, keys)?;
            let times = Times::read(&claims)?;
            times.check(now)?;
            check_audience(&claims, config.audience.as_deref())?;
            let outcome = outcome(&claims, config)?;
            cache
                .entries
                .insert(token.to_string(), Verified { outcome, times });
        }
    }
    cache
        .entries
        .get(token)
        .map(|v| &v.outcome)
        .ok_or_else(|| ApiError::internal("a verified token left the cache"))
}

/// The token of `Bearer <token>` (scheme case-insensitive); None for no or another scheme.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start())
}

/// Checks the token's form and signature; returns its claims object.
fn verify(token: &str, keys: &Keys) -> Result<Map<String, Value>, ApiError> {
    if token.is_empty() {
        return Err(ApiError::jwt_decode(
            "Empty JWT is sent in Authorization header",
            None,
        ));
    }
    let parts = token.split('.').count();
    if parts != 3 {
        return Err(ApiError::jwt_decode(
            &format!("Expected 3 parts in JWT; got {parts}"),
            None,
        ));
    }
    let (alg, kid) = read_header(token)?;
    let candidates: Vec<_> = keys
        .keys
        .iter()
        .filter(|k| k.accepts(alg, kid.as_deref()))
        .collect();
    if candidates.is_empty() {
        return Err(ApiError::jwt_decode(
            "No suitable key or wrong key type",
            Some("No suitable key was found to decode the JWT"),
        ));
    }
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    for key in candidates {
        match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
            Ok(data) => {
                return match data.claims {
                    Value::Object(claims) => Ok(claims),
                    _ => Err(ApiError::jwt_claims("Parsing claims failed")),
                }
            }
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => continue,
                jsonwebtoken::errors::ErrorKind::Json(_) => {
                    return Err(ApiError::jwt_claims("Parsing claims failed"))
                }
                _ => return Err(crypto_failed()),
            },
        }
    }
    Err(ApiError::jwt_decode(
        "No suitable key or wrong key type",
        Some("None of the keys was able to decode the JWT"),
    ))
}

fn crypto_failed() -> ApiError {
    ApiError::jwt_decode("JWT cryptographic operation failed", None)
}

/// The header's `alg` and `kid`. `none` is refused outright; anything unreadable is
/// PostgREST's "cryptographic operation failed".
fn read_header(token: &str) -> Result<(Algorithm, Option<String>), ApiError> {
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| crypto_failed())?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| crypto_failed())?;
    let header = header.as_object().ok_or_else(crypto_failed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(crypto_failed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(ApiError::jwt_decode(
            "Wrong or unsupported encoding algorithm",
            Some("JWT is unsecured but expected 'alg' was not 'none'"),
        ));
    }
    let alg = Algorithm::from_str(alg).map_err(|_| crypto_failed())?;
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(crypto_failed()),
    };
    Ok((alg, kid))
}

/// The time claims, read once per token.
#[derive(Debug, Clone, Copy, Default)]
struct Times {
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
}

impl Times {
    fn read(claims: &Map<String, Value>) -> Result<Times, ApiError> {
        Ok(Times {
            exp: number_claim(claims, "exp")?,
            nbf: number_claim(claims, "nbf")?,
            iat: number_claim(claims, "iat")?,
        })
    }

    /// PostgREST's checks, in its order, with the clock skew allowance.
    fn check(&self, now: i64) -> Result<(), ApiError> {
        if self.exp.is_some_and(|exp| exp < now - CLOCK_SKEW_SECONDS) {
            return Err(ApiError::jwt_claims("JWT expired"));
        }
        if self.nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW_SECONDS) {
            return Err(ApiError::jwt_claims("JWT not yet valid"));
        }
        if self.iat.is_some_and(|iat| iat > now + CLOCK_SKEW_SECONDS) {
            return Err(ApiError::jwt_claims("JWT issued at future"));
        }
        Ok(())
    }
}

/// A NumericDate claim: absent or null → None; not a number → PGRST303. A number that is not
/// an integer in range counts as 0, as in PostgREST.
fn number_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.as_i64().unwrap_or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f <= i64::MAX as f64)
                .map_or(0, |f| f as i64)
        }))),
        Some(_) => Err(ApiError::jwt_claims(&format!(
            "The JWT '{name}' claim must be a number"
        ))),
    }
}

/// `aud` must be a string or an array of strings (checked even without `pg_rest.jwt_aud`);
/// with `pg_rest.jwt_aud`, a string must equal it and an array must contain it (or be empty).
fn check_audience(claims: &Map<String, Value>, expected: Option<&str>) -> Result<(), ApiError> {
    let type_error =
        || ApiError::jwt_claims("The JWT 'aud' claim must be a string or an array of strings");
    let matches = match claims.get("aud") {
        None | Some(Value::Null) => true,
        Some(Value::String(aud)) => expected.is_none_or(|e| e == aud),
        Some(Value::Array(items)) => {
            let auds: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let auds = auds.ok_or_else(type_error)?;
            auds.is_empty() || expected.is_none_or(|e| auds.contains(&e))
        }
        Some(_) => return Err(type_error()),
    };
    if matches {
        Ok(())
    } else {
        Err(ApiError::jwt_claims("JWT not in audience"))
    }
}

/// The role at the claim path (its JSON text when not a string), else the anonymous role.
fn outcome(claims: &Map<String, Value>, config: &AuthConfig) -> Result<Authenticated, ApiError> {
    let object = Value::Object(claims.clone());
    let role = match config.role_claim.find(&object) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => config
            .anon_role
            .clone()
            .ok_or_else(ApiError::anonymous_disabled)?,
    };
    let mut with_role = claims.clone();
    with_role.insert("role".to_string(), Value::String(role.clone()));
    Ok(Authenticated {
        authenticated: config.anon_role.as_deref() != Some(role.as_str()),
        claims: Value::Object(with_role).to_string(),
        role,
    })
}

#[cfg(test)]
mod tests;
