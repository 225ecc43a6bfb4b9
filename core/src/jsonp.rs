//! JSONP: `?callback=fn` or `?jsonp=fn` answers a JSON body as `fn(<json>);`, a script a
//! `<script src>` tag can run. Applied at the response boundary, after everything else, so
//! error bodies are wrapped too (their status kept) and no stage before it needs to know.
//! Only JSON bodies are wrapped: CSV, a plan in text or a raw `?type=` value keep their type.

use crate::api_request::decode_text;
use crate::error::ApiError;
use crate::response::Response;

/// What a wrapped body is.
pub const CONTENT_TYPE: &str = "application/javascript; charset=utf-8";

/// The parameters naming the callback (either; the last given wins).
const PARAMS: [&str; 2] = ["callback", "jsonp"];

/// The checked callback a query string names, None without one. A scan without allocation
/// when there is none (every request passes here). A name that is not a JavaScript
/// identifier path is PGRST100: it would be script text.
pub fn callback(query: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(param) = callback_param(key) else {
            continue;
        };
        let name = decode_text(value, true)?;
        if !is_identifier_path(&name) {
            return Err(ApiError::invalid_callback(param, &name));
        }
        found = Some(name);
    }
    Ok(found)
}

/// Which callback parameter a raw key is, if any (decoded only when it is encoded; a key that
/// does not decode is the query parser's error to report).
fn callback_param(raw: &str) -> Option<&'static str> {
    let named = |key: &str| PARAMS.into_iter().find(|p| *p == key);
    if !raw.contains(['%', '+']) {
        return named(raw);
    }
    named(&decode_text(raw, true).ok()?)
}

/// `a.b.c`, `$x`, `_y`: identifiers (`[A-Za-z_$][A-Za-z0-9_$]*`) joined by single dots.
pub fn is_identifier_path(name: &str) -> bool {
    name.split('.').all(|segment| {
        let mut bytes = segment.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'$')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    })
}

/// `callback(<body>);` as `application/javascript` when the body is JSON (any `…/json` or
/// `…+json` type, as sent or as SQL set it); anything else is returned as it was.
pub fn wrap(mut r: Response, callback: &str) -> Response {
    if r.body.is_empty() || !content_type(&r).is_some_and(is_json) {
        return r;
    }
    let mut body = Vec::with_capacity(callback.len() + r.body.len() + 3);
    body.extend_from_slice(callback.as_bytes());
    body.push(b'(');
    push_script_safe(&mut body, &r.body);
    body.extend_from_slice(b");");
    r.body = body;
    r.dynamic_headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
    r.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
    r.headers.push(("Content-Type", CONTENT_TYPE.to_string()));
    // A browser must not take the script for anything else.
    r.headers
        .push(("X-Content-Type-Options", "nosniff".to_string()));
    r
}

