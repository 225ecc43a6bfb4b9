//! ApiRequest: what the client asks for, read from the method, the request-target and the
//! headers. Pure: no schema knowledge (that is `plan`'s job), no database.

use crate::error::ApiError;
use crate::preferences::{Preferences, TxEnd};
use crate::range::RowRange;
use crate::schema_cache::Isolation;
use percent_encoding::percent_decode;

/// The resource a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/` — the API description.
    Root,
    /// `/{table_or_view}` in the default schema.
    Relation(String),
}

/// A comparison operator of PostgREST's filter syntax (`col=op.value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Is,
}

/// The operand of `is`: a keyword, never a bind parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A value sent to PostgreSQL as a bind parameter.
    Value(String),
    Is(IsValue),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub negated: bool,
    pub operator: Operator,
    pub operand: Operand,
}

/// One term of `order=`: a column, its direction and where NULLs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub column: String,
    pub descending: bool,
    pub nulls: Option<NullsOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullsOrder {
    First,
    Last,
}

/// Whether a transaction may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GET and HEAD (PostgREST's rule): a write inside fails with 25006, answered 405.
    ReadOnly,
    ReadWrite,
}

/// How the request's one transaction runs and ends, decided by the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxMode {
    pub access: Access,
    pub end: TxEnd,
    /// Read committed unless the role's `default_transaction_isolation` says otherwise.
    pub isolation: Isolation,
}

impl TxMode {
    /// The mode for `method` with the client's `Prefer: tx=` (commit when absent).
    pub fn for_request(method: &str, prefs: &Preferences) -> TxMode {
        let access = match method {
            "GET" | "HEAD" => Access::ReadOnly,
            _ => Access::ReadWrite,
        };
        TxMode {
            access,
            end: prefs.tx.unwrap_or_default(),
            isolation: Isolation::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// HEAD: answer as GET, without the body.
    pub head_only: bool,
    pub resource: Resource,
    pub filters: Vec<Filter>,
    pub order: Vec<OrderTerm>,
    /// Rows wanted: `limit`/`offset` and the `Range` header (before `pg_rest.max_rows`).
    pub range: RowRange,
    pub preferences: Preferences,
    pub tx: TxMode,
}

/// Query parameters with a meaning of their own in PostgREST's dialect, not filters.
const RESERVED_PARAMS: &[&str] = &["select", "columns", "on_conflict", "and", "or", "not"];

/// Operators PostgREST has and pg_rest does not serve yet: a clear 501, not a parse error.
const PENDING_OPERATORS: &[&str] = &[
    "in",
    "cs",
    "cd",
    "ov",
    "sl",
    "sr",
    "nxr",
    "nxl",
    "adj",
    "fts",
    "plfts",
    "phfts",
    "wfts",
    "match",
    "imatch",
    "isdistinct",
];

/// Reads a request from its method, raw request-target (`/books?id=eq.1`) and headers
/// (names lower-case).
pub fn parse<'h>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Result<ApiRequest, ApiError> {
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        other => return Err(ApiError::unsupported_method(other)),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let resource = parse_path(path)?;
    let query = parse_query(query)?;
    let headers: Vec<(&str, &str)> = headers.into_iter().collect();
    let range_header = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("range"))
        .map(|(_, v)| *v);
    let range = RowRange::parse(
        query.limit.as_deref(),
        query.offset.as_deref(),
        range_header,
    )?;
    let preferences = Preferences::from_headers(headers);
    let tx = TxMode::for_request(method, &preferences);
    Ok(ApiRequest {
        head_only,
        resource,
        filters: query.filters,
        order: query.order,
        range,
        preferences,
        tx,
    })
}

/// The query string, read.
#[derive(Default)]
struct Query {
    filters: Vec<Filter>,
    order: Vec<OrderTerm>,
    limit: Option<String>,
    offset: Option<String>,
}

fn parse_path(path: &str) -> Result<Resource, ApiError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => Ok(Resource::Root),
        [name] => Ok(Resource::Relation(decode_text(name, false)?)),
        _ => Err(ApiError::invalid_path()),
    }
}

