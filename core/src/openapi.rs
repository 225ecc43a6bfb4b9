//! The OpenAPI 2.0 (Swagger) document PostgREST v16 serves at `GET /` for an exposed schema
//! (src/PostgREST/Response/OpenAPI.hs). Clients and tools (Swagger UI, postgrest-js type
//! generators) read exact names out of it, so every key, `$ref` and type/format pair follows
//! PostgREST's generator rather than what OpenAPI would allow.
//!
//! The document is a function of the schema cache plus what only the server knows: the host
//! it is reached at, its version, the schema's COMMENT and, in PostgREST's default
//! `follow-privileges` mode, which relations and functions the requesting role may use
//! ([`Visible`]). The SQL to learn the last two is here as constants, so the extension only
//! runs them.

use crate::schema_cache::{
    Cardinality, Column, Function, Parameter, QualifiedName, Relation, RelationKind, Relationship,
    SchemaCache, Volatility,
};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// What the document says about the server itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerInfo<'a> {
    /// `host[:port]` clients reach the API at (PostgREST prints its `server-host:server-port`).
    pub host: &'a str,
    /// `"http"`; anything else is printed as `"https"`, as PostgREST does.
    pub scheme: &'a str,
    /// pg_rest's version, e.g. `"0.1.0"` (`info.version`).
    pub version: &'a str,
    /// The schema's COMMENT ([`SCHEMA_COMMENT_SQL`]): first line → `info.title`, the rest →
    /// `info.description`.
    pub schema_comment: Option<&'a str>,
    /// PostgREST's `openapi-security-active`: declare the JWT `Authorization` header.
    pub security_active: bool,
}

/// Which relations and functions of the schema the document shows.
#[derive(Debug, Clone, Copy)]
pub enum Visible<'a> {
    /// Everything in the cache (PostgREST's `openapi-mode = ignore-privileges`).
    All,
    /// Only these names (`follow-privileges`, the default): the rows of
    /// [`ACCESSIBLE_RELATIONS_SQL`] and [`ACCESSIBLE_FUNCTIONS_SQL`] run as the request's role.
    Only {
        relations: &'a HashSet<String>,
        functions: &'a HashSet<String>,
    },
}

impl Visible<'_> {
    fn relation(&self, name: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Only { relations, .. } => relations.contains(name),
        }
    }

    fn function(&self, name: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Only { functions, .. } => functions.contains(name),
        }
    }
}

/// The schema's COMMENT (`$1`: the schema name), PostgREST's `schemaDescription`.
pub const SCHEMA_COMMENT_SQL: &str = "\
SELECT pg_catalog.obj_description(n.oid, 'pg_namespace')
FROM pg_catalog.pg_namespace n WHERE n.nspname = $1";

/// Names of the relations of schema `$1` the current role may use in any way, PostgREST's
/// `accessibleTables`: run it after `SET ROLE` to the request's role.
pub const ACCESSIBLE_RELATIONS_SQL: &str = "\
SELECT c.relname::text
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'r', 'm', 'f', 'p')
  AND n.nspname = $1
  AND (pg_catalog.pg_has_role(c.relowner, 'USAGE')
    OR pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
    OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
  AND NOT c.relispartition";

/// Names of the functions of schema `$1` the current role may execute, PostgREST's
/// `accessibleFuncs`: run it after `SET ROLE` to the request's role.
pub const ACCESSIBLE_FUNCTIONS_SQL: &str = "\
SELECT DISTINCT p.proname::text
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND p.prokind = 'f'
  AND pg_catalog.has_function_privilege(p.oid, 'execute')";

/// PostgREST's docs version: `externalDocs` points at the dialect pg_rest speaks.
const DOCS_URL: &str = "https://postgrest.org/en/v16/references/api.html";

/// Media types of the whole API (PostgREST's top-level `consumes`/`produces`).
const API_MEDIA_TYPES: [&str; 4] = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
    "text/csv",
];

/// Media types of an RPC operation.
const RPC_MEDIA_TYPES: [&str; 3] = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
];

/// The document for every relation and function of `schema` in the cache, as JSON text.
pub fn document(cache: &SchemaCache, schema: &str, server: &ServerInfo) -> String {
    document_visible(cache, schema, server, Visible::All)
}

/// The document for what `visible` lets the requesting role see, as JSON text.
pub fn document_visible(
    cache: &SchemaCache,
    schema: &str,
    server: &ServerInfo,
    visible: Visible,
) -> String {
    let relations: Vec<&Relation> = cache
        .relations_in(schema)
        .into_iter()
        .filter(|r| visible.relation(&r.name))
        .collect();
    let functions: Vec<&Function> = cache
        .functions_in(schema)
        .into_iter()
        .filter(|f| visible.function(&f.name) && is_documented(f))
        .collect();
    spec(cache, &relations, &functions, server).to_string()
}

/// The top-level object, keys in PostgREST's order; empty maps are left out, as swagger2's
/// encoder does (except `paths`, which always holds `/`).
fn spec(
    cache: &SchemaCache,
    relations: &[&Relation],
    functions: &[&Function],
    server: &ServerInfo,
) -> Value {
    let mut doc = Map::new();
    doc.insert("swagger".into(), json!("2.0"));
    doc.insert("info".into(), info(server));
    doc.insert(
        "externalDocs".into(),
        json!({"description": "PostgREST Documentation", "url": DOCS_URL}),
    );
    doc.insert("host".into(), json!(server.host));
    doc.insert("basePath".into(), json!("/"));
    let scheme = if server.scheme == "http" {
        "http"
    } else {
        "https"
    };
    doc.insert("schemes".into(), json!([scheme]));
    doc.insert("consumes".into(), json!(API_MEDIA_TYPES));
    doc.insert("produces".into(), json!(API_MEDIA_TYPES));
    doc.insert("paths".into(), Value::Object(paths(relations, functions)));
    let definitions: Map<String, Value> = relations
        .iter()
        .map(|r| (r.name.clone(), definition(cache, r)))
        .collect();
    if !definitions.is_empty() {
        doc.insert("definitions".into(), Value::Object(definitions));
    }
    doc.insert("parameters".into(), Value::Object(parameters(relations)));
    if server.security_active {
        doc.insert("securityDefinitions".into(), security_definitions());
        doc.insert("security".into(), json!([{"JWT": []}]));
    }
    Value::Object(doc)
}

