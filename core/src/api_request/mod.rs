//! ApiRequest: what the client asks for, read from the method, the request-target and the
//! headers. Pure: no schema knowledge (that is `plan`'s job), no database. The query string's
//! grammar lives in the submodules, one per parameter kind.

mod cursor;
pub mod field;
pub mod filter;
pub mod format;
pub mod media;
pub mod order;
pub mod payload;
pub mod select;

use crate::error::ApiError;
use crate::preferences::{Preferences, TxEnd};
use crate::range::RowRange;
use crate::schema_cache::Isolation;
pub use field::{Field, JsonKey, JsonStep};
pub use filter::{Comparison, Condition, Filter, FilterOp, FtsOperator, IsValue, Quantifier};
pub use format::Format;
pub use media::MediaType;
pub use order::{NullsOrder, OrderTarget, OrderTerm};
pub use payload::Payload;
use percent_encoding::percent_decode;
pub use select::{Aggregate, Embed, JoinType, SelectItem};
use std::borrow::Cow;

/// The resource a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/` — the API description.
    Root,
    /// `/{table_or_view}`.
    Relation(String),
    /// `/rpc/{function}`.
    Function(String),
}

/// Labels of embedded resources from the top, naming where a parameter applies
/// (`books.reviews.stars=gt.3` applies to `reviews` inside `books`); empty for the top level.
pub type EmbedPath = Vec<String>;

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

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// GET / HEAD of a relation or of `/`.
    Read,
    /// POST to a relation.
    Insert,
    /// PATCH.
    Update,
    /// PUT: insert or replace the one row its primary-key filters name.
    Upsert,
    Delete,
    /// GET, HEAD or POST of `/rpc/{function}`.
    Call,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub action: Action,
    /// HEAD: answer as GET, without the body.
    pub head_only: bool,
    pub resource: Resource,
    /// `Accept-Profile` (reads) or `Content-Profile` (writes): the schema asked for.
    pub profile: Option<String>,
    /// The select tree; `[*]` when the client sends none.
    pub select: Vec<SelectItem>,
    /// Filters and logic trees, each at its embedding level.
    pub conditions: Vec<(EmbedPath, Condition)>,
    /// `order` per embedding level.
    pub order: Vec<(EmbedPath, Vec<OrderTerm>)>,
    /// Rows wanted at the top: `limit`/`offset` and the `Range` header (before `max_rows`).
    pub range: RowRange,
    /// `limit`/`offset` of embedded resources.
    pub embed_ranges: Vec<(EmbedPath, RowRange)>,
    pub preferences: Preferences,
    pub tx: TxMode,
    pub media: MediaType,
    /// What the client accepts, for the schema's media handlers (see `plan::media`).
    pub accepted: media::Accepted,
    /// `type=` and the path's extension, when given (see `format`).
    pub format: Format,
    /// The body of a write or a POST call.
    pub payload: Option<Payload>,
    /// `columns=`: the only keys of the body that are written.
    pub columns: Option<Vec<String>>,
    /// `on_conflict=`: the unique columns an upsert resolves on.
    pub on_conflict: Option<Vec<String>>,
    /// GET/HEAD of a function: the query parameters that are not PostgREST's own, unparsed;
    /// those naming parameters are arguments, the others filters (planning knows which).
    pub call_params: Vec<(String, String)>,
}

/// Reads a request without a body (GET, HEAD, DELETE).
pub fn parse<'h>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Result<ApiRequest, ApiError> {
    parse_with_body(method, target, headers, b"")
}

/// What `method` does on `resource`; other methods are PostgREST's 405s.
fn action(method: &str, resource: &Resource) -> Result<Action, ApiError> {
    Ok(match (resource, method) {
        (_, "GET" | "HEAD") if !matches!(resource, Resource::Function(_)) => Action::Read,
        (Resource::Function(_), "GET" | "HEAD" | "POST") => Action::Call,
        (Resource::Function(_), other) => return Err(ApiError::invalid_rpc_method(other)),
        (Resource::Relation(_), "POST") => Action::Insert,
        (Resource::Relation(_), "PATCH") => Action::Update,
        (Resource::Relation(_), "PUT") => Action::Upsert,
        (Resource::Relation(_), "DELETE") => Action::Delete,
        (_, other) => return Err(ApiError::unsupported_method(other)),
    })
}

