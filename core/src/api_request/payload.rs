//! Request bodies of writes and calls: JSON (an object or an array of objects with the same
//! keys), CSV (`text/csv`, a header row) and `application/x-www-form-urlencoded`, all turned
//! into one JSON text that PostgreSQL reads with `json_populate_recordset`. The keys decide the
//! columns (or arguments), so they are read here; values are never looked at.

use crate::error::ApiError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The body as a JSON text: an object, or an array of objects.
    pub json: String,
    /// The keys, in the first object's order (all objects have the same set).
    pub keys: Vec<String>,
    /// An array was sent (a bulk insert, or a call once per element).
    pub array: bool,
    /// Objects in the body.
    pub rows: usize,
    /// Every object has the same keys (required unless `columns=` names them).
    pub uniform: bool,
    /// A call's body sent as it is (`json` holds it, bytes in base64): the argument of the
    /// function's one unnamed parameter of this kind.
    pub raw: Option<RawBody>,
}

/// The bodies PostgREST passes whole to a function's one unnamed parameter of their type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawBody {
    /// `text/plain` → `text`.
    Text,
    /// `text/xml` → `xml`.
    Xml,
    /// `application/octet-stream` → `bytea`.
    Bytes,
}

impl RawBody {
    pub fn parameter_type(self) -> &'static str {
        match self {
            RawBody::Text => "text",
            RawBody::Xml => "xml",
            RawBody::Bytes => "bytea",
        }
    }
}

/// Reads a body of `content_type` (None: JSON); a `call` also takes raw bodies.
pub fn parse(body: &[u8], content_type: Option<&str>, call: bool) -> Result<Payload, ApiError> {
    let essence = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("text/csv") => csv(body),
        Some("application/x-www-form-urlencoded") => form(body),
        Some("text/plain") if call => raw(body, RawBody::Text),
        Some("text/xml") if call => raw(body, RawBody::Xml),
        Some("application/octet-stream") if call => raw(body, RawBody::Bytes),
        _ => json(body),
    }
}

/// A raw body, as the text of a bind parameter: bytes in base64 (a text parameter cannot
/// hold every byte), text as it is (it must be UTF-8, the database's encoding).
fn raw(body: &[u8], kind: RawBody) -> Result<Payload, ApiError> {
    use base64::Engine;
    let text = match kind {
        RawBody::Bytes => base64::engine::general_purpose::STANDARD.encode(body),
        RawBody::Text | RawBody::Xml => std::str::from_utf8(body)
            .map_err(|_| ApiError::invalid_body("The body is not valid UTF-8"))?
            .to_string(),
    };
    Ok(Payload {
        json: text,
        keys: Vec::new(),
        array: false,
        rows: 1,
        uniform: true,
        raw: Some(kind),
    })
}

fn json(body: &[u8]) -> Result<Payload, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::invalid_body("Empty or invalid json"))?;
    // An empty body is an empty object (PostgREST: insert the defaults, call without
    // arguments).
    if text.trim().is_empty() {
        return Ok(Payload {
            json: "{}".into(),
            keys: Vec::new(),
            array: false,
            rows: 1,
            uniform: true,
            raw: None,
        });
    }
    let value: Value =
        serde_json::from_str(text).map_err(|_| ApiError::invalid_body("Empty or invalid json"))?;
    match &value {
        Value::Object(o) => Ok(Payload {
            keys: o.keys().cloned().collect(),
            json: text.to_string(),
            array: false,
            rows: 1,
            uniform: true,
            raw: None,
        }),
        Value::Array(items) => {
            let mut keys: Option<Vec<String>> = None;
            let mut uniform = true;
            for item in items {
                let Value::Object(o) = item else {
                    return Err(ApiError::invalid_body("All object keys must match"));
                };
                let these: Vec<String> = o.keys().cloned().collect();
                match &keys {
                    None => keys = Some(these),
                    Some(k) => uniform &= same_set(k, &these),
                }
            }
            Ok(Payload {
                keys: keys.unwrap_or_default(),
                json: text.to_string(),
                array: true,
                rows: items.len(),
                uniform,
                raw: None,
            })
        }
        _ => Err(ApiError::invalid_body("Empty or invalid json")),
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|k| b.contains(k))
}

