//! ApiRequest: what the client asks for, read from the method and request-target alone.
//! Pure: no schema knowledge (that is `plan`'s job), no database.

use crate::error::ApiError;
use percent_encoding::percent_decode_str;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// HEAD: answer as GET, without the body.
    pub head_only: bool,
    pub resource: Resource,
    pub filters: Vec<Filter>,
}

/// Query parameters with a meaning of their own in PostgREST's dialect, not filters.
const RESERVED_PARAMS: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "columns",
    "on_conflict",
    "and",
    "or",
    "not",
];

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

/// Reads a request from its method and raw request-target (`/books?id=eq.1`).
pub fn parse(method: &str, target: &str) -> Result<ApiRequest, ApiError> {
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        other => return Err(ApiError::unsupported_method(other)),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let resource = parse_path(path)?;
    let filters = parse_query(query)?;
    Ok(ApiRequest {
        head_only,
        resource,
        filters,
    })
}

fn parse_path(path: &str) -> Result<Resource, ApiError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => Ok(Resource::Root),
        [name] => {
            let name = percent_decode_str(name)
                .decode_utf8()
                .map_err(|_| ApiError::parse_error("Invalid path", "path is not valid UTF-8"))?;
            Ok(Resource::Relation(name.into_owned()))
        }
        _ => Err(ApiError::invalid_path()),
    }
}

fn parse_query(query: &str) -> Result<Vec<Filter>, ApiError> {
    let mut filters = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if RESERVED_PARAMS.contains(&key.as_ref()) {
            return Err(ApiError::not_implemented(&format!(
                "query parameter '{key}'"
            )));
        }
        filters.push(parse_filter(&key, &value)?);
    }
    Ok(filters)
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
        let r = parse("GET", "/books").unwrap();
        assert_eq!(
            r,
            ApiRequest {
                head_only: false,
                resource: Resource::Relation("books".into()),
                filters: vec![]
            }
        );
    }

    #[test]
    fn root_and_head() {
        let r = parse("HEAD", "/").unwrap();
        assert!(r.head_only);
        assert_eq!(r.resource, Resource::Root);
    }

    #[test]
    fn percent_encoded_names_and_values() {
        let r = parse("GET", "/my%20table?na%20me=eq.a%20b+c&id=eq.%27").unwrap();
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
        let r = parse("GET", "/t?v=eq.1.5").unwrap();
        assert_eq!(r.filters, vec![value_filter("v", Operator::Eq, "1.5")]);
    }

    #[test]
    fn all_operators_and_negation() {
        let r = parse(
            "GET",
            "/t?a=neq.1&b=gt.1&c=gte.1&d=lt.1&e=lte.1&f=like.*x*&g=ilike.X*&h=not.eq.2",
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
        let r = parse("GET", "/t?a=is.NULL&b=not.is.true&c=is.not_null").unwrap();
        assert_eq!(r.filters[0].operand, Operand::Is(IsValue::Null));
        assert_eq!(r.filters[1].operand, Operand::Is(IsValue::True));
        assert!(r.filters[1].negated);
        assert_eq!(r.filters[2].operand, Operand::Is(IsValue::NotNull));
        let e = parse("GET", "/t?a=is.1").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
    }

    #[test]
    fn unknown_operator_is_a_parse_error() {
        let e = parse("GET", "/t?id=foo.1").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
        assert_eq!(e.message, "\"failed to parse filter (foo.1)\"");
        let e = parse("GET", "/t?id=1").unwrap_err();
        assert_eq!(e.code, "PGRST100");
    }

    #[test]
    fn pending_features_say_so() {
        assert_eq!(parse("GET", "/t?id=in.(1,2)").unwrap_err().status, 501);
        assert_eq!(parse("GET", "/t?select=id").unwrap_err().status, 501);
    }

    #[test]
    fn methods_other_than_get_and_head_are_405() {
        let e = parse("POST", "/books").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (405, "PGRST117"));
    }

    #[test]
    fn nested_paths_are_invalid() {
        assert_eq!(parse("GET", "/a/b").unwrap_err().code, "PGRST125");
    }
}