fn parse_query(query: &str) -> Result<Query, ApiError> {
    let mut parsed = Query::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_text(key, true)?;
        // `select=*` (what clients send for "all columns") is the default projection.
        let value = decode_text(value, true)?;
        match key.as_str() {
            "select" if value.trim() == "*" => {}
            "order" => parsed.order = parse_order(&value)?,
            "limit" => parsed.limit = Some(value),
            "offset" => parsed.offset = Some(value),
            reserved if RESERVED_PARAMS.contains(&reserved) => {
                return Err(ApiError::not_implemented(&format!(
                    "query parameter '{key}'"
                )))
            }
            _ => parsed.filters.push(parse_filter(&key, &value)?),
        }
    }
    Ok(parsed)
}

/// `order=col[.asc|.desc][.nullsfirst|.nullslast],…` (a column may be `"double.quoted"`).
fn parse_order(value: &str) -> Result<Vec<OrderTerm>, ApiError> {
    let failed = |why: &str| {
        ApiError::parse_error(
            format!("\"failed to parse order ({value})\""),
            why.to_string(),
        )
    };
    let mut terms = Vec::new();
    for term in value.split(',') {
        let (column, modifiers) = match term.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| failed("unterminated quoted column"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => term.split_once('.').unwrap_or((term, "")),
        };
        if column.is_empty() {
            return Err(failed("expected a column name"));
        }
        if column.contains("->") || column.contains('(') {
            return Err(ApiError::not_implemented(
                "ordering by a JSON path or an embedded resource",
            ));
        }
        let mut order = OrderTerm {
            column: column.to_string(),
            descending: false,
            nulls: None,
        };
        let mut seen_direction = false;
        for modifier in modifiers.split('.').filter(|m| !m.is_empty()) {
            match modifier {
                "asc" | "desc" if !seen_direction && order.nulls.is_none() => {
                    order.descending = modifier == "desc";
                    seen_direction = true;
                }
                "nullsfirst" if order.nulls.is_none() => order.nulls = Some(NullsOrder::First),
                "nullslast" if order.nulls.is_none() => order.nulls = Some(NullsOrder::Last),
                other => return Err(failed(&format!("unexpected \"{other}\" after a column"))),
            }
        }
        terms.push(order);
    }
    Ok(terms)
}

/// Percent-decodes one URL component (`+` is a space in the query, as in forms) into text
/// PostgreSQL can hold: valid UTF-8 without NUL bytes, else PostgreSQL's own 22021 — every
/// name and value of a request passes here before it can become SQL text or a parameter.
pub fn decode_text(raw: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let spaced;
    let raw = if plus_is_space && raw.contains('+') {
        spaced = raw.replace('+', " ");
        spaced.as_str()
    } else {
        raw
    };
    let bytes: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(ApiError::invalid_byte_sequence(&bytes[at..=at]));
    }
    String::from_utf8(bytes).map_err(|e| {
        let utf8 = e.utf8_error();
        let bytes = e.as_bytes();
        let start = utf8.valid_up_to();
        let len = utf8.error_len().unwrap_or(bytes.len() - start);
        ApiError::invalid_byte_sequence(&bytes[start..start + len])
    })
}

fn parse_filter(column: &str, expr: &str) -> Result<Filter, ApiError> {
    let failed = |why: &str| {
        ApiError::parse_error(
            format!("\"failed to parse filter ({expr})\""),
            why.to_string(),
        )
    };
    if column.is_empty() {
        return Err(failed("a filter needs a column name"));
    }
    let (negated, rest) = match expr.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, expr),
    };
    let (op, value) = rest
        .split_once('.')
        .ok_or_else(|| failed("expected operator.value"))?;
    let operator = match op {
        "eq" => Operator::Eq,
        "neq" => Operator::Neq,
        "gt" => Operator::Gt,
        "gte" => Operator::Gte,
        "lt" => Operator::Lt,
        "lte" => Operator::Lte,
        "like" => Operator::Like,
        "ilike" => Operator::Ilike,
        "is" => Operator::Is,
        pending if PENDING_OPERATORS.contains(&pending) => {
            return Err(ApiError::not_implemented(&format!(
                "filter operator '{pending}'"
            )))
        }
        unknown => return Err(failed(&format!("unknown operator '{unknown}'"))),
    };
    let operand = match operator {
        Operator::Is => Operand::Is(
            parse_is_value(value)
                .ok_or_else(|| failed("is expects null, not_null, true, false or unknown"))?,
        ),
        // PostgREST's `*` wildcard spares clients from percent-encoding `%`.
        Operator::Like | Operator::Ilike => Operand::Value(value.replace('*', "%")),
        _ => Operand::Value(value.to_string()),
    };
    Ok(Filter {
        column: column.to_string(),
        negated,
        operator,
        operand,
    })
}