/// CSV: a header row of names, then rows; the word NULL is null (an empty field is an empty
/// string), as PostgREST reads it.
fn csv(body: &[u8]) -> Result<Payload, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::invalid_body("Empty or invalid CSV"))?;
    let mut records = csv_records(text)?.into_iter();
    let header = records.next().unwrap_or_default();
    let mut rows = Vec::new();
    for record in records {
        if record.len() == 1 && record[0].as_deref() == Some("") {
            continue;
        }
        if record.len() != header.len() {
            return Err(ApiError::invalid_body(
                "All lines must have same number of fields",
            ));
        }
        let mut object = Map::new();
        for (name, field) in header.iter().zip(record) {
            let value = field
                .filter(|f| f != "NULL")
                .map_or(Value::Null, Value::String);
            object.insert(name.clone().unwrap_or_default(), value);
        }
        rows.push(Value::Object(object));
    }
    let keys = header.into_iter().map(Option::unwrap_or_default).collect();
    let count = rows.len();
    Ok(Payload {
        json: Value::Array(rows).to_string(),
        keys,
        array: true,
        rows: count,
        uniform: true,
        raw: None,
    })
}

/// RFC 4180 records: fields separated by commas, `"quoted"` fields with `""` for a quote.
fn csv_records(text: &str) -> Result<Vec<Vec<Option<String>>>, ApiError> {
    let mut records = Vec::new();
    let mut record: Vec<Option<String>> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => {
                quoted = true;
                started = true;
            }
            (false, ',') => {
                record.push(Some(std::mem::take(&mut field)));
                started = false;
            }
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(Some(std::mem::take(&mut field)));
                records.push(std::mem::take(&mut record));
                started = false;
            }
            (false, c) => {
                field.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err(ApiError::invalid_body("Empty or invalid CSV"));
    }
    if started || !field.is_empty() || !record.is_empty() {
        record.push(Some(field));
        records.push(record);
    }
    Ok(records)
}

/// `a=1&b=x`: one object of text values.
fn form(body: &[u8]) -> Result<Payload, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::invalid_body("Empty or invalid json"))?;
    let mut object = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = super::decode_text(k, true)?;
        let v = super::decode_text(v, true)?;
        object.insert(k, Value::String(v));
    }
    Ok(Payload {
        keys: object.keys().cloned().collect(),
        json: Value::Object(object).to_string(),
        array: false,
        rows: 1,
        uniform: true,
        raw: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_and_uniform_arrays() {
        let p = parse(br#"{"id": 1, "name": "x"}"#, None, false).unwrap();
        assert_eq!((p.keys.len(), p.array, p.rows), (2, false, 1));
        let p = parse(
            br#"[{"a":1,"b":2},{"b":3,"a":4}]"#,
            Some("application/json"),
            false,
        )
        .unwrap();
        assert!(p.array && p.rows == 2);
        assert!(p.uniform);
        assert!(!parse(br#"[{"a":1},{"b":2}]"#, None, false).unwrap().uniform);
        let e = parse(b"}{ x = 2", None, false).unwrap_err();
        assert_eq!(e.message, "Empty or invalid json");
        assert_eq!(parse(b"", None, false).unwrap().json, "{}");
        assert!(parse(b"[1,2]", None, false).is_err());
        assert!(parse(b"42", None, false).is_err());
    }

    #[test]
    fn csv_with_quotes_and_nulls() {
        let p = parse(
            b"a,b\nbar,baz\n\"x,\"\"y\"\"\",NULL\n,x\n",
            Some("text/csv"),
            false,
        )
        .unwrap();
        assert_eq!(p.keys, ["a", "b"]);
        let v: Value = serde_json::from_str(&p.json).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"a": "bar", "b": "baz"},
                {"a": "x,\"y\"", "b": null},
                {"a": "", "b": "x"}
            ])
        );
        assert!(parse(b"a,b\n1\n", Some("text/csv"), false).is_err());
    }

    #[test]
    fn forms_are_one_object() {
        let p = parse(
            b"name=a+b&id=%31",
            Some("application/x-www-form-urlencoded"),
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&p.json).unwrap();
        assert_eq!(v, serde_json::json!({"name": "a b", "id": "1"}));
    }

    #[test]
    fn a_call_takes_raw_bodies_whole() {
        let p = parse(b"\x00\xffhi", Some("application/octet-stream"), true).unwrap();
        assert_eq!((p.raw, p.json.as_str()), (Some(RawBody::Bytes), "AP9oaQ=="));
        let p = parse(b"<a/>", Some("text/xml"), true).unwrap();
        assert_eq!((p.raw, p.json.as_str()), (Some(RawBody::Xml), "<a/>"));
        let p = parse(
            "caf\u{e9}".as_bytes(),
            Some("text/plain; charset=utf-8"),
            true,
        )
        .unwrap();
        assert_eq!((p.raw, p.keys.len()), (Some(RawBody::Text), 0));
        assert_eq!(
            parse(b"\xff", Some("text/plain"), true).unwrap_err().code,
            "PGRST102"
        );
        // Writes read only JSON, CSV and forms.
        assert!(parse(b"abc", Some("text/plain"), false).is_err());
    }
}
