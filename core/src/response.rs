//! Response: status, headers and body for a result or an error, independent of the protocol
//! that will carry them (HTTP/1.1 now; HTTP/2 and friends encode the same value).

use crate::error::ApiError;

pub const JSON: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// A read's answer: `count` rows from row `offset` on, already serialized by PostgreSQL into
/// `body`.
pub fn read_response(offset: u64, count: i64, body: Vec<u8>) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("Content-Type", JSON.to_string()),
            ("Content-Range", content_range(offset as i64, count)),
        ],
        body,
    }
}

pub fn error_response(err: &ApiError) -> Response {
    let mut headers = vec![("Content-Type", JSON.to_string())];
    if let Some(challenge) = err.www_authenticate() {
        headers.push(("WWW-Authenticate", challenge));
    }
    Response {
        status: err.status,
        headers,
        body: err.to_json().into_bytes(),
    }
}

/// PostgREST's `Content-Range` for rows `offset..offset+count` of an uncounted total.
fn content_range(offset: i64, count: i64) -> String {
    if count <= 0 {
        "*/*".to_string()
    } else {
        format!("{}-{}/*", offset, offset + count - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn read_has_json_type_and_range() {
        let r = read_response(0, 5, b"[1,2,3,4,5]".to_vec());
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "Content-Type"), Some(JSON));
        assert_eq!(header(&r, "Content-Range"), Some("0-4/*"));
        assert_eq!(r.body, b"[1,2,3,4,5]");
    }

    #[test]
    fn empty_read_range_is_star() {
        assert_eq!(
            header(&read_response(0, 0, b"[]".to_vec()), "Content-Range"),
            Some("*/*")
        );
        assert_eq!(
            header(&read_response(0, 1, b"[1]".to_vec()), "Content-Range"),
            Some("0-0/*")
        );
    }

    #[test]
    fn a_page_starts_at_its_offset() {
        assert_eq!(
            header(&read_response(2, 3, b"[]".to_vec()), "Content-Range"),
            Some("2-4/*")
        );
    }

    #[test]
    fn error_carries_status_and_json() {
        let r = error_response(&ApiError::anonymous_disabled());
        assert_eq!(r.status, 401);
        assert!(String::from_utf8(r.body).unwrap().contains("PGRST302"));
    }
}
