//! The auth stage against tokens signed at test time with keys generated at test time.

use super::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::sync::OnceLock;

const SECRET: &str = "reallyreallyreallyreallyverysafe";
const NOW: i64 = 1_700_000_000;

/// Private keys in PKCS#8 PEM and their public halves in SPKI PEM, made once per test run.
struct TestKeys {
    rsa: (String, String),
    ec: (String, String),
    ed: (String, String),
}

fn test_keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        use rsa::Generate as _;
        let rsa = rsa::PrivateKey::generate();
        let ec = <p256::SecretKey as p256::elliptic_curve::Generate>::generate();
        // Ed25519 takes any 32 random bytes: those of a fresh P-256 key will do.
        let seed = <p256::SecretKey as p256::elliptic_curve::Generate>::generate();
        let seed: [u8; 32] = seed.to_bytes().into();
        let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
        TestKeys {
            rsa: (
                rsa.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                rsa.to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap(),
            ),
            ec: (
                ec.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                ec.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
            ),
            ed: (
                ed.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                ed.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap(),
            ),
        }
    })
}

/// The Ed25519 test key as a JWK (jsonwebtoken derives JWKs from 48-byte PKCS#8 only).
fn ed_jwk() -> Jwk {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&test_keys().ed.0).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "x": x})).unwrap()
}

fn config(secret: &str) -> AuthConfig {
    AuthConfig {
        keys: Some(Keys::parse(secret, false).unwrap()),
        audience: None,
        role_claim: JsPath::parse(".role").unwrap(),
        anon_role: Some("web_anon".into()),
    }
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn hs(claims: Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        None,
        claims,
    )
}

fn auth(token: &str, config: &AuthConfig) -> Result<Authenticated, ApiError> {
    authenticate(
        Some(&format!("Bearer {token}")),
        config,
        &mut JwtCache::default(),
        NOW,
    )
    .cloned()
}

fn err(token: &str, config: &AuthConfig) -> (u16, String, String, Option<String>) {
    let e = auth(token, config).unwrap_err();
    (
        e.status,
        e.code.to_string(),
        e.message.clone(),
        e.details.clone(),
    )
}

#[test]
fn no_token_is_the_anonymous_role_with_its_claims() {
    let c = config(SECRET);
    let a = authenticate(None, &c, &mut JwtCache::default(), NOW)
        .cloned()
        .unwrap();
    assert_eq!(a.role, "web_anon");
    assert_eq!(a.claims, r#"{"role":"web_anon"}"#);
    assert!(!a.authenticated);
    // Another scheme is no token either.
    let a = authenticate(
        Some("Basic dXNlcjpwdw=="),
        &c,
        &mut JwtCache::default(),
        NOW,
    )
    .cloned()
    .unwrap();
    assert_eq!(a.role, "web_anon");
    let e = authenticate(
        None,
        &AuthConfig {
            anon_role: None,
            ..config(SECRET)
        },
        &mut JwtCache::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (401, "PGRST302"));
    assert_eq!(e.www_authenticate().as_deref(), Some("Bearer"));
}

#[test]
fn a_valid_hs256_token_gives_its_role_and_claims() {
    let token = hs(json!({"role": "web_user", "sub": "7", "exp": NOW + 60}));
    let a = auth(&token, &config(SECRET)).unwrap();
    assert_eq!(a.role, "web_user");
    assert!(a.authenticated);
    let claims: Value = serde_json::from_str(&a.claims).unwrap();
    assert_eq!(
        claims,
        json!({"role": "web_user", "sub": "7", "exp": NOW + 60})
    );
    // Scheme case-insensitive.
    let a = authenticate(
        Some(&format!("bearer {token}")),
        &config(SECRET),
        &mut JwtCache::default(),
        NOW,
    )
    .cloned()
    .unwrap();
    assert_eq!(a.role, "web_user");
}

#[test]
fn plain_secrets_verify_hs256_hs384_hs512_and_base64_secrets_decode() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t = sign(
            alg,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            None,
            json!({"role": "r"}),
        );
        assert_eq!(auth(&t, &config(SECRET)).unwrap().role, "r", "{alg:?}");
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let c = AuthConfig {
        keys: Some(Keys::parse(&b64, true).unwrap()),
        ..config(SECRET)
    };
    assert_eq!(auth(&hs(json!({"role": "r"})), &c).unwrap().role, "r");
    // URL-safe alphabet and dropped padding are accepted as in PostgREST.
    let url_safe = b64
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string();
    assert!(Keys::parse(&url_safe, true).is_ok());
    assert!(Keys::parse("not base64 at all!", true).is_err());
}

