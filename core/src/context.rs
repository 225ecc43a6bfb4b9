//! The request as SQL sees it: the values of `request.headers`, `request.cookies` and
//! `search_path`, built once per request (PostgREST's shapes).

use crate::http1::header_items;
use crate::sql::quote_ident;
use serde_json::{Map, Value};

/// `request.headers`: every header but `Cookie`, names lower-case; of repeated names the last
/// wins (PostgREST's rule).
pub fn headers_json<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut map = Map::new();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("cookie") {
            map.insert(name.to_ascii_lowercase(), Value::String(value.to_string()));
        }
    }
    Value::Object(map).to_string()
}

/// `request.cookies`: the `Cookie` headers' `name=value` pairs (`;`-separated, surrounding
/// spaces ignored); of repeated names the last wins, as in PostgREST.
pub fn cookies_json<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut map = Map::new();
    for pair in header_items(headers, "cookie", ';') {
        if let Some((name, value)) = pair.split_once('=') {
            let name = name.trim();
            if !name.is_empty() {
                map.insert(name.to_string(), Value::String(value.trim().to_string()));
            }
        }
    }
    Value::Object(map).to_string()
}

/// `search_path` for a request on `schema`: it first, then `pg_rest.extra_search_path`.
pub fn search_path(schema: &str, extra: &[String]) -> String {
    std::iter::once(schema)
        .chain(extra.iter().map(String::as_str).filter(|s| *s != schema))
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_lower_case_last_wins_no_cookie() {
        let h = [
            ("Accept", "*/*"),
            ("x-a", "1"),
            ("X-A", "2"),
            ("cookie", "s=1"),
            ("authorization", "Bearer t"),
        ];
        let v: Value = serde_json::from_str(&headers_json(h)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"accept": "*/*", "x-a": "2", "authorization": "Bearer t"})
        );
    }

    #[test]
    fn cookies_with_and_without_spaces() {
        let h = [
            ("cookie", "acookie=cookievalue;secondcookie=anothervalue"),
            ("Cookie", " third = 3 ; acookie=again; junk"),
        ];
        let v: Value = serde_json::from_str(&cookies_json(h)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"acookie": "again", "secondcookie": "anothervalue", "third": "3"})
        );
        assert_eq!(cookies_json([("accept", "x")]), "{}");
    }

    #[test]
    fn search_path_quotes_and_dedupes() {
        assert_eq!(
            search_path("api", &["public".into(), "api".into()]),
            "\"api\", \"public\""
        );
        assert_eq!(search_path("we\"ird", &[]), "\"we\"\"ird\"");
    }
}
