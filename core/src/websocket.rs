//! The WebSocket opening handshake (RFC 6455 §4.2), as a pure function of the request: the
//! 101 response that switches the connection, or the error that refuses it. The frames that
//! follow are `tungstenite`'s, driven by the connection.

use crate::error::ApiError;
use crate::request::Request;
use crate::response::Response;

/// The protocol version pg_rest speaks (the only one RFC 6455 defines).
const VERSION: &str = "13";

/// Whether the client asks to switch this request's connection to WebSocket.
pub fn wants_upgrade(request: &Request) -> bool {
    request
        .header("upgrade")
        .is_some_and(|v| has_token(v, "websocket"))
}

/// The 101 response accepting `request`'s upgrade, or why it cannot be: 405 for a method
/// other than GET, 426 (naming the version pg_rest speaks) for another version, 400 for a
/// malformed handshake.
pub fn accept(request: &Request) -> Result<Response, ApiError> {
    if request.method != "GET" {
        return Err(ApiError::protocol(
            405,
            "A WebSocket upgrade must be a GET request",
        ));
    }
    let connection_upgrade = request
        .headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .any(|(_, v)| has_token(v, "upgrade"));
    if !connection_upgrade {
        return Err(ApiError::protocol(
            400,
            "A WebSocket upgrade needs the header Connection: Upgrade",
        ));
    }
    if request.header("sec-websocket-version").map(str::trim) != Some(VERSION) {
        let mut err = ApiError::protocol(426, "Only WebSocket version 13 is supported");
        err.hint = Some("Send Sec-WebSocket-Version: 13".to_string());
        return Err(err);
    }
    let key = request
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|k| valid_key(k))
        .ok_or_else(|| {
            ApiError::protocol(
                400,
                "A WebSocket upgrade needs a Sec-WebSocket-Key of 16 base64-encoded bytes",
            )
        })?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Response {
        status: 101,
        headers: vec![
            ("Upgrade", "websocket".to_string()),
            ("Connection", "Upgrade".to_string()),
            ("Sec-WebSocket-Accept", accept),
        ],
        ..Default::default()
    })
}

/// RFC 6455: the key is 16 random bytes in base64, so 24 characters ending in "==".
fn valid_key(key: &str) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|b| b.len() == 16)
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(extra: &[(&str, &str)]) -> Request {
        let mut headers: Vec<(String, String)> = [
            ("host", "localhost"),
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        for (n, v) in extra {
            headers.retain(|(h, _)| h != n);
            headers.push((n.to_string(), v.to_string()));
        }
        Request {
            method: "GET".into(),
            target: "/realtime".into(),
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn accepts_rfc_6455s_sample_handshake() {
        let r = upgrade(&[]);
        assert!(wants_upgrade(&r));
        let response = accept(&r).expect("accepted");
        assert_eq!(response.status, 101);
        // The accept value of RFC 6455 §1.3's example.
        assert!(response.headers.contains(&(
            "Sec-WebSocket-Accept",
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
        )));
    }

    #[test]
    fn refuses_bad_handshakes_with_their_status() {
        let status = |r: &Request| accept(r).map(|_| 0).unwrap_or_else(|e| e.status);
        assert_eq!(status(&upgrade(&[("sec-websocket-version", "8")])), 426);
        assert_eq!(status(&upgrade(&[("sec-websocket-key", "short")])), 400);
        assert_eq!(status(&upgrade(&[("connection", "keep-alive")])), 400);
        let mut post = upgrade(&[]);
        post.method = "POST".into();
        assert_eq!(status(&post), 405);
    }

    #[test]
    fn an_ordinary_request_does_not_ask_for_an_upgrade() {
        let mut r = upgrade(&[]);
        r.headers.retain(|(n, _)| n != "upgrade");
        assert!(!wants_upgrade(&r));
        assert!(!wants_upgrade(&upgrade(&[("upgrade", "h2c")])));
    }
}