#[test]
fn short_secrets_are_refused_without_showing_them() {
    let e = Keys::parse("tooshort", false).err().unwrap();
    assert!(e.contains("at least 32"), "{e}");
    assert!(!e.contains("tooshort"));
}

#[test]
fn public_keys_as_pem_jwk_and_jwks_for_every_family() {
    let k = test_keys();
    let cases = [
        (Algorithm::RS256, &k.rsa),
        (Algorithm::RS384, &k.rsa),
        (Algorithm::RS512, &k.rsa),
        (Algorithm::PS256, &k.rsa),
        (Algorithm::PS512, &k.rsa),
        (Algorithm::ES256, &k.ec),
        (Algorithm::EdDSA, &k.ed),
    ];
    for (alg, (private, public)) in cases {
        let enc = match alg.family() {
            jsonwebtoken::AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(private.as_bytes()),
            jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(private.as_bytes()),
            _ => EncodingKey::from_ed_pem(private.as_bytes()),
        }
        .unwrap();
        let token = sign(alg, &enc, None, json!({"role": "pk"}));
        // PEM, also with its line breaks written as `\n` (as a setting must).
        assert_eq!(
            auth(&token, &config(public)).unwrap().role,
            "pk",
            "{alg:?} PEM"
        );
        let one_line = public.trim().replace('\n', "\\n");
        assert_eq!(
            auth(&token, &config(&one_line)).unwrap().role,
            "pk",
            "{alg:?} PEM \\n"
        );
        // A JWK, and a JWKS.
        let jwk = match alg {
            Algorithm::EdDSA => ed_jwk(),
            _ => Jwk::from_encoding_key(&enc, alg).unwrap(),
        };
        let jwk_text = serde_json::to_string(&jwk).unwrap();
        assert_eq!(
            auth(&token, &config(&jwk_text)).unwrap().role,
            "pk",
            "{alg:?} JWK"
        );
        let set = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
        assert_eq!(
            auth(&token, &config(&set)).unwrap().role,
            "pk",
            "{alg:?} JWKS"
        );
        // The HMAC secret does not verify it.
        let (status, code, message, _) = err(&token, &config(SECRET));
        assert_eq!((status, code.as_str()), (401, "PGRST301"));
        assert_eq!(message, "No suitable key or wrong key type");
    }
}

