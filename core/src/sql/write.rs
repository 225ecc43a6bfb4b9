//! The statement of a write: the INSERT / UPDATE / DELETE as the CTE `pgrst_source` (its
//! rows read from the body by `json_populate_recordset`, one statement however many rows),
//! then the plan's returning node over `pgrst_source` for the answer.

use super::read::{body, column, condition, handler_body, node, order_by, qualified, row_range};
use super::{push_ident, push_tail, Builder, Statement};
use crate::plan::write::{Limited, WriteKind, WritePlan};
use crate::preferences::{Count, Return};

pub fn write_statement(plan: &WritePlan) -> Statement {
    let mut b = Builder::with_payload(Some(plan.payload.clone()));
    b.sql.push_str("WITH pgrst_source AS (");
    match &plan.kind {
        WriteKind::Insert { .. } => insert(&mut b, plan),
        WriteKind::Update => update(&mut b, plan),
        WriteKind::Delete => delete(&mut b, plan),
    }
    b.sql
        .push_str(") SELECT pg_catalog.count(_pgrst_t)::int8, ");
    b.sql.push_str(if plan.count == Some(Count::Exact) {
        "(SELECT pg_catalog.count(*) FROM pgrst_source)::int8, "
    } else {
        "NULL::int8, "
    });
    let representation = plan.returns == Return::Representation;
    match &plan.handler {
        Some(h) => b.sql.push_str(&handler_body(h, "_pgrst_t")),
        None if representation => b.sql.push_str(body(plan.media)),
        None => b.sql.push_str("NULL::text"),
    }
    let location = (plan.returns == Return::HeadersOnly && !plan.primary_key.is_empty())
        .then(|| location(plan));
    let inserted = plan
        .is_upsert()
        .then_some("(SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_inserted)::int8");
    push_tail(&mut b, location.as_deref(), inserted);
    b.sql.push_str(" FROM (");
    node(&mut b, &plan.returning, None, !representation);
    b.sql.push_str(") _pgrst_t");
    b.finish()
}

/// `INSERT … SELECT cols FROM json_populate_recordset(NULL::target, body)`, with
/// `ON CONFLICT` for an upsert; an upsert also returns whether each row was inserted.
fn insert(b: &mut Builder, plan: &WritePlan) {
    b.sql.push_str("INSERT INTO ");
    target(b, plan);
    if !plan.columns.is_empty() {
        b.sql.push_str(" (");
        names(b, &plan.columns);
        b.sql.push(')');
    }
    b.sql.push_str(" SELECT ");
    if plan.json_casts.is_empty() {
        names(b, &plan.columns);
        b.sql.push_str(" FROM pg_catalog.json_populate_recordset(");
        base_record(b, plan);
        b.sql.push_str(", ");
        body_array(b, plan);
        b.sql.push_str(") AS _pgrst_r");
    } else {
        rows_through_casts(b, plan);
    }
    if let WriteKind::Insert {
        on_conflict: Some(c),
    } = &plan.kind
    {
        b.sql.push_str(" ON CONFLICT (");
        names(b, &c.columns);
        b.sql.push(')');
        if c.merge && !plan.columns.is_empty() {
            b.sql.push_str(" DO UPDATE SET ");
            for (i, col) in plan.columns.iter().enumerate() {
                if i > 0 {
                    b.sql.push_str(", ");
                }
                push_ident(&mut b.sql, col);
                b.sql.push_str(" = EXCLUDED.");
                push_ident(&mut b.sql, col);
            }
        } else {
            b.sql.push_str(" DO NOTHING");
        }
    }
    returning(b, plan);
}

/// The body as a JSON array of row objects.
fn body_array(b: &mut Builder, plan: &WritePlan) {
    let p = b.param_payload();
    if plan.bulk {
        b.sql.push_str(&format!("{p}::json"));
    } else {
        b.sql
            .push_str(&format!("pg_catalog.json_build_array({p}::json)"));
    }
}

/// The inserted rows when some columns are parsed by their `json AS type` cast (domain
/// representations) or `?columns=` lists the keys: cast columns are the cast function of the
/// element's value; the others are populated as usual from an object of just their keys, so
/// no other key of the body is parsed (a value `?columns=` leaves out may be anything). Key
/// names are parameters.
fn rows_through_casts(b: &mut Builder, plan: &WritePlan) {
    for (i, (name, cast)) in plan.columns.iter().zip(&plan.json_casts).enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        match cast {
            Some(f) => {
                qualified(b, &f.schema, &f.name);
                let key = b.param(name.clone());
                b.sql.push_str(&format!("(_pgrst_j -> {key}::text)"));
            }
            None => column(b, "_pgrst_r", name),
        }
    }
    b.sql.push_str(" FROM pg_catalog.json_array_elements(");
    body_array(b, plan);
    b.sql
        .push_str(") AS _pgrst_j, LATERAL pg_catalog.json_populate_record(");
    base_record(b, plan);
    b.sql.push_str(", pg_catalog.json_build_object(");
    let plain = plan
        .columns
        .iter()
        .zip(&plan.json_casts)
        .filter(|(_, c)| c.is_none());
    for (i, (name, _)) in plain.enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        let key = b.param(name.clone());
        b.sql
            .push_str(&format!("{key}::text, _pgrst_j -> {key}::text"));
    }
    b.sql.push_str(")) AS _pgrst_r");
}

