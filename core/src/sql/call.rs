//! The statement of a function call: the call is the FROM item of the plan's root node, so a
//! function returning rows is filtered, ordered, limited and embedded like a relation. Every
//! argument is a bind parameter cast to its parameter's type.

use super::read::{body, handler_body, qualified, rows_statement};
use super::{push_ident, push_tail, Builder, Statement};
use crate::plan::call::{Call, CallArgs, CallPlan, CallResult, RESULT_ALIAS};
use crate::plan::NodeSource;

pub fn call_statement(plan: &CallPlan) -> Statement {
    if let Some(call) = one_value(plan) {
        return one_value_statement(plan, call);
    }
    let mut b = Builder::with_payload(plan.payload.clone());
    let value = format!("_pgrst_t.{}", super::quote_ident(RESULT_ALIAS));
    let body = match &plan.handler {
        Some(h) if plan.result == CallResult::Rows => handler_body(h, "_pgrst_t"),
        Some(h) => handler_body(h, &value),
        None => builtin_body(plan, &value),
    };
    rows_statement(&mut b, &plan.root, plan.count, &body);
    b.finish()
}

/// The call of a plan answered by its one value as JSON: a function returning one scalar (or
/// void), in pg_rest's own body, no count asked and no range that could drop the row.
fn one_value(plan: &CallPlan) -> Option<&Call> {
    let simple = matches!(plan.result, CallResult::Scalar | CallResult::Void)
        && !plan.many
        && plan.handler.is_none()
        && plan.raw_type.is_none()
        && plan.count.is_none()
        && plan.root.range.offset == 0
        && plan.root.range.limit != Some(0)
        && plan.root.conditions.is_empty();
    match &plan.root.source {
        NodeSource::Call(call) if simple => Some(call),
        _ => None,
    }
}

/// One value's statement: the call is the FROM item and its value, as JSON, the select list —
/// the same answer as the general statement's aggregate over a subquery of one row, without
/// the aggregate, whose executor start was a third of the statement's time (pgbench on the
/// two texts: 46k against 61k tps).
fn one_value_statement(plan: &CallPlan, call: &Call) -> Statement {
    let mut b = Builder::with_payload(plan.payload.clone());
    b.sql
        .push_str("SELECT 1::int8, NULL::int8, coalesce(pg_catalog.to_json(");
    push_ident(&mut b.sql, RESULT_ALIAS);
    b.sql.push('.');
    push_ident(&mut b.sql, RESULT_ALIAS);
    b.sql.push_str(")::text, 'null')");
    push_tail(&mut b, None, None);
    b.sql.push_str(" FROM ");
    push_call(&mut b, call);
    b.sql.push_str(" AS ");
    push_ident(&mut b.sql, RESULT_ALIAS);
    b.finish()
}

/// The body in pg_rest's own media type; `value` is the scalar result's column.
fn builtin_body(plan: &CallPlan, value: &str) -> String {
    match (plan.result, plan.many) {
        // The value itself (text or bytea), no JSON: the body of `?type=`.
        _ if plan.raw_type.is_some() => format!("(pg_catalog.array_agg({value}))[1]"),
        (CallResult::Scalar | CallResult::Void, true) => {
            format!("coalesce(pg_catalog.json_agg({value}), '[]')::text")
        }
        (CallResult::Scalar | CallResult::Void, false) => {
            format!("coalesce((pg_catalog.json_agg({value}) -> 0)::text, 'null')")
        }
        (CallResult::Rows, false) if matches!(plan.media, crate::api_request::MediaType::Json) => {
            "coalesce((pg_catalog.json_agg(_pgrst_t) -> 0)::text, 'null')".to_string()
        }
        (CallResult::Rows, _) => body(plan.media).to_string(),
    }
}

/// The call as a FROM item (without its alias).
pub(super) fn push_call(b: &mut Builder, call: &Call) {
    match &call.args {
        CallArgs::Query(args) => {
            function(b, call);
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    b.sql.push_str(", ");
                }
                if a.variadic {
                    b.sql.push_str("VARIADIC ");
                }
                push_ident(&mut b.sql, &a.name);
                b.sql.push_str(" := ");
                let value = if a.variadic {
                    super::read::array_literal(&a.values)
                } else {
                    // Of repeated values the last wins, as in PostgREST.
                    a.values.last().cloned().unwrap_or_default()
                };
                b.push_param(value, &a.type_name);
            }
            b.sql.push(')');
        }
        CallArgs::Whole {
            type_name,
            base64: false,
        } => {
            function(b, call);
            let p = b.param_payload();
            b.sql.push_str(&format!("{p}::{type_name})"));
        }
        CallArgs::Whole { base64: true, .. } => {
            function(b, call);
            let p = b.param_payload();
            b.sql
                .push_str(&format!("pg_catalog.decode({p}, 'base64'))"));
        }
        CallArgs::Body { params, .. } if params.is_empty() => {
            function(b, call);
            b.sql.push(')');
        }
        CallArgs::Body { params, array } => {
            let p = b.param_payload();
            // Of an array body, PostgREST calls with the first object.
            let args = if *array {
                format!("{p}::json -> 0")
            } else {
                format!("{p}::json")
            };
            b.sql.push_str(&format!(
                "pg_catalog.json_to_record({args}) AS _pgrst_args("
            ));
            for (i, a) in params.iter().enumerate() {
                if i > 0 {
                    b.sql.push_str(", ");
                }
                push_ident(&mut b.sql, &a.name);
                b.sql.push(' ');
                b.sql.push_str(&a.type_name);
            }
            b.sql.push_str("), LATERAL ");
            function(b, call);
            for (i, a) in params.iter().enumerate() {
                if i > 0 {
                    b.sql.push_str(", ");
                }
                if a.variadic {
                    b.sql.push_str("VARIADIC ");
                }
                push_ident(&mut b.sql, &a.name);
                b.sql.push_str(" := _pgrst_args.");
                push_ident(&mut b.sql, &a.name);
            }
            b.sql.push(')');
        }
    }
}

/// `"schema"."name"(`
fn function(b: &mut Builder, call: &Call) {
    qualified(b, &call.function.schema, &call.function.name);
    b.sql.push('(');
}