#[test]
fn jwks_kid_matching_and_trying_each_key() {
    let k = test_keys();
    let rsa = EncodingKey::from_rsa_pem(k.rsa.0.as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(k.ec.0.as_bytes()).unwrap();
    let mut rsa_jwk = Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap();
    rsa_jwk.common.key_id = Some("r1".into());
    let mut ec_jwk = Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap();
    ec_jwk.common.key_id = Some("e1".into());
    let set = serde_json::to_string(&JwkSet {
        keys: vec![ec_jwk, rsa_jwk],
    })
    .unwrap();
    let c = config(&set);
    // kid given: that key.
    let t = sign(Algorithm::RS256, &rsa, Some("r1"), json!({"role": "a"}));
    assert_eq!(auth(&t, &c).unwrap().role, "a");
    // No kid: each key is tried.
    let t = sign(Algorithm::ES256, &ec, None, json!({"role": "b"}));
    assert_eq!(auth(&t, &c).unwrap().role, "b");
    // An unknown kid: no suitable key.
    let t = sign(Algorithm::RS256, &rsa, Some("zz"), json!({"role": "a"}));
    let (_, code, _, details) = err(&t, &c);
    assert_eq!(code, "PGRST301");
    assert_eq!(
        details.as_deref(),
        Some("No suitable key was found to decode the JWT")
    );
}

#[test]
fn rejections_match_postgrest() {
    let c = config(SECRET);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "".into(),
            "PGRST301",
            "Empty JWT is sent in Authorization header",
        ),
        ("a.b".into(), "PGRST301", "Expected 3 parts in JWT; got 2"),
        (
            "a.b.c.d.e".into(),
            "PGRST301",
            "Expected 3 parts in JWT; got 5",
        ),
        (
            "%%%.b.c".into(),
            "PGRST301",
            "JWT cryptographic operation failed",
        ),
        (
            // {"alg":"none"} . {"role":"x"} . (no signature)
            "eyJhbGciOiJub25lIn0.eyJyb2xlIjoieCJ9.".into(),
            "PGRST301",
            "Wrong or unsupported encoding algorithm",
        ),
        (
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(b"another-secret-of-32-bytes-or-more!!").unwrap(),
                None,
                json!({"role": "x"}),
            ),
            "PGRST301",
            "No suitable key or wrong key type",
        ),
        (
            hs(json!({"role": "x", "exp": NOW - 31})),
            "PGRST303",
            "JWT expired",
        ),
        (
            hs(json!({"role": "x", "nbf": NOW + 31})),
            "PGRST303",
            "JWT not yet valid",
        ),
        (
            hs(json!({"role": "x", "iat": NOW + 31})),
            "PGRST303",
            "JWT issued at future",
        ),
        (
            hs(json!({"role": "x", "exp": "soon"})),
            "PGRST303",
            "The JWT 'exp' claim must be a number",
        ),
        (
            hs(json!({"role": "x", "aud": {"a": 1}})),
            "PGRST303",
            "The JWT 'aud' claim must be a string or an array of strings",
        ),
        (
            hs(json!({"role": "x", "aud": [1, "a"]})),
            "PGRST303",
            "The JWT 'aud' claim must be a string or an array of strings",
        ),
        (
            hs(json!(["not", "an", "object"])),
            "PGRST303",
            "Parsing claims failed",
        ),
    ];
    for (token, code, message) in cases {
        let e = auth(&token, &c).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (401, code, message),
            "{token}"
        );
        assert_eq!(
            e.www_authenticate(),
            Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{message}\""
            ))
        );
    }
    // A bad signature: every candidate key tried.
    let mut t = hs(json!({"role": "x"}));
    t.pop();
    t.push('A');
    let (_, _, _, details) = err(&t, &c);
    assert!(details.is_some());
}

#[test]
fn clock_skew_is_thirty_seconds() {
    let c = config(SECRET);
    assert!(auth(&hs(json!({"role": "x", "exp": NOW - 30})), &c).is_ok());
    assert!(auth(
        &hs(json!({"role": "x", "nbf": NOW + 30, "iat": NOW + 30})),
        &c
    )
    .is_ok());
    // A fractional exp counts as 0: expired (PostgREST's quirk).
    assert!(auth(&hs(json!({"role": "x", "exp": 1.5})), &c).is_err());
    assert!(auth(&hs(json!({"role": "x", "exp": null})), &c).is_ok());
}

