//! Reads: a relation's rows, the API description at `/`, and `OPTIONS`.

use super::timing::StageTimer;
use super::{finish, plan_and_begin};
use crate::execute::{self, PlanCache, RequestContext};
use crate::schema_cache;
use crate::worker::config::Config;
use pg_rest_core::api_request::{format, ApiRequest, MediaType, Resource};
use pg_rest_core::error::ApiError;
use pg_rest_core::openapi;
use pg_rest_core::preferences::Count;
use pg_rest_core::response::{read_response, Outcome, ReadResult, Response};
use pg_rest_core::schema_cache::{RelationKind, SchemaCache, Volatility};
use pg_rest_core::{plan, sql};
use std::collections::HashSet;

/// A read, inside the request's transaction.
pub(super) fn read(
    config: &Config,
    cache: &mut schema_cache::Holder,
    plans: &mut PlanCache,
    ctx: &RequestContext,
    api_request: &ApiRequest,
    schema: &str,
    timer: &mut StageTimer,
) -> Result<Response, ApiError> {
    let plan = plan_and_begin(config, cache, plans, ctx, timer, |c, limits| {
        plan::read_plan(api_request, c, schema, limits)
    })?;
    if let MediaType::Plan(how) = api_request.media {
        let lines = execute::run_column(plans, &sql::explain_statement(&plan, &how), false);
        let body: Vec<String> = lines.into_iter().flatten().collect();
        return Ok(Response {
            status: 200,
            headers: vec![("Content-Type", api_request.media.content_type())],
            body: body.join("\n").into_bytes(),
            ..Default::default()
        });
    }
    let outcome = execute::run_statement(plans, &sql::read_statement(&plan), true);
    let total = match plan.count {
        Some(Count::Planned | Count::Estimated) => {
            let planned = execute::run_text(plans, &sql::planned_count_statement(&plan));
            planned.as_deref().and_then(sql::plan_rows)
        }
        _ => outcome.total,
    };
    answer(api_request, &plan, outcome, total)
}

/// Whether a read's answer comes from its one statement (what a forwarded read runs): not
/// an EXPLAIN, nor a count from the planner (a statement of its own).
pub(super) fn is_one_statement(api_request: &ApiRequest) -> bool {
    !matches!(api_request.media, MediaType::Plan(_))
        && !matches!(
            api_request.preferences.count,
            Some(Count::Planned | Count::Estimated)
        )
}

/// The response to a read's outcome (`total`: the count asked for), wherever it ran.
pub(super) fn answer(
    api_request: &ApiRequest,
    plan: &plan::ReadPlan,
    mut outcome: Outcome,
    total: Option<i64>,
) -> Result<Response, ApiError> {
    let result = ReadResult {
        offset: plan.root.range.offset,
        rows: outcome.rows,
        total,
        body: outcome
            .body
            .take()
            .unwrap_or_else(|| empty_body(plan.handler.as_ref(), b"[]")),
        media: plan.media,
    };
    let mut response = read_response(result)?.handled_by(plan.handler.as_ref());
    warn_legacy_names(&mut response, api_request, &plan.root);
    finish(response, &outcome)
}

/// PostgREST's `Warning` when a parameter named an aliased embed by its relation.
pub(super) fn warn_legacy_names(response: &mut Response, req: &ApiRequest, root: &plan::Node) {
    if let Some(w) = plan::legacy_embed_warning(req, root) {
        response.headers.push(("Warning", w));
    }
}

/// The body of a NULL result: nothing from a media handler, else `builtin`.
pub(super) fn empty_body(handler: Option<&plan::media::Handler>, builtin: &[u8]) -> Vec<u8> {
    match handler {
        Some(_) => Vec::new(),
        None => builtin.to_vec(),
    }
}

/// PostgREST's `Content-Location` of a read: the path and its query parameters sorted.
pub(super) fn content_location(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

/// `OPTIONS`: the methods a resource allows, as PostgREST lists them.
pub(super) fn options(
    cache: &SchemaCache,
    resource: &Resource,
    schema: &str,
) -> Result<Response, ApiError> {
    let allow = match resource {
        Resource::Root => "OPTIONS,GET,HEAD".to_string(),
        Resource::Relation(name) => {
            let r = or_stem(name, |n| cache.relation(schema, n))
                .map_or_else(|| cache.relation_or_not_found(schema, name), Ok)?;
            let mut methods = vec!["OPTIONS", "GET", "HEAD"];
            let table = r.kind != RelationKind::View;
            if table || r.insertable {
                methods.push("POST");
            }
            if table || (r.insertable && r.updatable) {
                methods.push("PUT");
            }
            if table || r.updatable {
                methods.push("PATCH");
            }
            if table || r.deletable {
                methods.push("DELETE");
            }
            methods.join(",")
        }
        Resource::Function(name) => {
            let f = or_stem(name, |n| cache.functions(schema, n).first())
                .ok_or_else(|| ApiError::table_not_found(schema, name, None))?;
            if f.volatility == Volatility::Volatile {
                "OPTIONS,POST".to_string()
            } else {
                "OPTIONS,GET,HEAD,POST".to_string()
            }
        }
    };
    Ok(Response {
        status: 200,
        headers: vec![
            ("Allow", allow),
            ("Access-Control-Allow-Origin", "*".to_string()),
        ],
        body: Vec::new(),
        ..Default::default()
    })
}

/// What `name` finds, else what it finds without a `.csv`/`.json` extension (as reads
/// resolve `/books.csv`).
fn or_stem<'c, T>(name: &str, find: impl Fn(&str) -> Option<&'c T>) -> Option<&'c T> {
    find(name).or_else(|| format::stem(name).and_then(find))
}

/// `GET /`: the OpenAPI description of `schema`, showing what the request's role may use.
pub(super) fn describe_api(
    config: &Config,
    cache: &mut schema_cache::Holder,
    plans: &mut PlanCache,
    ctx: &RequestContext,
    schema: &str,
    host: &str,
) -> Result<Response, ApiError> {
    let cache = cache.current(&config.schemas);
    execute::begin_request_sql(ctx, None, plans);
    let param = |sql: &str| sql::Statement {
        sql: sql.to_string(),
        params: vec![schema.to_string()],
    };
    let comment = execute::run_column(plans, &param(openapi::SCHEMA_COMMENT_SQL), true)
        .into_iter()
        .next()
        .flatten();
    let relations: HashSet<String> =
        execute::run_column(plans, &param(openapi::ACCESSIBLE_RELATIONS_SQL), true)
            .into_iter()
            .flatten()
            .collect();
    let functions: HashSet<String> =
        execute::run_column(plans, &param(openapi::ACCESSIBLE_FUNCTIONS_SQL), true)
            .into_iter()
            .flatten()
            .collect();
    let server = openapi::ServerInfo {
        host,
        scheme: "http",
        version: env!("CARGO_PKG_VERSION"),
        schema_comment: comment.as_deref(),
        security_active: false,
    };
    let visible = openapi::Visible::Only {
        relations: &relations,
        functions: &functions,
    };
    let body = openapi::document_visible(cache, schema, &server, visible);
    Ok(Response {
        status: 200,
        headers: vec![(
            "Content-Type",
            MediaType::OpenApi.content_type().to_string(),
        )],
        body: body.into_bytes(),
        ..Default::default()
    })
}
