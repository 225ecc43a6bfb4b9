//! Writes: POST, PATCH, PUT and DELETE of a relation.

use super::timing::StageTimer;
use super::{finish, plan_and_begin};
use crate::execute::{self, PlanCache, RequestContext};
use crate::schema_cache;
use crate::worker::config::Config;
use pg_rest_core::api_request::{Action, ApiRequest, MediaType, Resource};
use pg_rest_core::error::ApiError;
use pg_rest_core::plan::{self, write::WritePlan};
use pg_rest_core::response::{write_response, Outcome, Response, WriteAnswer};
use pg_rest_core::schema_cache::SchemaCache;
use pg_rest_core::sql;

/// A write (POST, PATCH, PUT, DELETE), inside the request's transaction.
pub(super) fn write(
    config: &Config,
    cache: &mut schema_cache::Holder,
    plans: &mut PlanCache,
    ctx: &RequestContext,
    api_request: &ApiRequest,
    schema: &str,
    timer: &mut StageTimer,
) -> Result<Response, ApiError> {
    let plan = plan_and_begin(config, cache, plans, ctx, timer, |c, limits| {
        plan::write::write_plan(api_request, c, schema, limits)
    })?;
    let outcome = execute::run_statement(plans, &sql::write_statement(&plan), false);
    answer(api_request, &plan, outcome)
}

/// The response to a write's outcome, wherever it ran; an error rolls the write back (a
/// singular response without one row, `max-affected`, bad `response.*` values).
pub(super) fn answer(
    api_request: &ApiRequest,
    plan: &WritePlan,
    mut outcome: Outcome,
) -> Result<Response, ApiError> {
    check_affected(api_request, plan.media, &outcome)?;
    let Resource::Relation(relation) = &api_request.resource else {
        return Err(ApiError::invalid_path());
    };
    let answer = WriteAnswer {
        action: api_request.action,
        returns: plan.returns,
        upsert: plan.is_upsert(),
        media: plan.media,
        relation,
        primary_key: &plan.primary_key,
    };
    let mut response = write_response(&answer, &mut outcome).handled_by(plan.handler.as_ref());
    super::read::warn_legacy_names(&mut response, api_request, &plan.returning);
    finish(response, &outcome)
}

/// A singular response needs one row; `Prefer: max-affected` with `handling=strict` bounds the
/// rows: either failing rolls the write back.
pub(super) fn check_affected(
    api_request: &ApiRequest,
    media: MediaType,
    outcome: &Outcome,
) -> Result<(), ApiError> {
    if matches!(media, MediaType::Object { .. }) && outcome.rows != 1 {
        return Err(ApiError::not_singular(outcome.rows));
    }
    let prefs = &api_request.preferences;
    match prefs.max_affected {
        Some(max) if prefs.strict == Some(true) && outcome.rows > max => {
            Err(ApiError::max_affected(outcome.rows))
        }
        _ => Ok(()),
    }
}

/// `Prefer: resolution=` is honoured only by an insert into a relation with a key to resolve
/// on (its primary key, or `on_conflict=`).
pub(super) fn resolution_applies(req: &ApiRequest, cache: &SchemaCache, schema: &str) -> bool {
    let Resource::Relation(name) = &req.resource else {
        return false;
    };
    req.action == Action::Insert
        && (req.on_conflict.is_some()
            || cache
                .relation(schema, name)
                .is_some_and(|r| !r.primary_key.is_empty()))
}
