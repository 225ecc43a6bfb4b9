//! The request as SQL sees it: the values of `request.headers`, `request.cookies` and
//! `search_path`, built once per request (PostgREST's shapes).

use crate::http1::header_items;
use crate::sql::quote_ident;
use std::borrow::Cow;

/// `request.headers`: every header but `Cookie`, names lower-case; of repeated names the last
/// wins (PostgREST's rule).
pub fn headers_json<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let pairs = headers
        .into_iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("cookie"))
        .map(|(name, value)| {
            let name = match name.bytes().any(|b| b.is_ascii_uppercase()) {
                true => Cow::Owned(name.to_ascii_lowercase()),
                false => Cow::Borrowed(name),
            };
            (name, value)
        })
        .collect();
    json_object(pairs)
}

/// `request.cookies`: the `Cookie` headers' `name=value` pairs (`;`-separated, surrounding
/// spaces ignored); of repeated names the last wins, as in PostgREST.
pub fn cookies_json<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let pairs = header_items(headers, "cookie", ';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (Cow::Borrowed(name), value))
        .collect();
    json_object(pairs)
}

/// A JSON object of string members, keys sorted, of repeated keys the last; written directly
/// (these are built for every request, a map of owned strings would cost an allocation per
/// member).
fn json_object(mut pairs: Vec<(Cow<str>, &str)>) -> String {
    // Stable: pairs of one name stay in the order sent.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let size: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if pairs.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        push_json_str(&mut out, name);
        out.push(b':');
        push_json_str(&mut out, value);
    }
    out.push(b'}');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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
    use serde_json::Value;

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
    fn members_are_escaped_and_sorted() {
        let h = [("x-b", "say \"hi\"\\\u{1}"), ("x-a", "é"), ("x-b", "last")];
        assert_eq!(headers_json(h), r#"{"x-a":"é","x-b":"last"}"#);
        let h = [("x-q", "a\"b\\c\u{1}")];
        assert_eq!(headers_json(h), r#"{"x-q":"a\"b\\c\u0001"}"#);
        assert_eq!(headers_json([]), "{}");
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