/// The record absent keys are taken from: NULLs, or with `missing=default` each column's
/// default expression (the catalog's text, as `pg_get_expr` printed it).
fn base_record(b: &mut Builder, plan: &WritePlan) {
    match &plan.defaults {
        None => b.sql.push_str("NULL"),
        Some(defaults) => {
            b.sql.push_str("ROW(");
            for (i, d) in defaults.iter().enumerate() {
                if i > 0 {
                    b.sql.push_str(", ");
                }
                b.sql.push_str(d.as_deref().unwrap_or("NULL"));
            }
            b.sql.push(')');
        }
    }
    b.sql.push_str("::");
    qualified(b, &plan.target.schema, &plan.target.name);
}

/// `UPDATE target SET col = body.col … FROM json_populate_record(NULL::target, body)`; a body
/// without columns changes nothing (and returns nothing).
fn update(b: &mut Builder, plan: &WritePlan) {
    if plan.columns.is_empty() {
        b.sql.push_str("SELECT * FROM ");
        target(b, plan);
        b.sql.push_str(" WHERE false");
        return;
    }
    b.sql.push_str("UPDATE ");
    target(b, plan);
    b.sql.push_str(" SET ");
    for (i, col) in plan.columns.iter().enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        push_ident(&mut b.sql, col);
        b.sql.push_str(" = ");
        column(b, "_pgrst_r", col);
    }
    b.sql
        .push_str(" FROM pg_catalog.json_populate_record(NULL::");
    qualified(b, &plan.target.schema, &plan.target.name);
    let p = b.param_payload();
    // An array body updates with its first object.
    let row = if plan.bulk {
        format!("{p}::json -> 0")
    } else {
        format!("{p}::json")
    };
    b.sql.push_str(&format!(", {row}) AS _pgrst_r"));
    match &plan.limited {
        Some(limited) => {
            b.sql.push_str(", ");
            affected_rows(b, plan, limited);
        }
        None => conditions(b, plan),
    }
    returning(b, plan);
}

fn delete(b: &mut Builder, plan: &WritePlan) {
    b.sql.push_str("DELETE FROM ");
    target(b, plan);
    match &plan.limited {
        Some(limited) => {
            b.sql.push_str(" USING ");
            affected_rows(b, plan, limited);
        }
        None => conditions(b, plan),
    }
    returning(b, plan);
}

/// A limited write's rows (PostgREST's `pgrst_affected_rows`): the keys of the range of the
/// filtered target in its order, then the target joined to them on those keys — and to the
/// filters again, so a key shared by rows the filters leave out cannot widen the write.
fn affected_rows(b: &mut Builder, plan: &WritePlan, limited: &Limited) {
    let alias = &plan.returning.alias;
    b.sql.push_str("(SELECT ");
    for (i, key) in limited.keys.iter().enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        column(b, alias, key);
    }
    b.sql.push_str(" FROM ");
    target(b, plan);
    conditions(b, plan);
    order_by(b, &plan.returning, &limited.order);
    row_range(b, limited.range);
    b.sql.push_str(") AS pgrst_affected_rows");
    for (i, key) in limited.keys.iter().enumerate() {
        b.sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        column(b, alias, key);
        b.sql.push_str(" = ");
        column(b, "pgrst_affected_rows", key);
    }
    for c in &plan.conditions {
        b.sql.push_str(" AND ");
        condition(b, &plan.returning, c);
    }
}

/// The target under the returning node's alias, so filters planned for it apply.
fn target(b: &mut Builder, plan: &WritePlan) {
    qualified(b, &plan.target.schema, &plan.target.name);
    b.sql.push_str(" AS ");
    push_ident(&mut b.sql, &plan.returning.alias);
}

fn conditions(b: &mut Builder, plan: &WritePlan) {
    for (i, c) in plan.conditions.iter().enumerate() {
        b.sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        condition(b, &plan.returning, c);
    }
}

fn returning(b: &mut Builder, plan: &WritePlan) {
    b.sql.push_str(" RETURNING ");
    push_ident(&mut b.sql, &plan.returning.alias);
    b.sql.push_str(".*");
    if plan.is_upsert() {
        // xmax is 0 for a row this statement inserted, its locker's xid for an updated one.
        b.sql.push_str(", ");
        push_ident(&mut b.sql, &plan.returning.alias);
        b.sql.push_str(".xmax = 0 AS pgrst_inserted");
    }
}

/// The first written row's primary key values, as a JSON array (the `Location` header).
fn location(plan: &WritePlan) -> String {
    let mut b = Builder::default();
    b.sql.push_str("(SELECT pg_catalog.json_build_array(");
    names(&mut b, &plan.primary_key);
    b.sql.push_str(")::text FROM pgrst_source LIMIT 1)");
    b.sql
}

/// `"a", "b"`.
fn names(b: &mut Builder, cols: &[String]) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        push_ident(&mut b.sql, c);
    }
}