/// Reads a request from its method, raw request-target (`/books?id=eq.1`), headers (names
/// lower-case) and body.
pub fn parse_with_body<'h>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    body: &[u8],
) -> Result<ApiRequest, ApiError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut resource = parse_path(path)?;
    let extension = format::strip_extension(&mut resource);
    let action = action(method, &resource)?;
    let head_only = method == "HEAD";
    let reads = matches!(method, "GET" | "HEAD");
    let headers: Vec<(&str, &str)> = headers.into_iter().collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let preferences = Preferences::from_headers(headers.iter().copied())?;
    let query = parse_query(query, action == Action::Call && reads)?;
    let payload = match action {
        Action::Insert | Action::Update | Action::Upsert => {
            Some(payload::parse(body, header("content-type"), false)?)
        }
        Action::Call if !reads => Some(payload::parse(body, header("content-type"), true)?),
        _ => None,
    };
    // Without `columns=`, every object must have the same keys (they are the columns).
    if query.columns.is_none() && payload.as_ref().is_some_and(|p| !p.uniform) {
        return Err(ApiError::invalid_body("All object keys must match"));
    }
    if action == Action::Upsert && (query.top_limit.is_some() || query.top_offset.is_some()) {
        return Err(ApiError::put_range());
    }
    let produces = match resource {
        Resource::Root => media::Produces::Description,
        _ => media::Produces::Rows,
    };
    let format::Chosen {
        media,
        format,
        accepted,
    } = format::choose(format::Asked {
        type_param: query.type_param,
        extension,
        accept: header("accept"),
        produces,
        call: action == Action::Call,
    })?;
    // A write is limited by `limit`/`offset` only: a `Range` header is a read's.
    let writes_rows = matches!(action, Action::Update | Action::Delete);
    let range = RowRange::parse(
        query.top_limit.as_deref(),
        query.top_offset.as_deref(),
        header("range").filter(|_| !writes_rows),
    )?;
    let tx = TxMode::for_request(method, &preferences);
    let profile_header = if reads {
        "accept-profile"
    } else {
        "content-profile"
    };
    Ok(ApiRequest {
        action,
        head_only,
        resource,
        profile: header(profile_header).map(|p| p.trim().to_string()),
        select: query.select.unwrap_or_else(|| vec![SelectItem::Star]),
        conditions: query.conditions,
        order: query.order,
        range,
        embed_ranges: query.embed_ranges,
        preferences,
        tx,
        media,
        accepted,
        format,
        payload,
        columns: query.columns,
        on_conflict: query.on_conflict,
        call_params: query.call_params,
    })
}

impl ApiRequest {
    /// Undoes the path's extension when `exists` finds a relation (or function) with the
    /// whole name (`books.csv`): the request is then for it, in the media type asked without
    /// the extension. Planning calls this with the schema cache.
    pub fn resolve_extension(&mut self, exists: impl FnOnce(&Resource) -> bool) {
        let Some(ext) = self.format.extension.take() else {
            return;
        };
        let whole = match &self.resource {
            Resource::Relation(_) => Resource::Relation(ext.whole_name),
            Resource::Function(_) => Resource::Function(ext.whole_name),
            Resource::Root => return,
        };
        if exists(&whole) {
            self.resource = whole;
            (self.media, self.accepted) = ext.without;
        }
    }
}

/// The resource a request-target names (for OPTIONS, which reads nothing else).
pub fn resource_of(target: &str) -> Result<Resource, ApiError> {
    parse_path(target.split_once('?').map_or(target, |(p, _)| p))
}

/// The schema a request runs in: its profile, which must be one of `schemas`, else the first
/// (PostgREST's 406 PGRST106 for any other).
pub fn choose_schema<'s>(
    profile: Option<&str>,
    schemas: &'s [String],
) -> Result<&'s str, ApiError> {
    match profile {
        None => Ok(schemas.first().map_or("public", String::as_str)),
        Some(p) => schemas
            .iter()
            .find(|s| *s == p)
            .map(String::as_str)
            .ok_or_else(|| ApiError::unacceptable_schema(p, schemas)),
    }
}