/// `info`: title and description from the schema comment, PostgREST's defaults without one.
fn info(server: &ServerInfo) -> Value {
    let (title, description) = match server.schema_comment {
        Some(comment) => {
            let (t, d) = summary_and_rest(comment);
            (t.to_string(), d.to_string())
        }
        None => (
            "PostgREST API".to_string(),
            "This is a dynamic API generated by PostgREST".to_string(),
        ),
    };
    json!({"description": description, "title": title, "version": server.version})
}

fn security_definitions() -> Value {
    json!({"JWT": {
        "description": "Add the token prepending \"Bearer \" (without quotes) to it",
        "in": "header",
        "name": "Authorization",
        "type": "apiKey",
    }})
}

/// A comment's first line (summary) and the rest without its leading newlines (PostgREST's
/// `breakOn "\n"` then `dropWhile (== '\n')`), so a blank line may separate the two.
fn summary_and_rest(comment: &str) -> (&str, &str) {
    match comment.split_once('\n') {
        Some((first, rest)) => (first, rest.trim_start_matches('\n')),
        None => (comment, ""),
    }
}

/// PostgREST documents only functions it could call: not triggers, and none whose unnamed
/// arguments could not come from a body (one unnamed argument of a raw-body type is fine).
fn is_documented(f: &Function) -> bool {
    if f.return_type == "trigger" {
        return false;
    }
    let unnamed: Vec<&Parameter> = f.params.iter().filter(|p| p.name.is_empty()).collect();
    match unnamed.as_slice() {
        [] => true,
        [p] => matches!(
            p.type_name.as_str(),
            "bytea" | "json" | "jsonb" | "text" | "xml"
        ),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL types → Swagger types

/// PostgREST's `toSwaggerType`: `None` for json/jsonb (any JSON value), arrays by their
/// `[]` suffix, and everything unknown is a string.
fn swagger_type(pg_type: &str) -> Option<&'static str> {
    match pg_type {
        "character varying" | "character" | "text" => Some("string"),
        "boolean" => Some("boolean"),
        "smallint" | "integer" | "bigint" => Some("integer"),
        "numeric" | "real" | "double precision" => Some("number"),
        "json" | "jsonb" => None,
        t if t.ends_with("[]") => Some("array"),
        _ => Some("string"),
    }
}

/// PostgREST's `toSwaggerFormat`: Swagger's integer formats, otherwise the type's own name.
fn swagger_format(pg_type: &str) -> &str {
    match pg_type {
        "smallint" | "integer" => "int32",
        "bigint" => "int64",
        t => t,
    }
}

/// The element type of an array type name.
fn element_type(pg_type: &str) -> &str {
    pg_type.strip_suffix("[]").unwrap_or(pg_type)
}

/// `items` of an array-typed property: the element's type only (`{}` for json elements).
fn property_items(pg_type: &str) -> Option<Value> {
    if swagger_type(pg_type) != Some("array") {
        return None;
    }
    let mut items = Map::new();
    if let Some(t) = swagger_type(element_type(pg_type)) {
        items.insert("type".into(), json!(t));
    }
    Some(Value::Object(items))
}

/// `type`, `format` and `items` of a property or body argument of type `pg_type`.
fn typed_schema(pg_type: &str) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("format".into(), json!(swagger_format(pg_type)));
    if let Some(t) = swagger_type(pg_type) {
        s.insert("type".into(), json!(t));
    }
    if let Some(items) = property_items(pg_type) {
        s.insert("items".into(), items);
    }
    s
}

/// Built-in types a domain's base may be: PostgREST describes a domain over one of these by
/// its base type (it checks the base type's schema is `pg_catalog`; the model keeps names).
const CATALOG_TYPES: &[&str] = &[
    "bigint",
    "bit",
    "bit varying",
    "boolean",
    "box",
    "bytea",
    "character",
    "character varying",
    "cidr",
    "circle",
    "date",
    "daterange",
    "double precision",
    "inet",
    "int4range",
    "int8range",
    "integer",
    "interval",
    "json",
    "jsonb",
    "jsonpath",
    "line",
    "lseg",
    "macaddr",
    "macaddr8",
    "money",
    "numeric",
    "numrange",
    "oid",
    "path",
    "point",
    "polygon",
    "real",
    "smallint",
    "text",
    "time with time zone",
    "time without time zone",
    "timestamp with time zone",
    "timestamp without time zone",
    "tsquery",
    "tsrange",
    "tstzrange",
    "tsvector",
    "uuid",
    "xml",
];

/// The type name PostgREST describes a column by: its own, or a domain's built-in base type.
fn column_type(c: &Column) -> &str {
    let base = &c.base_type;
    if !base.is_empty() && *base != c.type_name && CATALOG_TYPES.contains(&element_type(base)) {
        base
    } else {
        &c.type_name
    }
}

/// A routine argument's type as PostgREST describes it: `character` and `bit` take any length
/// as arguments, so they are described as their varying forms.
fn argument_type(p: &Parameter) -> &str {
    match p.type_name.as_str() {
        "bit" => "bit varying",
        "bit[]" => "bit varying[]",
        "character" => "character varying",
        "character[]" => "character varying[]",
        t => t,
    }
}

/// PostgREST's `parseDefault`: a string-typed default loses its `::type` cast and quotes;
/// the result is kept only if it is JSON (so `nextval(…)` on an integer shows no default).
fn default_value(pg_type: &str, default: &str) -> Option<Value> {
    let text = if swagger_type(pg_type) == Some("string") {
        let cast = format!("::{pg_type}");
        let bare = match default.strip_suffix(cast.as_str()) {
            Some(d) => d.trim_matches('\''),
            None => default,
        };
        format!("\"{bare}\"")
    } else {
        default.to_string()
    };
    serde_json::from_str(&text).ok()
}

