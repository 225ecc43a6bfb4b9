//! Response: status, headers and body for a result or an error, independent of the protocol
//! that will carry them (HTTP/1.1 now; HTTP/2 and friends encode the same value).

use crate::api_request::{Action, MediaType};
use crate::error::ApiError;
use crate::plan::media::Handler;
use crate::preferences::Return;

pub const JSON: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// A reason phrase other than the status's standard one (`RAISE SQLSTATE 'PGRST'`).
    pub reason: Option<String>,
    /// Headers whose names the database chose (`response.headers`, `RAISE … 'PGRST'`), sent
    /// after `headers`; one named like a header in `headers` replaces it.
    pub dynamic_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first fixed header with this name (as the code spells it).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A media handler's `Content-Type` in place of pg_rest's own type's.
    pub fn handled_by(mut self, handler: Option<&Handler>) -> Response {
        if let Some(h) = handler {
            for (name, value) in &mut self.headers {
                if *name == "Content-Type" {
                    value.clone_from(&h.content_type);
                }
            }
        }
        self
    }

    /// Adds a header named at run time, replacing a fixed one of the same name.
    pub fn set_dynamic_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.dynamic_headers.push((name.to_string(), value));
    }
}

/// What a statement returned (`sql::push_tail`'s columns).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Rows read, written or returned.
    pub rows: i64,
    /// All rows, when `Prefer: count=` asked for them.
    pub total: Option<i64>,
    /// Serialized by PostgreSQL; None when not asked for (`return=minimal`).
    pub body: Option<Vec<u8>>,
    /// `response.headers` and `response.status` as SQL left them.
    pub response_headers: Option<String>,
    pub response_status: Option<String>,
    /// The first written row's primary key values (a JSON array), for `Location`.
    pub location: Option<String>,
    /// Rows an upsert inserted (rather than updated).
    pub inserted: Option<i64>,
}

impl Outcome {
    /// The outcome from the columns `sql::push_tail` ends a statement with, by their 1-based
    /// position, however the row was read (SPI locally, the wire protocol when a standby
    /// forwards): `int8` reads an `int8` column, `bytes` a text one (NULL: `None`).
    pub fn from_tail<E>(
        int8: impl Fn(usize) -> Result<Option<i64>, E>,
        bytes: impl Fn(usize) -> Option<Vec<u8>>,
    ) -> Result<Outcome, E> {
        let text = |n| bytes(n).and_then(|t| String::from_utf8(t).ok());
        Ok(Outcome {
            rows: int8(1)?.unwrap_or(0),
            total: int8(2)?,
            body: bytes(3),
            response_headers: text(4),
            response_status: text(5),
            location: text(6),
            inserted: int8(7)?,
        })
    }
}

/// `response.status` and `response.headers` set by SQL, checked: PostgREST's PGRST112 and
/// PGRST111 for values it cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overrides {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
}

impl Overrides {
    pub fn read(outcome: &Outcome) -> Result<Overrides, ApiError> {
        let status = match outcome.response_status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(
                s.parse::<u16>()
                    .ok()
                    .filter(|n| (100..=599).contains(n))
                    .ok_or_else(ApiError::invalid_response_status)?,
            ),
        };
        let headers = match outcome.response_headers.as_deref().map(str::trim) {
            None | Some("") => Vec::new(),
            Some(text) => header_list(text).ok_or_else(ApiError::invalid_response_headers)?,
        };
        Ok(Overrides { status, headers })
    }

    /// Applies them: a header replaces one of the same name (`Location`, `Content-Type`).
    pub fn apply(self, r: &mut Response) {
        if let Some(s) = self.status {
            r.status = s;
        }
        for (name, value) in self.headers {
            r.set_dynamic_header(&name, value);
        }
    }
}

/// `[{"Name": "value"}, …]`: objects of one string each.
fn header_list(text: &str) -> Option<Vec<(String, String)>> {
    let serde_json::Value::Array(items) = serde_json::from_str(text).ok()? else {
        return None;
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::Object(o) if o.len() == 1 => {
                let (k, v) = o.into_iter().next()?;
                v.as_str().map(|v| (k, v.to_string()))
            }
            _ => None,
        })
        .collect()
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
            ..Default::default()
        }
    }
}

/// A read's answer: status (200, 206 for part of a counted whole), `Content-Range`, the body. A singular response needs exactly one row (406 PGRST116); an offset past a
/// counted end is 416 PGRST103.
pub fn read_response(r: ReadResult) -> Result<Response, ApiError> {
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
            ("Content-Type", r.media.content_type()),
            (
                "Content-Range",
                content_range(r.offset as i64, r.rows, r.total),
            ),
        ],
        // HEAD keeps the body here: HTTP/1.1 sends its length and drops it.
        body: r.body,
        ..Default::default()
    })
}

