//! Function calls (`/rpc/{function}`), planned before their transaction.

use super::finish;
use crate::execute::{self, PlanCache, RequestContext};
use crate::schema_cache;
use pg_rest_core::error::ApiError;
use pg_rest_core::plan::call::{CallPlan, CallResult};
use pg_rest_core::response::{raw_response, read_response, Outcome, ReadResult, Response};
use pg_rest_core::sql;

/// A function call, planned before its transaction (its volatility decides the mode).
pub(super) fn call(
    plans: &mut PlanCache,
    cache: &schema_cache::Holder,
    ctx: &RequestContext,
    call: &CallPlan,
    read_only: bool,
) -> Result<Response, ApiError> {
    execute::begin_request_sql(ctx, cache.role_settings(ctx.role), plans);
    let outcome = execute::run_statement(plans, &sql::call_statement(call), read_only);
    answer(call, outcome)
}

/// The response to a call's outcome, wherever it ran; an error rolls the call back (a
/// singular response without one row, bad `response.*` values).
pub(super) fn answer(call: &CallPlan, mut outcome: Outcome) -> Result<Response, ApiError> {
    if let Some(content_type) = &call.raw_type {
        let body = outcome.body.take();
        return finish(raw_response(content_type, body), &outcome);
    }
    if call.result == CallResult::Void {
        return finish(
            Response {
                status: 204,
                ..Default::default()
            },
            &outcome,
        );
    }
    let result = ReadResult {
        offset: call.root.range.offset,
        rows: outcome.rows,
        total: outcome.total,
        body: outcome
            .body
            .take()
            .unwrap_or_else(|| super::read::empty_body(call.handler.as_ref(), b"null")),
        media: call.media,
    };
    let response = read_response(result)?.handled_by(call.handler.as_ref());
    finish(response, &outcome)
}