// ---------------------------------------------------------------------------------------
// definitions

/// A relation's definition: its columns as properties; `required` lists the NOT NULL columns
/// (views have none: PostgreSQL never marks a view's columns NOT NULL).
fn definition(cache: &SchemaCache, r: &Relation) -> Value {
    let mut def = Map::new();
    if let Some(comment) = &r.comment {
        def.insert("description".into(), json!(comment));
    }
    def.insert("type".into(), json!("object"));
    let properties: Map<String, Value> = r
        .columns
        .iter()
        .map(|c| (c.name.clone(), property(cache, r, c)))
        .collect();
    if !properties.is_empty() {
        def.insert("properties".into(), Value::Object(properties));
    }
    let required: Vec<&str> = r
        .columns
        .iter()
        .filter(|c| !c.nullable)
        .map(|c| c.name.as_str())
        .collect();
    if !required.is_empty() {
        def.insert("required".into(), json!(required));
    }
    Value::Object(def)
}

/// One column: PostgREST's `makeProperty`.
fn property(cache: &SchemaCache, r: &Relation, c: &Column) -> Value {
    let ty = column_type(c);
    let mut s = typed_schema(ty);
    if let Some(d) = c.default.as_deref().and_then(|d| default_value(ty, d)) {
        s.insert("default".into(), d);
    }
    if let Some(d) = column_description(cache, r, c) {
        s.insert("description".into(), json!(d));
    }
    if !c.enum_values.is_empty() {
        s.insert("enum".into(), json!(c.enum_values));
    }
    if let Some(n) = c.max_length {
        s.insert("maxLength".into(), json!(n));
    }
    Value::Object(s)
}

/// The column's comment, then PostgREST's machine-readable notes on keys (`<pk/>`,
/// `<fk table='…' column='…'/>`, which clients parse to find relationships).
fn column_description(cache: &SchemaCache, r: &Relation, c: &Column) -> Option<String> {
    let mut notes = vec!["Note:".to_string()];
    if r.primary_key.contains(&c.name) {
        notes.push("This is a Primary Key.<pk/>".into());
    }
    if let Some((table, column)) = foreign_key_target(cache, r, &c.name) {
        notes.push(format!(
            "This is a Foreign Key to `{table}.{column}`.<fk table='{table}' column='{column}'/>"
        ));
    }
    if notes.len() == 1 {
        return c.comment.clone();
    }
    let comment = c
        .comment
        .as_deref()
        .map(|d| format!("{d}\n\n"))
        .unwrap_or_default();
    Some(comment + &notes.join("\n"))
}

/// The `(table, column)` a single-column foreign key on `column` points to, within the same
/// schema: tables are preferred to views showing the same key, as PostgREST sorts them.
fn foreign_key_target(cache: &SchemaCache, r: &Relation, column: &str) -> Option<(String, String)> {
    let mut candidates: Vec<&Relationship> = cache
        .relationships_of(&r.qualified())
        .iter()
        .filter(|rel| rel.target.schema == r.schema)
        .collect();
    candidates.sort_by_key(|rel| is_view(cache, &rel.target));
    candidates.into_iter().find_map(|rel| {
        let pairs = match &rel.cardinality {
            Cardinality::ManyToOne { columns, .. } => columns,
            Cardinality::OneToOne {
                columns,
                origin_holds_key: true,
                ..
            } => columns,
            _ => return None,
        };
        match pairs.as_slice() {
            [(origin, target)] if origin == column => {
                Some((rel.target.name.clone(), target.clone()))
            }
            _ => None,
        }
    })
}

fn is_view(cache: &SchemaCache, name: &QualifiedName) -> bool {
    cache
        .relation(&name.schema, &name.name)
        .is_some_and(|r| matches!(r.kind, RelationKind::View | RelationKind::MaterializedView))
}

// ---------------------------------------------------------------------------------------
// parameters

/// The shared parameters operations refer to by `$ref`: PostgREST's `makeParamDefs`.
fn parameters(relations: &[&Relation]) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("preferParams".into(), prefer(&[]));
    params.insert(
        "preferReturn".into(),
        prefer(&["return=representation", "return=minimal", "return=none"]),
    );
    params.insert("preferCount".into(), prefer(&["count=none"]));
    params.insert(
        "preferPost".into(),
        prefer(&[
            "return=representation",
            "return=minimal",
            "return=none",
            "resolution=ignore-duplicates",
            "resolution=merge-duplicates",
        ]),
    );
    let plain = [
        ("select", "select", "Filtering Columns", "query"),
        ("on_conflict", "on_conflict", "On Conflict", "query"),
        ("order", "order", "Ordering", "query"),
        ("range", "Range", "Limiting and Pagination", "header"),
        (
            "rangeUnit",
            "Range-Unit",
            "Limiting and Pagination",
            "header",
        ),
        ("offset", "offset", "Limiting and Pagination", "query"),
        ("limit", "limit", "Limiting and Pagination", "query"),
    ];
    for (key, name, description, location) in plain {
        let mut p = string_param(name, Some(description), location);
        if key == "rangeUnit" {
            p.insert("default".into(), json!("items"));
        }
        params.insert(key.into(), Value::Object(p));
    }
    for r in relations {
        params.insert(format!("body.{}", r.name), body_param(&r.name));
        for c in &r.columns {
            let p = string_param(&c.name, c.comment.as_deref(), "query");
            params.insert(format!("rowFilter.{}.{}", r.name, c.name), Value::Object(p));
        }
    }
    params
}

/// An optional string parameter in the query string or a header.
fn string_param(name: &str, description: Option<&str>, location: &str) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("name".into(), json!(name));
    if let Some(d) = description {
        p.insert("description".into(), json!(d));
    }
    p.insert("required".into(), json!(false));
    p.insert("in".into(), json!(location));
    p.insert("type".into(), json!("string"));
    p
}