/// The query string, read.
#[derive(Default)]
struct Query {
    select: Option<Vec<SelectItem>>,
    conditions: Vec<(EmbedPath, Condition)>,
    order: Vec<(EmbedPath, Vec<OrderTerm>)>,
    top_limit: Option<String>,
    top_offset: Option<String>,
    embed_ranges: Vec<(EmbedPath, RowRange)>,
    columns: Option<Vec<String>>,
    on_conflict: Option<Vec<String>>,
    call_params: Vec<(String, String)>,
    /// `type=`, unparsed.
    type_param: Option<String>,
}

fn parse_path(path: &str) -> Result<Resource, ApiError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => Ok(Resource::Root),
        ["rpc", name] if !name.is_empty() => Ok(Resource::Function(decode_text(name, false)?)),
        [name] => Ok(Resource::Relation(decode_text(name, false)?)),
        _ => Err(ApiError::invalid_path()),
    }
}

/// The parameters PostgREST reserves at every embedding level.
enum Keyword {
    Order,
    Limit,
    Offset,
    Logic,
}

/// `raw_params`: top-level filters are kept unparsed (a function's GET arguments).
fn parse_query(query: &str, raw_params: bool) -> Result<Query, ApiError> {
    let mut parsed = Query::default();
    let mut embed_limits: Vec<(EmbedPath, Option<String>, Option<String>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_text(key, true)?;
        let value = decode_text(value, true)?;
        match key.as_str() {
            "select" => {
                parsed.select = Some(select::parse(&value)?);
                continue;
            }
            "columns" => {
                parsed.columns = Some(name_list("columns", &value)?);
                continue;
            }
            "on_conflict" => {
                parsed.on_conflict = Some(name_list("on_conflict", &value)?);
                continue;
            }
            "type" => {
                parsed.type_param = Some(value);
                continue;
            }
            // JSONP is the response boundary's (`crate::jsonp`); never a filter or argument.
            "callback" | "jsonp" => continue,
            _ => {}
        }
        // Most keys are one plain name: no split, and `last` borrows it.
        let (path, last, keyword) = if key.contains('.') {
            classify(&split_key(&key))
        } else {
            classify(&[key.as_str()])
        };
        match keyword {
            Some(Keyword::Order) => parsed.order.push((path, order::parse(&value)?)),
            Some(Keyword::Logic) => parsed
                .conditions
                .push((path, filter::logic_tree(&last, &value)?)),
            Some(kw @ (Keyword::Limit | Keyword::Offset)) => {
                let is_limit = matches!(kw, Keyword::Limit);
                if path.is_empty() {
                    let slot = if is_limit {
                        &mut parsed.top_limit
                    } else {
                        &mut parsed.top_offset
                    };
                    *slot = Some(value);
                    continue;
                }
                let at = match embed_limits.iter().position(|(p, _, _)| *p == path) {
                    Some(i) => i,
                    None => {
                        embed_limits.push((path, None, None));
                        embed_limits.len() - 1
                    }
                };
                let entry = &mut embed_limits[at];
                if is_limit {
                    entry.1 = Some(value)
                } else {
                    entry.2 = Some(value)
                }
            }
            None if raw_params && path.is_empty() => parsed.call_params.push((key, value)),
            None => {
                let f = filter::filter(field::parse_field(&last)?, &value)?;
                parsed.conditions.push((path, Condition::Filter(f)));
            }
        }
    }
    for (path, limit, offset) in embed_limits {
        let range = RowRange::parse(limit.as_deref(), offset.as_deref(), None)?;
        parsed.embed_ranges.push((path, range));
    }
    Ok(parsed)
}

/// `columns=a,b` / `on_conflict=a,b`: names, quoted or not; none is PGRST100.
fn name_list(what: &'static str, value: &str) -> Result<Vec<String>, ApiError> {
    let mut c = cursor::Cursor::new(value, what);
    let mut names = Vec::new();
    loop {
        c.skip_spaces();
        names.push(field::name(&mut c)?);
        c.skip_spaces();
        if c.at_end() {
            return Ok(names);
        }
        c.expect(',', "\",\" or end of input")?;
    }
}