/// The `Content-Type` the client would get: one SQL set wins over the fixed one.
fn content_type(r: &Response) -> Option<&str> {
    let sql_set = r
        .dynamic_headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    sql_set.or_else(|| {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
    })
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The JSON as it is, but U+2028 and U+2029 escaped: valid raw in JSON strings, they end a
/// line in JavaScript before ES2019, which would break the script.
fn push_script_safe(out: &mut Vec<u8>, json: &[u8]) {
    const LS: [u8; 3] = [0xE2, 0x80, 0xA8];
    const PS: [u8; 3] = [0xE2, 0x80, 0xA9];
    let mut rest = json;
    while let Some(at) = rest.windows(3).position(|w| w == LS || w == PS) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(if rest[at + 2] == 0xA8 {
            b"\\u2028"
        } else {
            b"\\u2029"
        });
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{error_response, JSON};

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.header(name)
    }

    fn with_type(content_type: &str, body: &[u8]) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn identifier_paths() {
        for ok in ["fn", "a.b.c", "$x", "_y", "jQuery123_456", "$.x9", "A$_"] {
            assert!(is_identifier_path(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "1a",
            "a-b",
            "a b",
            "f()",
            "a'b",
            "a\"b",
            "<script>",
            "a;b",
            "a[0]",
            "é",
            "alert(1)//",
        ] {
            assert!(!is_identifier_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_callback_parameters() {
        assert_eq!(callback(""), Ok(None));
        assert_eq!(callback("id=eq.1&select=id"), Ok(None));
        assert_eq!(
            callback("id=eq.1&callback=cb").unwrap().as_deref(),
            Some("cb")
        );
        assert_eq!(callback("jsonp=a.b").unwrap().as_deref(), Some("a.b"));
        assert_eq!(callback("%63allback=%24x").unwrap().as_deref(), Some("$x"));
        assert_eq!(
            callback("callback=a&jsonp=b").unwrap().as_deref(),
            Some("b")
        );
        // Embedded or prefixed keys are other parameters.
        assert_eq!(callback("x.callback=a&callbacks=b"), Ok(None));
    }

    #[test]
    fn bad_callbacks_are_pgrst100() {
        for query in [
            "callback=",
            "callback",
            "jsonp=alert(1)",
            "callback=%3Cscript%3E",
            "callback=a.",
            "callback=%22x%22",
            "callback=ok&jsonp=no%20no",
        ] {
            let e = callback(query).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"), "{query}");
        }
        let e = callback("jsonp=f()").unwrap_err();
        assert_eq!(e.message, "\"jsonp\" must be a JavaScript identifier path");
        assert!(e.details.unwrap().starts_with("Got \"f()\""));
        assert_eq!(callback("callback=a%00").unwrap_err().code, "22021");
    }

    #[test]
    fn json_bodies_are_wrapped_keeping_status_and_headers() {
        let mut r = with_type(JSON, br#"[{"id":1}]"#);
        r.status = 206;
        r.headers.push(("Content-Range", "0-0/2".to_string()));
        let w = wrap(r, "app.cb");
        assert_eq!(w.status, 206);
        assert_eq!(w.body, br#"app.cb([{"id":1}]);"#);
        assert_eq!(header(&w, "Content-Type"), Some(CONTENT_TYPE));
        assert_eq!(header(&w, "Content-Range"), Some("0-0/2"));
        assert_eq!(header(&w, "X-Content-Type-Options"), Some("nosniff"));
        let object = with_type("application/vnd.pgrst.object+json; charset=utf-8", b"{}");
        assert_eq!(wrap(object, "f").body, b"f({});");
    }

    #[test]
    fn errors_are_wrapped_too() {
        let e = error_response(&ApiError::invalid_path());
        let json = e.body.clone();
        let w = wrap(e, "cb");
        assert_eq!(w.status, 404);
        assert_eq!(w.body, [b"cb(", &json[..], b");"].concat());
        assert_eq!(header(&w, "Content-Type"), Some(CONTENT_TYPE));
    }

    #[test]
    fn other_bodies_are_left_alone() {
        for r in [
            with_type("text/csv; charset=utf-8", b"id\n1"),
            with_type(
                "application/vnd.pgrst.plan+text; charset=utf-8",
                b"Seq Scan",
            ),
            with_type("text/html", b"<p>hi</p>"),
            with_type(JSON, b""),
            Response {
                status: 204,
                ..Default::default()
            },
        ] {
            assert_eq!(wrap(r.clone(), "cb"), r);
        }
    }

    #[test]
    fn a_content_type_set_by_sql_decides() {
        let mut r = with_type(JSON, b"[1]");
        r.set_dynamic_header("Content-Type", "text/plain".to_string());
        assert_eq!(wrap(r.clone(), "cb"), r);
        let mut r = with_type("text/plain", b"[1]");
        r.dynamic_headers.push((
            "content-type".to_string(),
            "application/geo+json".to_string(),
        ));
        let w = wrap(r, "cb");
        assert_eq!(w.body, b"cb([1]);");
        assert!(w.dynamic_headers.is_empty());
        assert_eq!(header(&w, "Content-Type"), Some(CONTENT_TYPE));
    }

    #[test]
    fn line_separators_are_escaped() {
        let w = wrap(
            with_type(JSON, "[\"a\u{2028}b\u{2029}c€\"]".as_bytes()),
            "f",
        );
        assert_eq!(
            String::from_utf8(w.body).unwrap(),
            "f([\"a\\u2028b\\u2029c€\"]);"
        );
    }
}