#[test]
fn audience_rules() {
    let c = AuthConfig {
        audience: Some("app".into()),
        ..config(SECRET)
    };
    for ok in [json!("app"), json!(["x", "app"]), json!([]), Value::Null] {
        assert!(
            auth(&hs(json!({"role": "x", "aud": ok.clone()})), &c).is_ok(),
            "{ok}"
        );
    }
    assert!(auth(&hs(json!({"role": "x"})), &c).is_ok());
    for bad in [json!("other"), json!(""), json!(["a", "b"])] {
        let (_, code, message, _) = err(&hs(json!({"role": "x", "aud": bad})), &c);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("PGRST303", "JWT not in audience")
        );
    }
    // Without pg_rest.jwt_aud any audience is fine.
    assert!(auth(
        &hs(json!({"role": "x", "aud": "whatever"})),
        &config(SECRET)
    )
    .is_ok());
}

#[test]
fn role_claim_paths_and_fallbacks() {
    let token = hs(json!({"https://x.io/claims": {"roles": ["viewer", "app_admin"]}, "id": 1}));
    let c = AuthConfig {
        role_claim: JsPath::parse(".\"https://x.io/claims\".roles[?(@ ^== \"app_\")]").unwrap(),
        ..config(SECRET)
    };
    assert_eq!(auth(&token, &c).unwrap().role, "app_admin");
    let c = AuthConfig {
        role_claim: JsPath::parse(".\"https://x.io/claims\".roles[0]").unwrap(),
        ..config(SECRET)
    };
    assert_eq!(auth(&token, &c).unwrap().role, "viewer");
    // No role claim: the anonymous role; a non-string role: its JSON text (the database then
    // refuses it as an unknown role).
    let a = auth(&hs(json!({"id": 1})), &config(SECRET)).unwrap();
    assert_eq!((a.role.as_str(), a.authenticated), ("web_anon", false));
    assert_eq!(
        auth(&hs(json!({"role": 5})), &config(SECRET)).unwrap().role,
        "5"
    );
    // A token naming the anonymous role is anonymous.
    assert!(
        !auth(&hs(json!({"role": "web_anon"})), &config(SECRET))
            .unwrap()
            .authenticated
    );
}

#[test]
fn no_secret_is_pgrst300_for_a_token_only() {
    let c = AuthConfig {
        keys: None,
        ..config(SECRET)
    };
    let e = auth(&hs(json!({"role": "x"})), &c).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (500, "PGRST300"));
    assert_eq!(e.www_authenticate(), None);
    assert!(authenticate(None, &c, &mut JwtCache::default(), NOW).is_ok());
}

#[test]
fn the_cache_skips_verification_but_not_expiry() {
    let c = config(SECRET);
    let mut cache = JwtCache::default();
    let token = hs(json!({"role": "cached", "exp": NOW + 100}));
    let header = format!("Bearer {token}");
    assert_eq!(
        authenticate(Some(&header), &c, &mut cache, NOW)
            .unwrap()
            .role,
        "cached"
    );
    assert_eq!(cache.len(), 1);
    // A hit needs no key at all: verification is skipped.
    let keyless = AuthConfig {
        keys: Some(Keys { keys: vec![] }),
        ..config(SECRET)
    };
    assert_eq!(
        authenticate(Some(&header), &keyless, &mut cache, NOW + 50)
            .unwrap()
            .role,
        "cached"
    );
    // Past exp (and the skew) the entry is gone and the token refused.
    let e = authenticate(Some(&header), &c, &mut cache, NOW + 131).unwrap_err();
    assert_eq!(e.message, "JWT expired");
    assert!(cache.is_empty());
    // Failures are not cached.
    let bad = format!("Bearer {}", hs(json!({"role": "x", "exp": NOW - 100})));
    assert!(authenticate(Some(&bad), &c, &mut cache, NOW).is_err());
    assert!(cache.is_empty());
}

#[test]
fn the_cache_is_bounded() {
    let c = config(SECRET);
    let mut cache = JwtCache::default();
    for i in 0..JWT_CACHE_ENTRIES + 10 {
        let t = format!("Bearer {}", hs(json!({"role": "r", "n": i})));
        authenticate(Some(&t), &c, &mut cache, NOW).unwrap();
    }
    assert_eq!(cache.len(), JWT_CACHE_ENTRIES);
}