/// A key split at the dots outside double quotes (the parts borrow the key).
fn split_key(key: &str) -> Vec<&str> {
    let mut parts = Vec::with_capacity(1);
    let (mut start, mut quoted) = (0, false);
    for (i, b) in key.bytes().enumerate() {
        match b {
            // `->` paths may hold no dots; a dot outside quotes separates embed labels.
            b'.' if !quoted => {
                parts.push(&key[start..i]);
                start = i + 1;
            }
            b'"' => quoted = !quoted,
            _ => {}
        }
    }
    parts.push(&key[start..]);
    parts
}

/// `(embed path, last part, keyword)`: `a.b.order` is `b`'s order inside `a`;
/// `a.not.or` is a negated logic tree of `a` (the last part then is `not.or`).
fn classify<'k>(segments: &[&'k str]) -> (EmbedPath, Cow<'k, str>, Option<Keyword>) {
    let n = segments.len();
    let last = segments[n - 1];
    let unquote = |s: &&str| s.trim_matches('"').to_string();
    let keyword = match last {
        "order" => Some(Keyword::Order),
        "limit" => Some(Keyword::Limit),
        "offset" => Some(Keyword::Offset),
        "or" | "and" => Some(Keyword::Logic),
        _ => None,
    };
    if matches!(keyword, Some(Keyword::Logic)) && n >= 2 && segments[n - 2] == "not" {
        let path = segments[..n - 2].iter().map(unquote).collect();
        return (path, Cow::Owned(format!("not.{last}")), keyword);
    }
    let path = segments[..n - 1].iter().map(unquote).collect();
    (path, Cow::Borrowed(last), keyword)
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
    if !raw.contains(['%', '\0']) {
        // Nothing to decode (most names and values): one copy.
        return Ok(raw.to_string());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    bytes.extend(percent_decode(raw.as_bytes()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> ApiRequest {
        parse("GET", target, []).unwrap()
    }

    fn top_filter(r: &ApiRequest, i: usize) -> &Filter {
        match &r.conditions[i] {
            (path, Condition::Filter(f)) if path.is_empty() => f,
            other => panic!("not a top-level filter: {other:?}"),
        }
    }

    fn eq(value: &str) -> FilterOp {
        FilterOp::Compare {
            op: Comparison::Eq,
            quantifier: None,
            value: value.into(),
        }
    }

    #[test]
    fn plain_get_of_a_table() {
        let r = get("/books");
        assert!(!r.head_only);
        assert_eq!(r.resource, Resource::Relation("books".into()));
        assert_eq!(r.select, [SelectItem::Star]);
        assert!(r.conditions.is_empty() && r.order.is_empty());
        assert_eq!(r.range, RowRange::default());
        assert_eq!(r.media, MediaType::Json);
        assert_eq!(
            r.tx,
            TxMode {
                access: Access::ReadOnly,
                end: TxEnd::Commit,
                isolation: Isolation::ReadCommitted,
            }
        );
    }

    #[test]
    fn root_rpc_and_head() {
        let r = parse("HEAD", "/", []).unwrap();
        assert!(r.head_only);
        assert_eq!(r.resource, Resource::Root);
        assert_eq!(r.media, MediaType::OpenApi);
        assert_eq!(get("/rpc/f").resource, Resource::Function("f".into()));
    }

    #[test]
    fn percent_encoded_names_and_values() {
        let r = get("/my%20table?na%20me=eq.a%20b+c&id=eq.%27");
        assert_eq!(r.resource, Resource::Relation("my table".into()));
        assert_eq!(top_filter(&r, 0).field, Field::named("na me"));
        assert_eq!(top_filter(&r, 0).op, eq("a b c"));
        assert_eq!(top_filter(&r, 1).op, eq("'"));
    }

    #[test]
    fn value_may_contain_dots() {
        assert_eq!(top_filter(&get("/t?v=eq.1.5"), 0).op, eq("1.5"));
    }

    #[test]
    fn embedded_parameters_carry_their_path() {
        let r = get(
            "/projects?select=id,tasks(id)&tasks.name=like.Code*&tasks.order=name.asc\
             &tasks.limit=1&tasks.users.offset=2&child.or=(id.eq.1)&not.or=(id.eq.2)&\"a.b\"=eq.x",
        );
        assert_eq!(r.conditions[0].0, ["tasks"]);
        assert_eq!(r.order[0].0, ["tasks"]);
        assert_eq!(
            r.embed_ranges,
            [
                (
                    vec!["tasks".to_string()],
                    RowRange {
                        offset: 0,
                        limit: Some(1)
                    }
                ),
                (
                    vec!["tasks".to_string(), "users".to_string()],
                    RowRange {
                        offset: 2,
                        limit: None
                    }
                ),
            ]
        );
        assert!(
            matches!(&r.conditions[1], (p, Condition::Logic { or: true, negated: false, .. }) if p == &["child"])
        );
        assert!(
            matches!(&r.conditions[2], (p, Condition::Logic { or: true, negated: true, .. }) if p.is_empty())
        );
        assert_eq!(top_filter(&r, 3).field, Field::named("a.b"));
    }

    #[test]
    fn json_path_filters() {
        let r = get("/t?data->foo->>bar=eq.baz");
        let f = top_filter(&r, 0);
        assert_eq!(f.field.name, "data");
        assert_eq!(f.field.json_path.len(), 2);
    }

    #[test]
    fn unknown_operator_is_a_parse_error() {
        for target in [
            "/t?id=foo.1",
            "/t?id=1",
            "/t?id=is.1",
            "/t?select=id,(",
            "/t?order=id.up",
        ] {
            let e = parse("GET", target, []).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"), "{target}");
        }
    }

    #[test]
    fn hostile_names_stay_names() {
        let r = get("/t?select=%22a%5C%22;drop%22&%22x%3B%20drop%22=eq.1");
        assert_eq!(r.select, [SelectItem::column("a\";drop")]);
        assert_eq!(top_filter(&r, 0).field.name, "x; drop");
        // Unquoted, a `;` is no name character.
        let e = parse("GET", "/t?x%3Bdrop=eq.1", []).unwrap_err();
        assert_eq!(e.code, "PGRST100");
    }

    #[test]
    fn methods_decide_the_action() {
        let body = |m: &str, t: &str| parse_with_body(m, t, [], br#"{"id": 1}"#);
        assert_eq!(body("POST", "/books").unwrap().action, Action::Insert);
        assert_eq!(
            body("PATCH", "/books?id=eq.1").unwrap().action,
            Action::Update
        );
        assert_eq!(
            body("PUT", "/books?id=eq.1").unwrap().action,
            Action::Upsert
        );
        assert_eq!(
            parse("DELETE", "/books", []).unwrap().action,
            Action::Delete
        );
        assert_eq!(body("POST", "/rpc/f").unwrap().action, Action::Call);
        assert_eq!(
            parse("GET", "/rpc/f?a=1", []).unwrap().call_params,
            [("a".to_string(), "1".to_string())]
        );
        let e = parse("DELETE", "/rpc/f", []).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (405, "PGRST101", "Cannot use the DELETE method on RPC")
        );
        let e = parse("TRACE", "/books", []).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (405, "PGRST117"));
        let e = body("PUT", "/books?id=eq.1&limit=1").unwrap_err();
        assert_eq!(e.code, "PGRST114");
        assert_eq!(
            body("POST", "/books?columns=id,%22a%20b%22")
                .unwrap()
                .columns
                .unwrap(),
            ["id", "a b"]
        );
        assert_eq!(
            body("POST", "/books?columns=").unwrap_err().code,
            "PGRST100"
        );
        let r = parse_with_body("POST", "/books", [("content-profile", "v2")], b"{}").unwrap();
        assert_eq!(r.profile.as_deref(), Some("v2"));
    }

    #[test]
    fn format_parameters_are_never_filters_or_arguments() {
        let r = get("/books?callback=cb&jsonp=x.y&type=text/csv&id=eq.1");
        assert_eq!(r.conditions.len(), 1);
        assert_eq!(top_filter(&r, 0).field.name, "id");
        assert_eq!(r.media, MediaType::Csv);
        let call = get("/rpc/f?a=1&callback=cb&%74ype=application/json");
        assert_eq!(call.call_params, [("a".to_string(), "1".to_string())]);
        // Embedded, they are filters as before.
        assert_eq!(get("/t?e.type=eq.x").conditions[0].0, ["e"]);
    }

    #[test]
    fn type_negotiates_like_accept() {
        let r = parse("GET", "/t?type=text/csv", [("accept", "application/json")]).unwrap();
        assert_eq!(r.media, MediaType::Csv);
        // Planning decides (a media handler may produce it), else 406.
        let e = parse("GET", "/t?type=text/html", [])
            .unwrap()
            .accepted
            .check()
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"));
        assert_eq!(
            parse("GET", "/t?type=html", []).unwrap_err().code,
            "PGRST100"
        );
        // A call keeps it for planning (a raw text/bytea result).
        let r = get("/rpc/page?type=text/html");
        assert_eq!(r.format.raw_type.as_deref(), Some("text/html"));
        assert_eq!(get("/rpc/page").format, Format::default());
    }

    #[test]
    fn extensions_act_as_accept_unless_the_whole_name_exists() {
        let r = parse("GET", "/books.csv", [("accept", "application/json")]).unwrap();
        assert_eq!(r.resource, Resource::Relation("books".into()));
        assert_eq!(r.media, MediaType::Csv);
        let mut kept = r.clone();
        kept.resolve_extension(|_| false);
        assert_eq!(kept.resource, Resource::Relation("books".into()));
        assert_eq!((kept.media, kept.format.extension), (MediaType::Csv, None));
        let mut whole = r.clone();
        whole.resolve_extension(|r| *r == Resource::Relation("books.csv".into()));
        assert_eq!(whole.resource, Resource::Relation("books.csv".into()));
        assert_eq!(whole.media, MediaType::Json);
        let r = get("/rpc/f.json?type=text/csv");
        assert_eq!(r.resource, Resource::Function("f".into()));
        assert_eq!(r.media, MediaType::Csv);
        // Accept is only consulted when the whole name wins.
        let mut r = parse("GET", "/books.json", [("accept", "image/png")]).unwrap();
        assert_eq!(r.media, MediaType::Json);
        r.resolve_extension(|_| true);
        assert_eq!(r.accepted.check().unwrap_err().code, "PGRST107");
        let mut plain = get("/books");
        plain.resolve_extension(|_| panic!("no lookup without an extension"));
    }

    #[test]
    fn nested_paths_are_invalid() {
        assert_eq!(parse("GET", "/a/b", []).unwrap_err().code, "PGRST125");
    }

    #[test]
    fn profiles_choose_among_exposed_schemas() {
        let schemas = vec!["api".to_string(), "v2".to_string()];
        assert_eq!(choose_schema(None, &schemas).unwrap(), "api");
        assert_eq!(choose_schema(Some("v2"), &schemas).unwrap(), "v2");
        let e = choose_schema(Some("nope"), &schemas).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST106"));
        assert_eq!(e.message, "Invalid schema: nope");
        let r = parse("GET", "/t", [("accept-profile", "v2")]).unwrap();
        assert_eq!(r.profile.as_deref(), Some("v2"));
    }

    #[test]
    fn accept_decides_the_media_type() {
        let r = parse("GET", "/t", [("accept", "text/csv")]).unwrap();
        assert_eq!(r.media, MediaType::Csv);
        let r = parse("GET", "/t", [("accept", "image/png")]).unwrap();
        assert_eq!(r.accepted.ranges.as_deref(), Some("image/png"));
        assert_eq!(r.accepted.check().unwrap_err().code, "PGRST107");
        // The API description has no handlers: refused at once.
        let e = parse("GET", "/", [("accept", "image/png")]).unwrap_err();
        assert_eq!(e.code, "PGRST107");
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
    }

    #[test]
    fn multibyte_text_and_plus_decode() {
        let r = get("/b%C3%BCcher?t%C3%AEtle=eq.%E2%82%AC+x&a=eq.1%2B1");
        assert_eq!(r.resource, Resource::Relation("bücher".into()));
        assert_eq!(top_filter(&r, 0).field.name, "tîtle");
        assert_eq!(top_filter(&r, 0).op, eq("€ x"));
        assert_eq!(top_filter(&r, 1).op, eq("1+1"));
        // A `+` in the path is a plus.
        assert_eq!(get("/a+b").resource, Resource::Relation("a+b".into()));
    }

    #[test]
    fn limit_offset_and_the_range_header_make_the_row_range() {
        assert_eq!(
            get("/t?limit=3&offset=2").range,
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
