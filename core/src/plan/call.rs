//! Plans of function calls (`/rpc/{function}`): the overload the arguments name, where each
//! argument comes from (the query string of a GET, the body of a POST, or the whole body for
//! one unnamed json/jsonb parameter), and how the result is shaped (rows, one value, nothing).
//! Rows of a function returning a relation's type are planned like a read of it: select,
//! filters, order, limits and embedding.

use super::{media, plan_root, Expr, Limits, Node, NodeSource, Output, Source};
use crate::api_request::payload::RawBody;
use crate::api_request::{field, filter, ApiRequest, Condition, Field, MediaType, Resource};
use crate::error::ApiError;
use crate::fuzzy;
use crate::preferences::Count;
use crate::schema_cache::{Function, QualifiedName, SchemaCache, Volatility};

/// A call as a FROM item: the function and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub function: QualifiedName,
    pub args: CallArgs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallArgs {
    /// Named arguments from the query string: each text value cast to the parameter's type
    /// (a variadic parameter takes every value given, as an array).
    Query(Vec<QueryArg>),
    /// The body's keys as named arguments, read by `json_to_record` with the parameters'
    /// types (of an array body, the first object).
    Body { params: Vec<BodyArg>, array: bool },
    /// The whole body as the one unnamed json/jsonb (or text, xml, bytea) parameter;
    /// `base64`: bytes sent as base64 text.
    Whole { type_name: String, base64: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryArg {
    pub name: String,
    pub type_name: String,
    pub values: Vec<String>,
    pub variadic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyArg {
    pub name: String,
    pub type_name: String,
    pub variadic: bool,
}

/// How the function's result becomes the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// Rows (of a relation or composite type): an array, or one object when the function
    /// returns one row.
    Rows,
    /// A value (or a set of values): the bare JSON value, or an array of them.
    Scalar,
    /// `void`: 204, no body.
    Void,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPlan {
    pub root: Node,
    pub result: CallResult,
    /// Several results: an array (a set-returning function, or an array body).
    pub many: bool,
    pub volatility: Volatility,
    /// The body a POST call reads its arguments from.
    pub payload: Option<String>,
    pub count: Option<Count>,
    pub media: MediaType,
    /// `?type=` named a media type pg_rest does not produce and the function returns one
    /// text or bytea value: that value is the body, with this `Content-Type`.
    pub raw_type: Option<String>,
    /// The schema's media handler that makes the body instead of `media`.
    pub handler: Option<media::Handler>,
}

/// The table alias of the call in its node; a scalar result is the column of that name.
pub const RESULT_ALIAS: &str = "pgrst_0";

pub fn call_plan(
    req: &ApiRequest,
    cache: &SchemaCache,
    schema: &str,
    limits: &Limits,
) -> Result<CallPlan, ApiError> {
    let Resource::Function(name) = &req.resource else {
        return Err(ApiError::invalid_path());
    };
    // A GET's parameters: those that read as filters are filters, the others arguments.
    let mut filters = Vec::new();
    let mut query_args: Vec<(&str, &str)> = Vec::new();
    for (key, value) in &req.call_params {
        match as_filter(key, value) {
            Some(f) => filters.push((Vec::new(), f)),
            None => query_args.push((key, value)),
        }
    }
    let payload = req.payload.as_ref();
    let mut given: Vec<&str> = match payload {
        Some(p) => p.keys.iter().map(String::as_str).collect(),
        None => query_args.iter().map(|(k, _)| *k).collect(),
    };
    given.dedup();
    let overloads = cache.functions(schema, name);
    let body = payload.map(|p| p.raw);
    let f = choose(overloads, &given, body).ok_or_else(|| {
        // A raw body (text, XML, bytes) has no parameter names to compare: no hint, as in
        // PostgREST.
        let raw = payload.is_some_and(|p| p.raw.is_some());
        let close = (!raw)
            .then(|| close_function(cache, schema, name, overloads, &given))
            .flatten();
        ApiError::function_not_found(schema, name, &given, payload.is_some(), close)
    })?;
    // A set of a table's rows is answered as that table.
    let answered_as = f.returns_relation.as_ref().map_or(&f.name, |r| &r.name);
    let handler = media::handler(req, cache, &f.schema, answered_as)?;
    let raw_type = match handler {
        Some(_) => None,
        None => raw_type(req, f)?,
    };
    let args = match payload {
        Some(p) if takes_whole_body(f, p.raw) => CallArgs::Whole {
            type_name: f.params[0].type_name.clone(),
            base64: p.raw == Some(RawBody::Bytes),
        },
        Some(p) => body_args(f, &p.keys, p.array),
        None => CallArgs::Query(
            f.params
                .iter()
                .filter(|p| query_args.iter().any(|(k, _)| *k == p.name))
                .map(|p| QueryArg {
                    name: p.name.clone(),
                    type_name: p.type_name.clone(),
                    values: query_args
                        .iter()
                        .filter(|(k, _)| *k == p.name)
                        .map(|(_, v)| v.to_string())
                        .collect(),
                    variadic: p.variadic,
                })
                .collect(),
        ),
    };
    let call = Call {
        function: QualifiedName::new(&f.schema, &f.name),
        args,
    };
    let (mut root, result) = match (&f.returns_relation, f.returns_scalar) {
        (_, true) if f.return_type == "void" => (scalar_node(f), CallResult::Void),
        (_, true) => (scalar_node(f), CallResult::Scalar),
        (Some(rel), false) => {
            let relation = cache.relation_or_not_found(&rel.schema, &rel.name)?;
            let mut with_filters = req.clone();
            with_filters.conditions.append(&mut filters);
            (
                plan_root(&with_filters, cache, relation, limits, false)?,
                CallResult::Rows,
            )
        }
        (None, false) => (record_node(f), CallResult::Rows),
    };
    if let Some((_, Condition::Filter(f0))) = filters.first() {
        // Filters on rows that have no known columns.
        return Err(ApiError::undefined_column(name, &f0.field.name));
    }
    root.source = NodeSource::Call(call);
    root.range = req.range.capped(limits.max_rows);
    Ok(CallPlan {
        root,
        result,
        many: f.returns_set,
        volatility: f.volatility,
        payload: payload.map(|p| p.json.clone()),
        count: req.preferences.count,
        media: match req.media {
            MediaType::Plan(p) => p.target_media(),
            m => m,
        },
        raw_type,
        handler,
    })
}

/// The `Content-Type` of a raw result: `type=` pg_rest could not negotiate is answerable only
/// by a function returning one text or bytea value (406 PGRST107 for any other).
fn raw_type(req: &ApiRequest, f: &Function) -> Result<Option<String>, ApiError> {
    let Some(asked) = &req.format.raw_type else {
        return Ok(None);
    };
    let one_raw_value =
        f.returns_scalar && !f.returns_set && matches!(f.return_type.as_str(), "text" | "bytea");
    if one_raw_value {
        Ok(Some(asked.clone()))
    } else {
        Err(ApiError::media_type_unavailable(asked))
    }
}

/// What the caller may have meant, as PostgREST's hint names it: with no function of that
/// name, the schema's function most like it (0.75 similar); else the overload whose sorted
/// parameter list is most like the one given (0.33 similar).
fn close_function(
    cache: &SchemaCache,
    schema: &str,
    name: &str,
    overloads: &[Function],
    given: &[&str],
) -> Option<String> {
    if overloads.is_empty() {
        let names = cache
            .functions_in(schema)
            .into_iter()
            .map(|f| f.name.as_str());
        return fuzzy::closest(names, name, 0.75).map(str::to_owned);
    }
    let lists: Vec<String> = overloads
        .iter()
        .map(|f| fuzzy::param_list(f.params.iter().map(|p| p.name.as_str())))
        .collect();
    let given = fuzzy::param_list(given.iter().copied());
    fuzzy::closest(lists.iter().map(String::as_str), &given, 0.33).map(|l| format!("{name}{l}"))
}

/// `key=value` as a filter, if it reads as one (`id=gt.1`); an argument otherwise (`a=3`).
fn as_filter(key: &str, value: &str) -> Option<Condition> {
    // Every operator is followed by a dot: without one the value is an argument, known
    // without parsing (and building the error a failed parse makes).
    if !value.contains('.') {
        return None;
    }
    let field = field::parse_field(key).ok()?;
    filter::filter(field, value).ok().map(Condition::Filter)
}

/// The overload whose parameters take exactly the given names (all without a default given),
/// the one with fewest parameters first; a POST body (`body`: whether raw) also fits a
/// function whose one parameter is unnamed and takes it whole.
fn choose<'f>(
    overloads: &'f [Function],
    given: &[&str],
    body: Option<Option<RawBody>>,
) -> Option<&'f Function> {
    let mut fits: Vec<&Function> = overloads
        .iter()
        .filter(|f| {
            body.is_some_and(|raw| takes_whole_body(f, raw))
                || (given.iter().all(|g| f.params.iter().any(|p| p.name == *g))
                    && f.params
                        .iter()
                        .all(|p| p.has_default || p.variadic || given.contains(&&*p.name)))
        })
        .collect();
    fits.sort_by_key(|f| f.params.len());
    fits.first().copied()
}

/// One unnamed parameter taking the body whole: json or jsonb for JSON, else the raw body's
/// type (PostgREST's rule).
fn takes_whole_body(f: &Function, raw: Option<RawBody>) -> bool {
    let [p] = f.params.as_slice() else {
        return false;
    };
    p.name.is_empty()
        && match raw {
            None => p.type_name == "json" || p.type_name == "jsonb",
            Some(kind) => p.type_name == kind.parameter_type(),
        }
}

/// The parameters the body's keys name (others take their defaults).
fn body_args(f: &Function, keys: &[String], array: bool) -> CallArgs {
    CallArgs::Body {
        params: f
            .params
            .iter()
            .filter(|p| !p.name.is_empty() && keys.contains(&p.name))
            .map(|p| BodyArg {
                name: p.name.clone(),
                type_name: p.type_name.clone(),
                variadic: p.variadic,
            })
            .collect(),
        array,
    }
}

/// A node reading the call's one value as the column `pgrst_0`.
fn scalar_node(f: &Function) -> Node {
    call_node(
        f,
        vec![Output::Expr {
            expr: Box::new(Expr {
                source: Source::Column(RESULT_ALIAS.to_string()),
                field: Field::named(RESULT_ALIAS),
                cast: None,
                type_name: f.return_type.clone(),
                base_type: f.return_type.clone(),
                source_type: f.return_type.clone(),
                to_json: None,
                from_text: None,
            }),
            name: RESULT_ALIAS.to_string(),
            aggregate: None,
            aggregate_cast: None,
        }],
    )
}

/// A node reading every column of the call's rows (a composite type pg_rest has no columns
/// of: OUT parameters, `RETURNS TABLE`, `record`).
fn record_node(f: &Function) -> Node {
    call_node(f, vec![Output::AllColumns])
}

/// A node reading `outputs` of the call's rows.
fn call_node(f: &Function, outputs: Vec<Output>) -> Node {
    Node {
        relation: QualifiedName::new(&f.schema, &f.name),
        source: NodeSource::Relation,
        alias: RESULT_ALIAS.to_string(),
        outputs,
        conditions: Vec::new(),
        order: Vec::new(),
        range: Default::default(),
        embeds: Vec::new(),
        grouped: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_request::parse;
    use crate::schema_cache::{build, CatalogRows};

    fn cache() -> SchemaCache {
        let f = |name: &str, returns: &str, set: bool| Function {
            schema: "lib".into(),
            name: name.into(),
            return_type: returns.into(),
            returns_scalar: true,
            returns_set: set,
            ..Function::default()
        };
        build(CatalogRows {
            functions: vec![
                f("page", "text", false),
                f("cover", "bytea", false),
                f("answer", "integer", false),
                f("lines", "text", true),
                Function {
                    params: ["b", "a"]
                        .map(|n| crate::schema_cache::Parameter {
                            name: n.into(),
                            type_name: "integer".into(),
                            ..Default::default()
                        })
                        .into(),
                    ..f("add_them", "integer", false)
                },
            ],
            ..CatalogRows::default()
        })
    }

    fn plan(target: &str) -> Result<CallPlan, ApiError> {
        let limits = Limits {
            max_rows: None,
            aggregates_enabled: false,
        };
        call_plan(&parse("GET", target, []).unwrap(), &cache(), "lib", &limits)
    }

    #[test]
    fn unknown_functions_hint_at_what_was_meant() {
        let hint = |target: &str| plan(target).unwrap_err().hint;
        let meant = |f: &str| Some(format!("Perhaps you meant to call the function lib.{f}"));
        assert_eq!(hint("/rpc/answr"), meant("answer"));
        assert_eq!(hint("/rpc/anwser"), None); // a transposition costs two edits
        assert_eq!(hint("/rpc/nothing_like_it"), None);
        // An overload's parameters, sorted, as PostgREST lists them.
        assert_eq!(hint("/rpc/add_them?a=1&c=2"), meant("add_them(a, b)"));
        assert_eq!(hint("/rpc/add_them?zzzzzzzzz=1"), None);
    }

    #[test]
    fn one_text_or_bytea_value_is_sent_raw_in_an_unproducible_type() {
        let p = plan("/rpc/page?type=text/html").unwrap();
        assert_eq!(p.raw_type.as_deref(), Some("text/html"));
        let p = plan("/rpc/cover?type=image/png").unwrap();
        assert_eq!(p.raw_type.as_deref(), Some("image/png"));
        // A type pg_rest produces negotiates as Accept would.
        let p = plan("/rpc/page?type=application/json").unwrap();
        assert_eq!((p.raw_type, p.media), (None, MediaType::Json));
        assert_eq!(plan("/rpc/page").unwrap().raw_type, None);
    }

    #[test]
    fn a_raw_body_is_the_value_not_json() {
        let raw = crate::sql::call_statement(&plan("/rpc/cover?type=image/png").unwrap());
        assert!(raw
            .sql
            .contains(r#"(pg_catalog.array_agg(_pgrst_t."pgrst_0"))[1]"#));
        assert!(!raw.sql.contains("json_agg"));
        let json = crate::sql::call_statement(&plan("/rpc/cover").unwrap());
        assert!(json
            .sql
            .contains(r#"pg_catalog.to_json("pgrst_0"."pgrst_0")"#));
    }

    #[test]
    fn one_value_is_selected_from_the_call_without_an_aggregate() {
        let s = crate::sql::call_statement(&plan("/rpc/add_them?a=1&b=2").unwrap());
        assert_eq!(
            s.sql,
            "SELECT 1::int8, NULL::int8, coalesce(pg_catalog.to_json(\"pgrst_0\".\"pgrst_0\")::text, \
             'null'), NULLIF(pg_catalog.current_setting('response.headers', true), ''), \
             NULLIF(pg_catalog.current_setting('response.status', true), ''), NULL::text, \
             NULL::int8 FROM \"lib\".\"add_them\"(\"b\" := $1::integer, \"a\" := $2::integer) \
             AS \"pgrst_0\""
        );
        // The arguments in the function's parameter order.
        assert_eq!(s.params, ["2", "1"]);
        // A set, a range that may drop the row: the general statement, which limits and
        // aggregates.
        for target in ["/rpc/lines", "/rpc/answer?limit=0", "/rpc/answer?offset=1"] {
            let s = crate::sql::call_statement(&plan(target).unwrap());
            assert!(s.sql.contains("json_agg"), "{target}: {}", s.sql);
        }
    }

    #[test]
    fn other_results_refuse_an_unproducible_type() {
        for target in ["/rpc/answer?type=text/html", "/rpc/lines?type=text/plain"] {
            let e = plan(target).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"), "{target}");
        }
    }
}