/// A `Prefer` header parameter offering `values` (no `enum` when there are none).
fn prefer(values: &[&str]) -> Value {
    let mut p = string_param("Prefer", Some("Preference"), "header");
    if !values.is_empty() {
        p.insert("enum".into(), json!(values));
    }
    Value::Object(p)
}

/// A relation's rows as a request body.
fn body_param(table: &str) -> Value {
    json!({
        "name": table,
        "description": table,
        "required": false,
        "in": "body",
        "schema": {"$ref": format!("#/definitions/{table}")},
    })
}

fn param_ref(name: &str) -> Value {
    json!({"$ref": format!("#/parameters/{name}")})
}

// ---------------------------------------------------------------------------------------
// paths

/// `/`, then every relation, then every function (a later overload replaces an earlier one:
/// one path per name, as in PostgREST).
fn paths(relations: &[&Relation], functions: &[&Function]) -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert("/".into(), root_path());
    for r in relations {
        paths.insert(format!("/{}", r.name), relation_path(r));
    }
    for f in functions {
        paths.insert(format!("/rpc/{}", f.name), function_path(f));
    }
    paths
}

fn root_path() -> Value {
    json!({"get": {
        "tags": ["Introspection"],
        "summary": "OpenAPI description (this document)",
        "produces": ["application/openapi+json", "application/json"],
        "responses": {"200": {"description": "OK"}},
    }})
}

/// An operation's `tags`, `summary` and `description` (the comment's first line and the
/// rest; no description key when there is no rest).
fn operation(tag: &str, comment: Option<&str>) -> Map<String, Value> {
    let mut op = Map::new();
    op.insert("tags".into(), json!([tag]));
    if let Some(comment) = comment {
        let (summary, rest) = summary_and_rest(comment);
        op.insert("summary".into(), json!(summary));
        if !rest.is_empty() {
            op.insert("description".into(), json!(rest));
        }
    }
    op
}

fn with(mut op: Map<String, Value>, parameters: Vec<Value>, responses: Value) -> Value {
    op.insert("parameters".into(), Value::Array(parameters));
    op.insert("responses".into(), responses);
    Value::Object(op)
}

/// A relation's operations: GET always; POST, PATCH and DELETE all three when any write is
/// possible (PostgREST does not tell them apart).
fn relation_path(r: &Relation) -> Value {
    let tn = r.name.as_str();
    let op = || operation(tn, r.comment.as_deref());
    let filters: Vec<Value> = r
        .columns
        .iter()
        .map(|c| param_ref(&format!("rowFilter.{tn}.{}", c.name)))
        .collect();
    let refs = |names: &[&str]| names.iter().map(|n| param_ref(n)).collect::<Vec<_>>();
    let body = format!("body.{tn}");
    let no_content = json!({"204": {"description": "No Content"}});

    let get_params = [
        filters.clone(),
        refs(&[
            "select",
            "order",
            "range",
            "rangeUnit",
            "offset",
            "limit",
            "preferCount",
        ]),
    ]
    .concat();
    let get_responses = json!({
        "200": {
            "description": "OK",
            "schema": {"type": "array", "items": {"$ref": format!("#/definitions/{tn}")}},
        },
        "206": {"description": "Partial Content"},
    });
    let mut item = Map::new();
    item.insert("get".into(), with(op(), get_params, get_responses));
    if r.insertable || r.updatable || r.deletable {
        let post_params = refs(&[body.as_str(), "select", "preferPost"]);
        let created = json!({"201": {"description": "Created"}});
        item.insert("post".into(), with(op(), post_params, created));
        let patch_params = [filters.clone(), refs(&[body.as_str(), "preferReturn"])].concat();
        item.insert("patch".into(), with(op(), patch_params, no_content.clone()));
        let delete_params = [filters, refs(&["preferReturn"])].concat();
        item.insert("delete".into(), with(op(), delete_params, no_content));
    }
    Value::Object(item)
}

/// A function's operations: POST always, GET too unless it is VOLATILE (PostgREST only lets
/// GET call functions that cannot write).
fn function_path(f: &Function) -> Value {
    let op = || {
        let mut op = operation(&format!("(rpc) {}", f.name), f.comment.as_deref());
        op.insert("produces".into(), json!(RPC_MEDIA_TYPES));
        op
    };
    let ok = json!({"200": {"description": "OK"}});
    let mut item = Map::new();
    if f.volatility != Volatility::Volatile {
        let get_params = f.params.iter().map(query_argument).collect();
        item.insert("get".into(), with(op(), get_params, ok.clone()));
    }
    let args = json!({
        "name": "args",
        "required": true,
        "in": "body",
        "schema": arguments_schema(f),
    });
    item.insert(
        "post".into(),
        with(op(), vec![args, param_ref("preferParams")], ok),
    );
    Value::Object(item)
}

/// An argument in GET's query string. Arrays are one `{…}` literal (a string), but a VARIADIC
/// argument repeats (`?v=a&v=b`): `collectionFormat: multi` with the element type.
fn query_argument(p: &Parameter) -> Value {
    let ty = argument_type(p);
    let mut q = Map::new();
    q.insert("name".into(), json!(p.name));
    q.insert("required".into(), json!(!p.has_default));
    q.insert("in".into(), json!("query"));
    if p.variadic {
        let element = element_type(ty);
        let mut items = Map::new();
        items.insert("format".into(), json!(swagger_format(element)));
        if let Some(t) = swagger_type(element) {
            items.insert("type".into(), json!(t));
        }
        q.insert("type".into(), json!(swagger_type(ty).unwrap_or("string")));
        q.insert("items".into(), Value::Object(items));
        q.insert("collectionFormat".into(), json!("multi"));
    } else {
        let t = match swagger_type(ty) {
            Some("array") | None => "string",
            Some(t) => t,
        };
        q.insert("format".into(), json!(swagger_format(ty)));
        q.insert("type".into(), json!(t));
    }
    Value::Object(q)
}

