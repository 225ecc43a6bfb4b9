//! Response: status, headers and body for a result or an error, independent of the protocol
//! that will carry them (HTTP/1.1 now; HTTP/2 and friends encode the same value).

use crate::api_request::MediaType;
use crate::error::ApiError;

pub const JSON: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What a read's statement returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// The first row's position in the whole result.
    pub offset: u64,
    /// Rows in this page.
    pub rows: i64,
    /// All rows, when `Prefer: count=` asked for them.
    pub total: Option<i64>,
    /// Serialized by PostgreSQL in `media`.
    pub body: Vec<u8>,
    pub media: MediaType,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", JSON.to_string())],
            body,
        }
    }
}

/// A read's answer: status (200, 206 for part of a counted whole), `Content-Range`, the body. A singular response needs exactly one row (406 PGRST116); an offset past a
/// counted end is 416 PGRST103.
pub fn read_response(r: &ReadResult) -> Result<Response, ApiError> {
    if matches!(r.media, MediaType::Object { .. }) && r.rows != 1 {
        return Err(ApiError::not_singular(r.rows));
    }
    if let Some(total) = r.total {
        if r.rows == 0 && r.offset > 0 && r.offset as i64 >= total {
            let mut e = Response::from(&ApiError::range_not_satisfiable(&format!(
                "An offset of {} was requested, but there are only {total} rows.",
                r.offset
            )));
            e.headers.push(("Content-Range", format!("*/{total}")));
            return Ok(e);
        }
    }
    let partial = r.total.is_some_and(|total| r.offset > 0 || r.rows < total);
    Ok(Response {
        status: if partial { 206 } else { 200 },
        headers: vec![
            ("Content-Type", r.media.content_type().to_string()),
            (
                "Content-Range",
                content_range(r.offset as i64, r.rows, r.total),
            ),
        ],
        // HEAD keeps the body here: HTTP/1.1 sends its length and drops it.
        body: r.body.clone(),
    })
}

impl From<&ApiError> for Response {
    fn from(e: &ApiError) -> Response {
        error_response(e)
    }
}

pub fn error_response(err: &ApiError) -> Response {
    let mut headers = vec![
        ("Content-Type", JSON.to_string()),
        ("Proxy-Status", format!("PostgREST; error={}", err.code)),
    ];
    if let Some(challenge) = err.www_authenticate() {
        headers.push(("WWW-Authenticate", challenge));
    }
    Response {
        status: err.status,
        headers,
        body: err.to_json().into_bytes(),
    }
}

/// PostgREST's `Content-Range` for rows `offset..offset+count` of `total` (`*` when not
/// counted).
fn content_range(offset: i64, count: i64, total: Option<i64>) -> String {
    let total = total.map_or("*".to_string(), |t| t.to_string());
    if count <= 0 {
        format!("*/{total}")
    } else {
        format!("{}-{}/{total}", offset, offset + count - 1)
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

    fn result(offset: u64, rows: i64, total: Option<i64>) -> ReadResult {
        ReadResult {
            offset,
            rows,
            total,
            body: b"[1]".to_vec(),
            media: MediaType::Json,
        }
    }

    fn answer(r: &ReadResult) -> Response {
        read_response(r).unwrap()
    }

    #[test]
    fn read_has_json_type_and_range() {
        let r = answer(&result(0, 5, None));
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "Content-Type"), Some(JSON));
        assert_eq!(header(&r, "Content-Range"), Some("0-4/*"));
        assert_eq!(r.body, b"[1]");
    }

    #[test]
    fn ranges_empty_pages_and_counts() {
        assert_eq!(
            header(&answer(&result(0, 0, None)), "Content-Range"),
            Some("*/*")
        );
        assert_eq!(
            header(&answer(&result(2, 3, None)), "Content-Range"),
            Some("2-4/*")
        );
        let whole = answer(&result(0, 3, Some(3)));
        assert_eq!(
            (whole.status, header(&whole, "Content-Range")),
            (200, Some("0-2/3"))
        );
        let part = answer(&result(1, 2, Some(3)));
        assert_eq!(
            (part.status, header(&part, "Content-Range")),
            (206, Some("1-2/3"))
        );
        let empty = answer(&result(0, 0, Some(0)));
        assert_eq!(
            (empty.status, header(&empty, "Content-Range")),
            (200, Some("*/0"))
        );
        let past = answer(&result(100, 0, Some(15)));
        assert_eq!(
            (past.status, header(&past, "Content-Range")),
            (416, Some("*/15"))
        );
    }

    #[test]
    fn singular_needs_one_row() {
        let mut r = result(0, 2, None);
        r.media = MediaType::Object {
            nulls_stripped: false,
        };
        let e = read_response(&r).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST116"));
        assert_eq!(e.details.as_deref(), Some("The result contains 2 rows"));
    }

    #[test]
    fn error_carries_status_and_json() {
        let r = error_response(&ApiError::anonymous_disabled());
        assert_eq!(r.status, 401);
        assert!(String::from_utf8(r.body).unwrap().contains("PGRST302"));
    }
}