fn parse_is_value(value: &str) -> Option<IsValue> {
    match value.to_ascii_lowercase().as_str() {
        "null" => Some(IsValue::Null),
        "not_null" => Some(IsValue::NotNull),
        "true" => Some(IsValue::True),
        "false" => Some(IsValue::False),
        "unknown" => Some(IsValue::Unknown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_filter(column: &str, operator: Operator, value: &str) -> Filter {
        Filter {
            column: column.into(),
            negated: false,
            operator,
            operand: Operand::Value(value.into()),
        }
    }

    #[test]
    fn plain_get_of_a_table() {
        let r = parse("GET", "/books", []).unwrap();
        assert_eq!(
            r,
            ApiRequest {
                head_only: false,
                resource: Resource::Relation("books".into()),
                filters: vec![],
                order: vec![],
                range: RowRange::default(),
                preferences: Preferences::default(),
                tx: TxMode {
                    access: Access::ReadOnly,
                    end: TxEnd::Commit,
                    isolation: Isolation::ReadCommitted,
                },
            }
        );
    }

    #[test]
    fn root_and_head() {
        let r = parse("HEAD", "/", []).unwrap();
        assert!(r.head_only);
        assert_eq!(r.resource, Resource::Root);
    }

    #[test]
    fn percent_encoded_names_and_values() {
        let r = parse("GET", "/my%20table?na%20me=eq.a%20b+c&id=eq.%27", []).unwrap();
        assert_eq!(r.resource, Resource::Relation("my table".into()));
        assert_eq!(
            r.filters,
            vec![
                value_filter("na me", Operator::Eq, "a b c"),
                value_filter("id", Operator::Eq, "'")
            ]
        );
    }

    #[test]
    fn value_may_contain_dots() {
        let r = parse("GET", "/t?v=eq.1.5", []).unwrap();
        assert_eq!(r.filters, vec![value_filter("v", Operator::Eq, "1.5")]);
    }

    #[test]
    fn all_operators_and_negation() {
        let r = parse(
            "GET",
            "/t?a=neq.1&b=gt.1&c=gte.1&d=lt.1&e=lte.1&f=like.*x*&g=ilike.X*&h=not.eq.2",
            [],
        )
        .unwrap();
        let ops: Vec<Operator> = r.filters.iter().map(|f| f.operator).collect();
        use Operator::*;
        assert_eq!(ops, [Neq, Gt, Gte, Lt, Lte, Like, Ilike, Eq]);
        assert_eq!(r.filters[5].operand, Operand::Value("%x%".into()));
        assert!(r.filters[7].negated && !r.filters[0].negated);
    }

    #[test]
    fn is_takes_keywords_only() {
        let r = parse("GET", "/t?a=is.NULL&b=not.is.true&c=is.not_null", []).unwrap();
        assert_eq!(r.filters[0].operand, Operand::Is(IsValue::Null));
        assert_eq!(r.filters[1].operand, Operand::Is(IsValue::True));
        assert!(r.filters[1].negated);
        assert_eq!(r.filters[2].operand, Operand::Is(IsValue::NotNull));
        let e = parse("GET", "/t?a=is.1", []).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
    }

    #[test]
    fn unknown_operator_is_a_parse_error() {
        let e = parse("GET", "/t?id=foo.1", []).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
        assert_eq!(e.message, "\"failed to parse filter (foo.1)\"");
        let e = parse("GET", "/t?id=1", []).unwrap_err();
        assert_eq!(e.code, "PGRST100");
    }

    #[test]
    fn pending_features_say_so() {
        assert_eq!(parse("GET", "/t?id=in.(1,2)", []).unwrap_err().status, 501);
        assert_eq!(parse("GET", "/t?select=id", []).unwrap_err().status, 501);
        // All columns is what a read does anyway.
        assert!(
            parse("GET", "/t?select=*&id=eq.1", [])
                .unwrap()
                .filters
                .len()
                == 1
        );
    }

    #[test]
    fn methods_other_than_get_and_head_are_405() {
        let e = parse("POST", "/books", []).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (405, "PGRST117"));
    }

    #[test]
    fn nested_paths_are_invalid() {
        assert_eq!(parse("GET", "/a/b", []).unwrap_err().code, "PGRST125");
    }

    #[test]
    fn reads_are_read_only_and_prefer_tx_decides_the_end() {
        let r = parse("HEAD", "/books", [("prefer", "tx=rollback")]).unwrap();
        assert_eq!(r.tx.access, Access::ReadOnly);
        assert_eq!(r.tx.end, TxEnd::Rollback);
        let writes = TxMode::for_request("POST", &Preferences::default());
        assert_eq!(
            (writes.access, writes.end),
            (Access::ReadWrite, TxEnd::Commit)
        );
    }

    #[test]
    fn nul_and_invalid_utf8_are_22021_wherever_they_appear() {
        for target in [
            "/books?title=eq.a%00b",
            "/books?title=eq.%FF%FE",
            "/books?ti%00tle=eq.a",
            "/bo%C3ks",
            "/bo%00oks",
        ] {
            let e = parse("GET", target, []).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "22021"), "{target}");
            assert!(e
                .message
                .starts_with("invalid byte sequence for encoding \"UTF8\": 0x"));
        }
        let e = parse("GET", "/books?title=eq.%FF%FE", []).unwrap_err();
        assert_eq!(
            e.message,
            "invalid byte sequence for encoding \"UTF8\": 0xff"
        );
        let e = parse("GET", "/books?title=eq.a%00", []).unwrap_err();
        assert_eq!(
            e.message,
            "invalid byte sequence for encoding \"UTF8\": 0x00"
        );
    }

    #[test]
    fn multibyte_text_and_plus_decode() {
        let r = parse(
            "GET",
            "/b%C3%BCcher?t%C3%AEtle=eq.%E2%82%AC+x&a=eq.1%2B1",
            [],
        )
        .unwrap();
        assert_eq!(r.resource, Resource::Relation("bücher".into()));
        assert_eq!(r.filters[0], value_filter("tîtle", Operator::Eq, "€ x"));
        assert_eq!(r.filters[1], value_filter("a", Operator::Eq, "1+1"));
        // A `+` in the path is a plus.
        let r = parse("GET", "/a+b", []).unwrap();
        assert_eq!(r.resource, Resource::Relation("a+b".into()));
    }

    #[test]
    fn order_terms() {
        let r = parse(
            "GET",
            "/t?order=a,b.desc,c.asc.nullslast,d.nullsfirst,%22x.y%22.desc",
            [],
        )
        .unwrap();
        let t = |c: &str, d: bool, n: Option<NullsOrder>| OrderTerm {
            column: c.into(),
            descending: d,
            nulls: n,
        };
        assert_eq!(
            r.order,
            [
                t("a", false, None),
                t("b", true, None),
                t("c", false, Some(NullsOrder::Last)),
                t("d", false, Some(NullsOrder::First)),
                t("x.y", true, None),
            ]
        );
        for bad in [
            "id.asc.nullslasttt",
            "id.up",
            "",
            "a,,b",
            "id.nullsfirst.asc",
            "id.asc.desc",
        ] {
            let e = parse("GET", &format!("/t?order={bad}"), []).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"), "{bad}");
        }
        assert_eq!(
            parse("GET", "/t?order=data->>a", []).unwrap_err().status,
            501
        );
    }

    #[test]
    fn limit_offset_and_the_range_header_make_the_row_range() {
        let r = parse("GET", "/t?limit=3&offset=2", []).unwrap();
        assert_eq!(
            r.range,
            RowRange {
                offset: 2,
                limit: Some(3)
            }
        );
        let r = parse("GET", "/t?limit=3", [("range", "0-1")]).unwrap();
        assert_eq!(
            r.range,
            RowRange {
                offset: 0,
                limit: Some(2)
            }
        );
        assert_eq!(parse("GET", "/t?limit=-1", []).unwrap_err().status, 416);
    }
}