/// A function's one text or bytea value as the body, for `?type=` naming a media type pg_rest
/// does not produce (an HTML page, an image): `content_type` verbatim (checked when parsed),
/// an empty body for NULL.
pub fn raw_response(content_type: &str, body: Option<Vec<u8>>) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type", content_type.to_string())],
        body: body.unwrap_or_default(),
        ..Default::default()
    }
}

/// How a write is answered (PostgREST): POST 201 (an upsert that inserted nothing: 200),
/// PATCH/DELETE 204 — or 200 with the rows for `return=representation`; PUT 200/201 with the
/// rows, 204 without. `headers-only` adds `Location` (`/{relation}?pk=eq.value`).
pub struct WriteAnswer<'a> {
    pub action: Action,
    pub returns: Return,
    pub upsert: bool,
    pub media: MediaType,
    pub relation: &'a str,
    pub primary_key: &'a [String],
}

/// `o`'s body moves into the response (representation), the rest stays for the overrides.
pub fn write_response(w: &WriteAnswer, o: &mut Outcome) -> Response {
    let represent = w.returns == Return::Representation;
    let inserted_none = w.upsert && o.inserted == Some(0);
    let status = match w.action {
        Action::Insert if inserted_none => 200,
        Action::Insert => 201,
        Action::Upsert if !represent => 204,
        Action::Upsert if inserted_none => 200,
        Action::Upsert => 201,
        _ if represent => 200,
        _ => 204,
    };
    let total = o.total.map_or("*".to_string(), |t| t.to_string());
    // PostgREST: inserts and deletes give no positions, updates do.
    let range = match w.action {
        Action::Update | Action::Upsert if o.rows > 0 => format!("0-{}/{total}", o.rows - 1),
        _ => format!("*/{total}"),
    };
    let mut r = Response {
        status,
        ..Response::default()
    };
    r.headers.push(("Content-Range", range));
    if represent {
        r.headers.push(("Content-Type", w.media.content_type()));
        r.body = o.body.take().unwrap_or_else(|| b"[]".to_vec());
    }
    if w.returns == Return::HeadersOnly {
        if let Some(location) = o.location.as_deref().and_then(|l| location(w, l)) {
            r.headers.push(("Location", location));
        }
    }
    r
}

/// `/{relation}?a=eq.1&b=eq.x` from the primary key's names and a JSON array of its values.
fn location(w: &WriteAnswer, values: &str) -> Option<String> {
    let serde_json::Value::Array(values) = serde_json::from_str(values).ok()? else {
        return None;
    };
    let pairs: Vec<String> = w
        .primary_key
        .iter()
        .zip(values)
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            format!("{k}=eq.{v}")
        })
        .collect();
    Some(format!("/{}?{}", w.relation, pairs.join("&")))
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
        dynamic_headers: err
            .raised
            .as_ref()
            .map(|r| r.headers.clone())
            .unwrap_or_default(),
        reason: err.raised.as_ref().and_then(|r| r.status_text.clone()),
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
        r.header(name)
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

    fn answer(r: ReadResult) -> Response {
        read_response(r).unwrap()
    }

    #[test]
    fn read_has_json_type_and_range() {
        let r = answer(result(0, 5, None));
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "Content-Type"), Some(JSON));
        assert_eq!(header(&r, "Content-Range"), Some("0-4/*"));
        assert_eq!(r.body, b"[1]");
    }

    #[test]
    fn ranges_empty_pages_and_counts() {
        assert_eq!(
            header(&answer(result(0, 0, None)), "Content-Range"),
            Some("*/*")
        );
        assert_eq!(
            header(&answer(result(2, 3, None)), "Content-Range"),
            Some("2-4/*")
        );
        let whole = answer(result(0, 3, Some(3)));
        assert_eq!(
            (whole.status, header(&whole, "Content-Range")),
            (200, Some("0-2/3"))
        );
        let part = answer(result(1, 2, Some(3)));
        assert_eq!(
            (part.status, header(&part, "Content-Range")),
            (206, Some("1-2/3"))
        );
        let empty = answer(result(0, 0, Some(0)));
        assert_eq!(
            (empty.status, header(&empty, "Content-Range")),
            (200, Some("*/0"))
        );
        let past = answer(result(100, 0, Some(15)));
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
        let e = read_response(r).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST116"));
        assert_eq!(e.details.as_deref(), Some("The result contains 2 rows"));
    }

    #[test]
    fn raw_values_keep_their_type_and_bytes() {
        let r = raw_response("image/png", Some(vec![0x89, b'P', 0, 0xFF]));
        assert_eq!(
            (r.status, header(&r, "Content-Type")),
            (200, Some("image/png"))
        );
        assert_eq!(r.body, [0x89, b'P', 0, 0xFF]);
        assert!(raw_response("text/html", None).body.is_empty());
    }

    #[test]
    fn error_carries_status_and_json() {
        let r = error_response(&ApiError::anonymous_disabled());
        assert_eq!(r.status, 401);
        assert!(String::from_utf8(r.body).unwrap().contains("PGRST302"));
    }
}