/// POST's body: an object of the arguments; those without a DEFAULT are required.
fn arguments_schema(f: &Function) -> Value {
    let mut s = Map::new();
    if let Some(comment) = &f.comment {
        s.insert("description".into(), json!(comment));
    }
    s.insert("type".into(), json!("object"));
    let properties: Map<String, Value> = f
        .params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                Value::Object(typed_schema(argument_type(p))),
            )
        })
        .collect();
    if !properties.is_empty() {
        s.insert("properties".into(), Value::Object(properties));
    }
    let required: Vec<&str> = f
        .params
        .iter()
        .filter(|p| !p.has_default)
        .map(|p| p.name.as_str())
        .collect();
    if !required.is_empty() {
        s.insert("required".into(), json!(required));
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_cache::{build, CatalogRows, RawColumn, RawForeignKey, RawRelation};

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_name: ty.into(),
            base_type: ty.into(),
            nullable: true,
            ..Column::default()
        }
    }

    fn not_null(c: Column) -> Column {
        Column {
            nullable: false,
            ..c
        }
    }

    fn commented(c: Column, comment: &str) -> Column {
        Column {
            comment: Some(comment.into()),
            ..c
        }
    }

    fn defaulted(c: Column, default: &str) -> Column {
        Column {
            default: Some(default.into()),
            ..c
        }
    }

    fn param(name: &str, ty: &str, has_default: bool) -> Parameter {
        Parameter {
            name: name.into(),
            type_name: ty.into(),
            has_default,
            variadic: false,
        }
    }

    fn function(
        name: &str,
        params: Vec<Parameter>,
        volatility: Volatility,
        comment: Option<&str>,
    ) -> Function {
        Function {
            schema: "test".into(),
            name: name.into(),
            params,
            return_type: "json".into(),
            volatility,
            comment: comment.map(String::from),
            ..Function::default()
        }
    }

    /// Catalog rows for a relation of schema `test` and its columns.
    struct Rows(CatalogRows);

    impl Rows {
        fn relation(
            &mut self,
            oid: u32,
            kind: char,
            name: &str,
            comment: Option<&str>,
            columns: Vec<Column>,
        ) {
            let writable = name != "read_only";
            self.0.relations.push(RawRelation {
                oid,
                relation: Relation {
                    schema: "test".into(),
                    name: name.into(),
                    comment: comment.map(String::from),
                    insertable: writable,
                    updatable: writable,
                    deletable: writable,
                    ..Relation::default()
                },
                kind,
                row_type: format!("test.{name}"),
                exposed: true,
            });
            for (i, column) in columns.into_iter().enumerate() {
                self.0.columns.push(RawColumn {
                    relation_oid: oid,
                    attnum: i as i16 + 1,
                    column,
                });
            }
        }
    }

    /// The conformance fixtures' `test` objects the openapi cases read.
    fn fixture() -> SchemaCache {
        let mut rows = Rows(CatalogRows::default());
        rows.relation(
            1,
            'r',
            "entities",
            None,
            vec![not_null(col("id", "integer")), col("name", "text")],
        );
        rows.relation(
            2,
            'r',
            "child_entities",
            Some("child_entities comment"),
            vec![
                not_null(commented(col("id", "integer"), "child_entities id comment")),
                commented(
                    col("name", "text"),
                    "child_entities name comment. Can be longer than sixty-three characters long",
                ),
                col("parent_id", "integer"),
            ],
        );
        rows.relation(
            3,
            'v',
            "child_entities_view",
            Some("child_entities_view comment"),
            vec![
                commented(col("id", "integer"), "child_entities_view id comment"),
                col("name", "text"),
                col("parent_id", "integer"),
            ],
        );
        rows.relation(
            4,
            'r',
            "grandchild_entities",
            Some("grandchild_entities summary\n\ngrandchild_entities description\nthat spans\nmultiple lines"),
            vec![not_null(col("id", "integer")), col("parent_id", "integer")],
        );
        let types = [
            "character varying",
            "character",
            "text",
            "boolean",
            "smallint",
            "integer",
            "bigint",
            "numeric",
            "real",
            "double precision",
            "json",
            "jsonb",
        ];
        let mut columns: Vec<Column> = types
            .iter()
            .map(|t| col(&format!("a_{}", t.replace(' ', "_")), t))
            .collect();
        columns[1].max_length = Some(1);
        for (name, ty) in [
            ("a_text_arr", "text[]"),
            ("a_int_arr", "integer[]"),
            ("a_bool_arr", "boolean[]"),
            ("a_char_arr", "character[]"),
            ("a_varchar_arr", "character varying[]"),
            ("a_bigint_arr", "bigint[]"),
            ("a_numeric_arr", "numeric[]"),
            ("a_json_arr", "json[]"),
            ("a_jsonb_arr", "jsonb[]"),
        ] {
            columns.push(col(name, ty));
        }
        rows.relation(5, 'r', "openapi_types", None, columns);
        rows.relation(
            6,
            'r',
            "openapi_defaults",
            None,
            vec![
                defaulted(col("text", "text"), "'default'::text"),
                defaulted(col("boolean", "boolean"), "false"),
                defaulted(col("integer", "integer"), "42"),
                defaulted(col("numeric", "numeric"), "42.2"),
                defaulted(col("date", "date"), "'1900-01-01'::date"),
                defaulted(
                    col("time", "time without time zone"),
                    "'13:00:00'::time without time zone",
                ),
                defaulted(col("serial", "integer"), "nextval('test.seq'::regclass)"),
            ],
        );
        let mut enum_column = not_null(col("enum", "test.enum_menagerie_type"));
        enum_column.enum_values = vec!["foo".into(), "bar".into()];
        rows.relation(7, 'r', "menagerie", None, vec![enum_column]);
        rows.relation(8, 'v', "read_only", None, vec![col("x", "text")]);
        rows.0.keys = vec![(1, true, vec![1]), (2, true, vec![1]), (4, true, vec![1])];
        rows.0.foreign_keys = vec![
            RawForeignKey {
                name: "child_entities_parent_id_fkey".into(),
                origin_oid: 2,
                origin_attnums: vec![3],
                target_oid: 1,
                target_attnums: vec![1],
            },
            RawForeignKey {
                name: "grandchild_entities_parent_id_fkey".into(),
                origin_oid: 4,
                origin_attnums: vec![2],
                target_oid: 2,
                target_attnums: vec![1],
            },
        ];
        rows.0.view_columns = vec![(3, 1, 2, 1), (3, 2, 2, 2), (3, 3, 2, 3)];
        let mut variadic = param("v", "text[]", true);
        variadic.variadic = true;
        let varied = vec![
            param("double", "double precision", false),
            param("text_arr", "text[]", false),
            param("char_arr", "character[]", false),
            param("integer", "integer", true),
            param("json", "json", true),
        ];
        rows.0.functions = vec![
            function(
                "varied_arguments_openapi",
                varied,
                Volatility::Immutable,
                Some("An RPC function\n\nJust a test for RPC function arguments"),
            ),
            function(
                "variadic_param",
                vec![variadic],
                Volatility::Immutable,
                None,
            ),
            function("reset_table", vec![], Volatility::Volatile, None),
            function("getallusers", vec![], Volatility::Stable, None),
            Function {
                return_type: "trigger".into(),
                ..function("a_trigger", vec![], Volatility::Volatile, None)
            },
            function(
                "unnamed_pair",
                vec![param("", "integer", false), param("", "text", false)],
                Volatility::Stable,
                None,
            ),
        ];
        build(rows.0)
    }

    const SERVER: ServerInfo = ServerInfo {
        host: "127.0.0.1:3000",
        scheme: "http",
        version: "0.1.0",
        schema_comment: Some("My API title\n\nMy API description\nthat spans\nmultiple lines"),
        security_active: false,
    };

    fn doc() -> Value {
        serde_json::from_str(&document(&fixture(), "test", &SERVER)).unwrap()
    }

    /// The value at a path of keys (array indexes as numbers).
    fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.split('|')
            .fold(v, |v, key| match key.parse::<usize>() {
                Ok(i) if v.is_array() => &v[i],
                _ => &v[key],
            })
    }

    #[test]
    fn top_level() {
        let d = doc();
        assert_eq!(d["swagger"], "2.0");
        assert_eq!(
            d["info"],
            json!({"title": "My API title", "description": "My API description\nthat spans\nmultiple lines", "version": "0.1.0"})
        );
        assert_eq!(
            d["externalDocs"]["url"],
            "https://postgrest.org/en/v16/references/api.html"
        );
        assert_eq!(d["externalDocs"]["description"], "PostgREST Documentation");
        assert_eq!(d["host"], "127.0.0.1:3000");
        assert_eq!(d["basePath"], "/");
        assert_eq!(d["schemes"], json!(["http"]));
        assert_eq!(d["consumes"], json!(API_MEDIA_TYPES));
        assert_eq!(
            d["produces"][1],
            "application/vnd.pgrst.object+json;nulls=stripped"
        );
        assert_eq!(
            at(&d, "paths|/|get|produces"),
            &json!(["application/openapi+json", "application/json"])
        );
        // 1679: no security unless asked for.
        assert!(d.get("security").is_none() && d.get("securityDefinitions").is_none());
    }

    #[test]
    fn default_title_and_security() {
        // 1654 and 1680.
        let server = ServerInfo {
            schema_comment: None,
            security_active: true,
            scheme: "https",
            ..SERVER
        };
        let d: Value = serde_json::from_str(&document(&fixture(), "test", &server)).unwrap();
        assert_eq!(d["info"]["title"], "PostgREST API");
        assert_eq!(
            d["info"]["description"],
            "This is a dynamic API generated by PostgREST"
        );
        assert_eq!(d["schemes"], json!(["https"]));
        assert_eq!(d["security"], json!([{"JWT": []}]));
        let jwt = &d["securityDefinitions"]["JWT"];
        assert_eq!(jwt["type"], "apiKey");
        assert_eq!(jwt["in"], "header");
        assert_eq!(jwt["name"], "Authorization");
        assert_eq!(
            jwt["description"],
            "Add the token prepending \"Bearer \" (without quotes) to it"
        );
    }

    #[test]
    fn single_line_schema_comment_has_empty_description() {
        let server = ServerInfo {
            schema_comment: Some("Just a title"),
            ..SERVER
        };
        let d: Value = serde_json::from_str(&document(&fixture(), "test", &server)).unwrap();
        assert_eq!(d["info"]["title"], "Just a title");
        assert_eq!(d["info"]["description"], "");
    }

    #[test]
    fn table_summary_and_description() {
        let d = doc();
        // 1657
        let get = at(&d, "paths|/child_entities|get");
        assert_eq!(get["summary"], "child_entities comment");
        assert!(get.get("description").is_none());
        assert_eq!(get["tags"], json!(["child_entities"]));
        // 1658
        let get = at(&d, "paths|/grandchild_entities|get");
        assert_eq!(get["summary"], "grandchild_entities summary");
        assert_eq!(
            get["description"],
            "grandchild_entities description\nthat spans\nmultiple lines"
        );
        // No comment: no summary either.
        assert!(at(&d, "paths|/entities|get").get("summary").is_none());
    }

    #[test]
    fn key_notes_in_column_descriptions() {
        let d = doc();
        let props = at(&d, "definitions|child_entities|properties");
        // 1659
        assert_eq!(
            props["id"]["description"],
            "child_entities id comment\n\nNote:\nThis is a Primary Key.<pk/>"
        );
        assert_eq!(
            props["name"]["description"],
            "child_entities name comment. Can be longer than sixty-three characters long"
        );
        assert_eq!(
            at(&d, "definitions|child_entities|required"),
            &json!(["id"])
        );
        // 1660: the table, not the view on it.
        assert_eq!(
            props["parent_id"]["description"],
            "Note:\nThis is a Foreign Key to `entities.id`.<fk table='entities' column='id'/>"
        );
        let grandchild = at(
            &d,
            "definitions|grandchild_entities|properties|parent_id|description",
        );
        assert_eq!(grandchild, "Note:\nThis is a Foreign Key to `child_entities.id`.<fk table='child_entities' column='id'/>");
        // A column that is neither key nor commented has no description.
        assert!(at(&d, "definitions|entities|properties|name")
            .get("description")
            .is_none());
    }

    #[test]
    fn view_definition() {
        // 1664
        let d = doc();
        let view = at(&d, "definitions|child_entities_view");
        assert_eq!(view["type"], "object");
        assert_eq!(view["description"], "child_entities_view comment");
        assert_eq!(
            view["properties"]["id"]["description"],
            "child_entities_view id comment\n\nNote:\nThis is a Primary Key.<pk/>"
        );
        assert_eq!(
            view["properties"]["parent_id"]["description"],
            "Note:\nThis is a Foreign Key to `entities.id`.<fk table='entities' column='id'/>"
        );
        assert!(view.get("required").is_none());
    }

    #[test]
    fn table_operations() {
        let d = doc();
        let path = at(&d, "paths|/child_entities");
        let refs = |op: &str| -> Vec<String> {
            path[op]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["$ref"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("#/parameters/")
                        .to_string()
                })
                .collect()
        };
        // 1661
        let filters = [
            "rowFilter.child_entities.id",
            "rowFilter.child_entities.name",
            "rowFilter.child_entities.parent_id",
        ];
        let get: Vec<&str> = filters
            .iter()
            .copied()
            .chain([
                "select",
                "order",
                "range",
                "rangeUnit",
                "offset",
                "limit",
                "preferCount",
            ])
            .collect();
        assert_eq!(refs("get"), get);
        assert_eq!(
            refs("post"),
            ["body.child_entities", "select", "preferPost"]
        );
        let patch: Vec<&str> = filters
            .iter()
            .copied()
            .chain(["body.child_entities", "preferReturn"])
            .collect();
        assert_eq!(refs("patch"), patch);
        let delete: Vec<&str> = filters.iter().copied().chain(["preferReturn"]).collect();
        assert_eq!(refs("delete"), delete);
        // 1662, 1663
        assert_eq!(path["get"]["responses"]["200"]["description"], "OK");
        assert_eq!(
            path["get"]["responses"]["206"]["description"],
            "Partial Content"
        );
        assert_eq!(path["post"]["responses"]["201"]["description"], "Created");
        assert_eq!(
            path["patch"]["responses"]["204"]["description"],
            "No Content"
        );
        assert_eq!(
            path["delete"]["responses"]["204"]["description"],
            "No Content"
        );
        assert_eq!(
            path["get"]["responses"]["200"]["schema"],
            json!({"type": "array", "items": {"$ref": "#/definitions/child_entities"}})
        );
        // A relation nothing can be written to has GET only.
        let read_only = at(&d, "paths|/read_only").as_object().unwrap();
        assert_eq!(read_only.keys().collect::<Vec<_>>(), ["get"]);
    }

    #[test]
    fn shared_parameters() {
        let d = doc();
        let p = &d["parameters"];
        assert_eq!(
            p["rowFilter.child_entities.id"],
            json!({"name": "id", "description": "child_entities id comment", "required": false, "in": "query", "type": "string"})
        );
        assert_eq!(
            p["body.child_entities"],
            json!({"name": "child_entities", "description": "child_entities", "required": false, "in": "body", "schema": {"$ref": "#/definitions/child_entities"}})
        );
        assert_eq!(
            p["rangeUnit"],
            json!({"name": "Range-Unit", "description": "Limiting and Pagination", "required": false, "in": "header", "type": "string", "default": "items"})
        );
        assert_eq!(
            p["preferParams"],
            json!({"name": "Prefer", "description": "Preference", "required": false, "in": "header", "type": "string"})
        );
        assert_eq!(p["preferCount"]["enum"], json!(["count=none"]));
        assert_eq!(p["preferPost"]["enum"].as_array().unwrap().len(), 5);
        assert_eq!(p["select"]["in"], "query");
        assert_eq!(p["range"]["name"], "Range");
    }

    #[test]
    fn type_mapping() {
        let d = doc();
        let props = at(&d, "definitions|openapi_types|properties");
        // 1665
        assert_eq!(
            props["a_character_varying"],
            json!({"format": "character varying", "type": "string"})
        );
        assert_eq!(
            props["a_character"],
            json!({"maxLength": 1, "format": "character", "type": "string"})
        );
        assert_eq!(props["a_text"], json!({"format": "text", "type": "string"}));
        assert_eq!(
            props["a_boolean"],
            json!({"format": "boolean", "type": "boolean"})
        );
        assert_eq!(
            props["a_smallint"],
            json!({"format": "int32", "type": "integer"})
        );
        assert_eq!(
            props["a_integer"],
            json!({"format": "int32", "type": "integer"})
        );
        assert_eq!(
            props["a_bigint"],
            json!({"format": "int64", "type": "integer"})
        );
        assert_eq!(
            props["a_numeric"],
            json!({"format": "numeric", "type": "number"})
        );
        assert_eq!(props["a_real"], json!({"format": "real", "type": "number"}));
        assert_eq!(
            props["a_double_precision"],
            json!({"format": "double precision", "type": "number"})
        );
        // 1666
        assert_eq!(props["a_json"], json!({"format": "json"}));
        assert_eq!(props["a_jsonb"], json!({"format": "jsonb"}));
        // 1667
        let array =
            |format: &str, items: Value| json!({"format": format, "type": "array", "items": items});
        assert_eq!(
            props["a_text_arr"],
            array("text[]", json!({"type": "string"}))
        );
        assert_eq!(
            props["a_int_arr"],
            array("integer[]", json!({"type": "integer"}))
        );
        assert_eq!(
            props["a_bool_arr"],
            array("boolean[]", json!({"type": "boolean"}))
        );
        assert_eq!(
            props["a_char_arr"],
            array("character[]", json!({"type": "string"}))
        );
        assert_eq!(
            props["a_varchar_arr"],
            array("character varying[]", json!({"type": "string"}))
        );
        assert_eq!(
            props["a_bigint_arr"],
            array("bigint[]", json!({"type": "integer"}))
        );
        assert_eq!(
            props["a_numeric_arr"],
            array("numeric[]", json!({"type": "number"}))
        );
        assert_eq!(props["a_json_arr"], array("json[]", json!({})));
        assert_eq!(props["a_jsonb_arr"], array("jsonb[]", json!({})));
        // 1668
        let menagerie = at(&d, "definitions|menagerie|properties|enum");
        assert_eq!(
            menagerie,
            &json!({"format": "test.enum_menagerie_type", "type": "string", "enum": ["foo", "bar"]})
        );
    }

    #[test]
    fn domains_are_described_by_builtin_base_types() {
        let mut c = col("c", "public.color");
        c.base_type = "integer".into();
        assert_eq!(column_type(&c), "integer");
        c.base_type = "test.enum_menagerie_type".into();
        assert_eq!(column_type(&c), "public.color");
    }

    #[test]
    fn defaults() {
        // 1669
        let d = doc();
        let props = at(&d, "definitions|openapi_defaults|properties");
        assert_eq!(props["text"]["default"], "default");
        assert_eq!(props["boolean"]["default"], false);
        assert_eq!(props["integer"]["default"], 42);
        assert_eq!(props["numeric"]["default"], 42.2);
        assert_eq!(props["date"]["default"], "1900-01-01");
        assert_eq!(props["time"]["default"], "13:00:00");
        assert!(props["serial"].get("default").is_none());
        // A string default without the column's cast keeps its text.
        assert_eq!(default_value("text", "now()"), Some(json!("now()")));
        assert_eq!(default_value("jsonb", "'{}'::jsonb"), None);
    }

    #[test]
    fn rpc_get_and_post() {
        let d = doc();
        let path = at(&d, "paths|/rpc/varied_arguments_openapi");
        // 1670
        assert_eq!(path["get"]["summary"], "An RPC function");
        assert_eq!(
            path["get"]["description"],
            "Just a test for RPC function arguments"
        );
        assert_eq!(
            path["get"]["tags"],
            json!(["(rpc) varied_arguments_openapi"])
        );
        assert_eq!(path["post"]["produces"], json!(RPC_MEDIA_TYPES));
        assert_eq!(path["post"]["responses"]["200"]["description"], "OK");
        // 1671
        let get = &path["get"]["parameters"];
        assert_eq!(
            get[0],
            json!({"format": "double precision", "in": "query", "name": "double", "required": true, "type": "number"})
        );
        assert_eq!(
            get[1],
            json!({"format": "text[]", "in": "query", "name": "text_arr", "required": true, "type": "string"})
        );
        assert_eq!(get[2]["format"], "character varying[]");
        assert_eq!(
            get[3],
            json!({"format": "int32", "in": "query", "name": "integer", "required": false, "type": "integer"})
        );
        assert_eq!(
            get[4],
            json!({"format": "json", "in": "query", "name": "json", "required": false, "type": "string"})
        );
        // 1673
        let body = &path["post"]["parameters"][0];
        assert_eq!(body["name"], "args");
        assert_eq!(body["required"], true);
        assert_eq!(body["in"], "body");
        let schema = &body["schema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["description"],
            "An RPC function\n\nJust a test for RPC function arguments"
        );
        assert_eq!(
            schema["properties"]["double"],
            json!({"format": "double precision", "type": "number"})
        );
        assert_eq!(
            schema["properties"]["text_arr"],
            json!({"format": "text[]", "type": "array", "items": {"type": "string"}})
        );
        assert_eq!(schema["properties"]["json"], json!({"format": "json"}));
        assert_eq!(
            schema["required"],
            json!(["double", "text_arr", "char_arr"])
        );
        assert_eq!(
            path["post"]["parameters"][1],
            json!({"$ref": "#/parameters/preferParams"})
        );
    }

    #[test]
    fn rpc_variadic_and_volatility() {
        let d = doc();
        // 1672
        let v = at(&d, "paths|/rpc/variadic_param|get|parameters|0");
        assert_eq!(
            v,
            &json!({"collectionFormat": "multi", "in": "query", "items": {"format": "text", "type": "string"}, "name": "v", "required": false, "type": "array"})
        );
        // 1674
        assert!(at(&d, "paths|/rpc/reset_table").get("get").is_none());
        assert!(at(&d, "paths|/rpc/reset_table").get("post").is_some());
        assert!(at(&d, "paths|/rpc/getallusers").get("get").is_some());
        assert!(at(&d, "paths|/rpc/getallusers").get("post").is_some());
        // Neither triggers nor functions with unnamed arguments are callable.
        assert!(d["paths"].get("/rpc/a_trigger").is_none());
        assert!(d["paths"].get("/rpc/unnamed_pair").is_none());
    }

    #[test]
    fn follow_privileges() {
        // 1675-1677: what the role cannot use is not documented at all.
        let relations: HashSet<String> = ["entities".to_string()].into();
        let functions: HashSet<String> = ["getallusers".to_string()].into();
        let visible = Visible::Only {
            relations: &relations,
            functions: &functions,
        };
        let text = document_visible(&fixture(), "test", &SERVER, visible);
        let d: Value = serde_json::from_str(&text).unwrap();
        let paths: Vec<&String> = d["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/", "/entities", "/rpc/getallusers"]);
        let definitions: Vec<&String> = d["definitions"].as_object().unwrap().keys().collect();
        assert_eq!(definitions, ["entities"]);
        assert!(d["parameters"].get("body.child_entities").is_none());
        assert!(d["parameters"].get("rowFilter.entities.id").is_some());
    }

    #[test]
    fn empty_schema() {
        let d: Value = serde_json::from_str(&document(&fixture(), "nothing", &SERVER)).unwrap();
        assert_eq!(d["paths"].as_object().unwrap().len(), 1);
        assert!(d.get("definitions").is_none());
        assert!(d["parameters"].get("select").is_some());
    }
}
