//! The statement of a read: the plan's node tree as nested SELECTs, each embedded resource a
//! `LATERAL` subquery of its parent (to-one: its row; to-many: `json_agg` of its rows), the
//! whole body serialized by PostgreSQL into one text datum.

use super::{push_ident, push_type, quote_ident, Builder, Statement};
use crate::api_request::media::Plan;
use crate::api_request::{FilterOp, JsonKey, MediaType, NullsOrder, Quantifier};
use crate::plan::media::Handler;
use crate::plan::{
    Expr, Join, Node, NodeSource, OrderBy, Output, PlannedCondition, PlannedEmbed, PlannedOrder,
    ReadPlan, Source,
};
use crate::preferences::Count;
use crate::range::RowRange;
use crate::schema_cache::{HandlerKind, QualifiedName};

/// The read as one statement returning one row: the page's row count, the total (NULL unless
/// `Prefer: count=exact`) and the body in the negotiated media type.
pub fn read_statement(plan: &ReadPlan) -> Statement {
    let mut b = Builder::default();
    let body = match &plan.handler {
        Some(h) => handler_body(h, "_pgrst_t"),
        None => body(plan.media).to_string(),
    };
    rows_statement(&mut b, &plan.root, plan.count, &body);
    b.finish()
}

/// The body a media handler makes of `value` (the rows `_pgrst_t`, or a function's scalar
/// column), as its type's send function writes it: an aggregate's one result, or a value cast
/// to the handler's domain.
pub(super) fn handler_body(h: &Handler, value: &str) -> String {
    let name = |q: &QualifiedName| format!("{}.{}", quote_ident(&q.schema), quote_ident(&q.name));
    let send = name(&h.send);
    match &h.kind {
        HandlerKind::Aggregate(agg) => {
            let arg = match &h.row_type {
                Some(t) => format!("{value}::{}", name(t)),
                None => value.to_string(),
            };
            format!("{send}({}({arg}))", name(agg))
        }
        HandlerKind::Value => {
            format!(
                "(pg_catalog.array_agg({send}(({value})::{})))[1]",
                name(&h.domain)
            )
        }
    }
}

/// `SELECT rows, total, body, <tail> FROM (root) _pgrst_t`: the shape of every statement
/// (see [`super::push_tail`]), `body` an aggregate over `_pgrst_t`.
pub(super) fn rows_statement(b: &mut Builder, root: &Node, count: Option<Count>, body: &str) {
    b.sql.push_str("SELECT pg_catalog.count(_pgrst_t)::int8, ");
    if count == Some(Count::Exact) {
        b.sql.push_str("(SELECT pg_catalog.count(*) FROM (");
        node(b, root, None, true);
        b.sql.push_str(") _pgrst_c)::int8, ");
    } else {
        b.sql.push_str("NULL::int8, ");
    }
    b.sql.push_str(body);
    super::push_tail(b, None, None);
    b.sql.push_str(" FROM (");
    node(b, root, None, false);
    b.sql.push_str(") _pgrst_t");
}

/// The read's statement under `EXPLAIN`, for `Accept: application/vnd.pgrst.plan`.
pub fn explain_statement(plan: &ReadPlan, how: &Plan) -> Statement {
    let read = read_statement(plan);
    let mut options = vec![if how.json {
        "FORMAT JSON"
    } else {
        "FORMAT TEXT"
    }];
    options.extend(how.options.names());
    Statement {
        sql: format!("EXPLAIN ({}) {}", options.join(", "), read.sql),
        params: read.params,
    }
}

/// `EXPLAIN (FORMAT JSON)` of the rows a read counts, for `Prefer: count=planned`.
pub fn planned_count_statement(plan: &ReadPlan) -> Statement {
    let mut b = Builder::default();
    b.sql.push_str("EXPLAIN (FORMAT JSON) ");
    node(&mut b, &plan.root, None, true);
    b.finish()
}

/// The planner's row estimate from an `EXPLAIN (FORMAT JSON)` result.
pub fn plan_rows(explain_json: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(explain_json).ok()?;
    v.get(0)?.get("Plan")?.get("Plan Rows")?.as_i64()
}

/// The body aggregate over the rows `_pgrst_t`.
pub(super) fn body(media: MediaType) -> &'static str {
    match media {
        MediaType::Csv => {
            "(SELECT coalesce(pg_catalog.string_agg(k, ','), '') \
             FROM pg_catalog.json_object_keys(pg_catalog.row_to_json(\
             (pg_catalog.array_agg(_pgrst_t))[1])) AS k) || \
             coalesce(pg_catalog.chr(10) || pg_catalog.string_agg(\
             pg_catalog.substr(_pgrst_t::text, 2, pg_catalog.length(_pgrst_t::text) - 2), \
             pg_catalog.chr(10)), '')"
        }
        MediaType::GeoJson => {
            "pg_catalog.json_build_object('type', 'FeatureCollection', 'features', \
             coalesce(pg_catalog.json_agg(ST_AsGeoJSON(_pgrst_t)::json), '[]'))::text"
        }
        MediaType::Object {
            nulls_stripped: true,
        } => {
            "coalesce((pg_catalog.json_agg(pg_catalog.json_strip_nulls(\
             pg_catalog.row_to_json(_pgrst_t))) -> 0)::text, '')"
        }
        MediaType::Object { .. } => "coalesce((pg_catalog.json_agg(_pgrst_t) -> 0)::text, '')",
        MediaType::ArrayJson {
            nulls_stripped: true,
        } => {
            "coalesce(pg_catalog.json_agg(pg_catalog.json_strip_nulls(\
             pg_catalog.row_to_json(_pgrst_t))), '[]')::text"
        }
        _ => "coalesce(pg_catalog.json_agg(_pgrst_t), '[]')::text",
    }
}

/// One node's SELECT; `parent` is the parent's alias and how this node joins it. `counting`:
/// only the rows matter (no outputs, order or range; embeds only where they filter).
pub(super) fn node(b: &mut Builder, n: &Node, parent: Option<(&str, &Join)>, counting: bool) {
    b.sql.push_str("SELECT ");
    if counting {
        b.sql.push('1');
    } else {
        outputs(b, n);
    }
    b.sql.push_str(" FROM ");
    from(b, n, parent);
    for e in &n.embeds {
        if counting && !filters_rows(n, e) {
            continue;
        }
        b.sql.push_str(if e.to_one && e.inner {
            " INNER JOIN LATERAL ("
        } else {
            " LEFT JOIN LATERAL ("
        });
        lateral(b, e, &n.alias);
        b.sql.push_str(") AS ");
        push_ident(&mut b.sql, &e.lateral);
        b.sql.push_str(" ON TRUE");
    }
    let mut first = true;
    let mut and = |b: &mut Builder| {
        b.sql.push_str(if first { " WHERE " } else { " AND " });
        first = false;
    };
    if let Some((parent_alias, join)) = parent {
        join_condition(b, &n.alias, parent_alias, join, &mut and);
    }
    for c in &n.conditions {
        and(b);
        condition(b, n, c);
    }
    for e in n.embeds.iter().filter(|e| e.inner && !e.to_one) {
        and(b);
        push_ident(&mut b.sql, &e.lateral);
        b.sql.push_str(".\"body\" IS NOT NULL");
    }
    if counting {
        return;
    }
    if n.grouped {
        group_by(b, n);
    }
    order_by(b, n, &n.order);
    row_range(b, n.range);
}

/// ` ORDER BY …` of `order`, planned for the node `n`.
pub(super) fn order_by(b: &mut Builder, n: &Node, order: &[PlannedOrder]) {
    for (i, o) in order.iter().enumerate() {
        b.sql.push_str(if i == 0 { " ORDER BY " } else { ", " });
        match &o.by {
            OrderBy::Expr(e) => expr(b, &n.alias, e),
            OrderBy::Related { embed, field } => {
                let lateral = &n.embeds[*embed].lateral;
                push_ident(&mut b.sql, lateral);
                b.sql.push('.');
                push_ident(&mut b.sql, &field.name);
                json_path(b, field);
            }
        }
        if o.descending {
            b.sql.push_str(" DESC");
        }
        match o.nulls {
            Some(NullsOrder::First) => b.sql.push_str(" NULLS FIRST"),
            Some(NullsOrder::Last) => b.sql.push_str(" NULLS LAST"),
            None => {}
        }
    }
}

/// ` LIMIT … OFFSET …`. Row counts are parameters too: one plan serves every page of a shape.
pub(super) fn row_range(b: &mut Builder, range: RowRange) {
    if let Some(limit) = range.limit {
        b.sql.push_str(" LIMIT ");
        b.push_param(limit.to_string(), "int8");
    }
    if range.offset > 0 {
        b.sql.push_str(" OFFSET ");
        b.push_param(range.offset.to_string(), "int8");
    }
}

/// An embed changes which parent rows there are: `!inner`, or an `is.null` filter on it.
fn filters_rows(n: &Node, e: &PlannedEmbed) -> bool {
    e.inner || n.conditions.iter().any(|c| mentions_embed(c, n, e))
}

fn mentions_embed(c: &PlannedCondition, n: &Node, e: &PlannedEmbed) -> bool {
    match c {
        PlannedCondition::EmbedNull { embed, .. } => n.embeds[*embed].lateral == e.lateral,
        PlannedCondition::Logic { children, .. } => {
            children.iter().any(|c| mentions_embed(c, n, e))
        }
        PlannedCondition::Filter { .. } => false,
    }
}

fn outputs(b: &mut Builder, n: &Node) {
    let mut first = true;
    for o in &n.outputs {
        let mut sep = |b: &mut Builder| {
            if !first {
                b.sql.push_str(", ");
            }
            first = false;
        };
        match o {
            Output::AllColumns => {
                sep(b);
                push_ident(&mut b.sql, &n.alias);
                b.sql.push_str(".*");
            }
            Output::Expr {
                expr: e,
                name,
                aggregate,
                aggregate_cast,
            } => {
                sep(b);
                match aggregate {
                    Some(a) => {
                        b.sql.push_str(a.sql_function());
                        b.sql.push('(');
                        expr(b, &n.alias, e);
                        b.sql.push(')');
                        cast(b, aggregate_cast.as_deref());
                    }
                    None => shown(b, &n.alias, e),
                }
                b.sql.push_str(" AS ");
                push_ident(&mut b.sql, name);
            }
            Output::CountAll { name, cast: c } => {
                sep(b);
                b.sql.push_str("pg_catalog.count(*)");
                cast(b, c.as_deref());
                b.sql.push_str(" AS ");
                push_ident(&mut b.sql, name);
            }
            Output::Embed(i) => {
                let e = &n.embeds[*i];
                if e.spread {
                    for col in &e.columns {
                        sep(b);
                        push_ident(&mut b.sql, &e.lateral);
                        b.sql.push('.');
                        push_ident(&mut b.sql, col);
                        b.sql.push_str(" AS ");
                        push_ident(&mut b.sql, col);
                    }
                    continue;
                }
                sep(b);
                if e.to_one {
                    b.sql.push_str("pg_catalog.row_to_json(");
                    push_ident(&mut b.sql, &e.lateral);
                    b.sql.push_str(".*)");
                } else {
                    b.sql.push_str("coalesce(");
                    push_ident(&mut b.sql, &e.lateral);
                    b.sql.push_str(".\"body\", '[]')");
                }
                b.sql.push_str(" AS ");
                push_ident(&mut b.sql, &e.label);
            }
        }
    }
}

/// GROUP BY the outputs that are not aggregates, by position (their text may hold
/// parameters, which PostgreSQL would not match between the two clauses).
fn group_by(b: &mut Builder, n: &Node) {
    let mut positions = Vec::new();
    let mut at = 0;
    for o in &n.outputs {
        match o {
            Output::Embed(i) if n.embeds[*i].spread => {
                for _ in &n.embeds[*i].columns {
                    at += 1;
                    positions.push(at);
                }
            }
            Output::Expr {
                aggregate: None, ..
            }
            | Output::Embed(_)
            | Output::AllColumns => {
                at += 1;
                positions.push(at);
            }
            _ => at += 1,
        }
    }
    if !positions.is_empty() {
        let list: Vec<String> = positions.iter().map(ToString::to_string).collect();
        b.sql.push_str(" GROUP BY ");
        b.sql.push_str(&list.join(", "));
    }
}

fn from(b: &mut Builder, n: &Node, parent: Option<(&str, &Join)>) {
    match (parent, &n.source) {
        (Some((parent_alias, Join::Function(f))), _) => {
            qualified(b, &f.schema, &f.name);
            b.sql.push('(');
            push_ident(&mut b.sql, parent_alias);
            b.sql.push(')');
        }
        (_, NodeSource::Written) => b.sql.push_str("pgrst_source"),
        (_, NodeSource::Call(call)) => super::call::push_call(b, call),
        (_, NodeSource::Relation) => qualified(b, &n.relation.schema, &n.relation.name),
    }
    b.sql.push_str(" AS ");
    push_ident(&mut b.sql, &n.alias);
    if let Some((
        _,
        Join::Junction {
            relation, target, ..
        },
    )) = parent
    {
        let j = junction_alias(&n.alias);
        b.sql.push_str(" INNER JOIN ");
        qualified(b, &relation.schema, &relation.name);
        b.sql.push_str(" AS ");
        push_ident(&mut b.sql, &j);
        for (i, (target_col, junction_col)) in target.iter().enumerate() {
            b.sql.push_str(if i == 0 { " ON " } else { " AND " });
            column(b, &j, junction_col);
            b.sql.push_str(" = ");
            column(b, &n.alias, target_col);
        }
    }
}

fn junction_alias(alias: &str) -> String {
    format!("{alias}_j")
}

fn join_condition(
    b: &mut Builder,
    alias: &str,
    parent_alias: &str,
    join: &Join,
    and: &mut impl FnMut(&mut Builder),
) {
    match join {
        Join::Columns(pairs) => {
            for (parent_col, col) in pairs {
                and(b);
                column(b, alias, col);
                b.sql.push_str(" = ");
                column(b, parent_alias, parent_col);
            }
        }
        Join::Junction { parent, .. } => {
            let j = junction_alias(alias);
            for (parent_col, junction_col) in parent {
                and(b);
                column(b, &j, junction_col);
                b.sql.push_str(" = ");
                column(b, parent_alias, parent_col);
            }
        }
        Join::Function(_) => {}
    }
}

/// The lateral subquery of an embed: to-one, the child's row(s); to-many, `json_agg` of them
/// as `body` (or one array per column for a spread).
fn lateral(b: &mut Builder, e: &PlannedEmbed, parent_alias: &str) {
    if e.to_one {
        node(b, &e.node, Some((parent_alias, &e.join)), false);
        return;
    }
    b.sql.push_str("SELECT ");
    if e.spread {
        for (i, col) in e.columns.iter().enumerate() {
            if i > 0 {
                b.sql.push_str(", ");
            }
            b.sql.push_str("pg_catalog.json_agg(_pgrst_e.");
            push_ident(&mut b.sql, col);
            b.sql.push_str(") AS ");
            push_ident(&mut b.sql, col);
        }
    } else {
        b.sql.push_str("pg_catalog.json_agg(_pgrst_e) AS \"body\"");
    }
    b.sql.push_str(" FROM (");
    node(b, &e.node, Some((parent_alias, &e.join)), false);
    b.sql.push_str(") AS _pgrst_e");
}

pub(super) fn qualified(b: &mut Builder, schema: &str, name: &str) {
    push_ident(&mut b.sql, schema);
    b.sql.push('.');
    push_ident(&mut b.sql, name);
}

pub(super) fn column(b: &mut Builder, alias: &str, name: &str) {
    push_ident(&mut b.sql, alias);
    b.sql.push('.');
    push_ident(&mut b.sql, name);
}

/// An output column: a domain's value through its cast to json, then the select's cast.
fn shown(b: &mut Builder, alias: &str, e: &Expr) {
    let Some(f) = &e.to_json else {
        return expr(b, alias, e);
    };
    if e.cast.is_some() {
        b.sql.push('(');
    }
    qualified(b, &f.schema, &f.name);
    b.sql.push('(');
    expr(
        b,
        alias,
        &Expr {
            cast: None,
            ..e.clone()
        },
    );
    b.sql.push(')');
    if e.cast.is_some() {
        b.sql.push(')');
    }
    cast(b, e.cast.as_deref());
}

/// A filter's text value as the target's type: through a domain's text cast when it has one.
fn value(b: &mut Builder, target: &Expr, placeholder: &str) {
    match &target.from_text {
        Some(f) => {
            qualified(b, &f.schema, &f.name);
            b.sql.push_str(&format!("({placeholder}::text)"));
        }
        None => b
            .sql
            .push_str(&format!("{placeholder}::{}", target.type_name)),
    }
}

/// A column or computed column with its JSON path and cast.
fn expr(b: &mut Builder, alias: &str, e: &Expr) {
    if e.cast.is_some() {
        b.sql.push('(');
    }
    // A JSON path into a composite or an array reads its JSON form.
    let as_json =
        !e.field.json_path.is_empty() && !matches!(e.source_type.as_str(), "json" | "jsonb");
    if as_json {
        b.sql.push_str("pg_catalog.to_jsonb(");
    }
    match &e.source {
        Source::Column(c) => column(b, alias, c),
        Source::Computed(f) => {
            qualified(b, &f.schema, &f.name);
            b.sql.push('(');
            push_ident(&mut b.sql, alias);
            b.sql.push(')');
        }
    }
    if as_json {
        b.sql.push(')');
    }
    json_path(b, &e.field);
    if e.cast.is_some() {
        b.sql.push(')');
    }
    cast(b, e.cast.as_deref());
}

/// JSON keys and indexes are parameters like any value.
fn json_path(b: &mut Builder, f: &crate::api_request::Field) {
    for step in &f.json_path {
        b.sql.push_str(if step.as_text { "->>" } else { "->" });
        match &step.key {
            JsonKey::Key(k) => {
                let p = b.param(k.clone());
                b.sql.push_str(&format!("{p}::text"));
            }
            JsonKey::Index(i) => {
                let p = b.param(i.to_string());
                b.sql.push_str(&format!("{p}::int4"));
            }
        }
    }
}

fn cast(b: &mut Builder, to: Option<&str>) {
    if let Some(t) = to {
        b.sql.push_str("::");
        push_type(&mut b.sql, t);
    }
}

pub(super) fn condition(b: &mut Builder, n: &Node, c: &PlannedCondition) {
    match c {
        PlannedCondition::Logic {
            or,
            negated,
            children,
        } => {
            if *negated {
                b.sql.push_str("NOT ");
            }
            b.sql.push('(');
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    b.sql.push_str(if *or { " OR " } else { " AND " });
                }
                condition(b, n, child);
            }
            b.sql.push(')');
        }
        PlannedCondition::EmbedNull { embed, is_null } => {
            let e = &n.embeds[*embed];
            if e.to_one {
                b.sql.push_str("pg_catalog.row_to_json(");
                push_ident(&mut b.sql, &e.lateral);
                b.sql.push_str(".*)");
            } else {
                push_ident(&mut b.sql, &e.lateral);
                b.sql.push_str(".\"body\"");
            }
            b.sql
                .push_str(if *is_null { " IS NULL" } else { " IS NOT NULL" });
        }
        PlannedCondition::Filter {
            target,
            negated,
            op,
        } => {
            if *negated {
                b.sql.push_str("NOT ");
            }
            b.sql.push('(');
            filter(b, &n.alias, target, op);
            b.sql.push(')');
        }
    }
}

fn filter(b: &mut Builder, alias: &str, target: &Expr, op: &FilterOp) {
    match op {
        FilterOp::Is(v) => {
            expr(b, alias, target);
            b.sql.push(' ');
            b.sql.push_str(v.sql());
        }
        FilterOp::IsDistinct(v) => {
            expr(b, alias, target);
            let p = b.param(v.clone());
            b.sql.push_str(" IS DISTINCT FROM ");
            value(b, target, &p);
        }
        FilterOp::In(values) => {
            expr(b, alias, target);
            let p = b.param(array_literal(values));
            match &target.from_text {
                Some(f) => {
                    b.sql.push_str(" IN (SELECT ");
                    qualified(b, &f.schema, &f.name);
                    b.sql.push_str(&format!(
                        "(_pgrst_v) FROM pg_catalog.unnest({p}::text[]) AS _pgrst_v)"
                    ));
                }
                None => {
                    b.sql.push_str(&format!(" = ANY ({p}::"));
                    b.sql.push_str(&target.type_name);
                    b.sql.push_str("[])");
                }
            }
        }
        FilterOp::Fts {
            op,
            language,
            value,
        } => {
            let lang = language.as_ref().map(|l| b.param(l.clone()));
            if target.base_type == "tsvector" {
                expr(b, alias, target);
            } else {
                b.sql.push_str("pg_catalog.to_tsvector(");
                if let Some(l) = &lang {
                    b.sql.push_str(&format!("{l}::regconfig, "));
                }
                expr(b, alias, target);
                b.sql.push(')');
            }
            b.sql.push_str(" @@ ");
            b.sql.push_str(op.sql_function());
            b.sql.push('(');
            if let Some(l) = &lang {
                b.sql.push_str(&format!("{l}::regconfig, "));
            }
            let p = b.param(value.clone());
            b.sql.push_str(&format!("{p})"));
        }
        FilterOp::Compare {
            op,
            quantifier,
            value: v,
        } => {
            expr(b, alias, target);
            b.sql.push(' ');
            b.sql.push_str(op.sql());
            b.sql.push(' ');
            // Patterns stay text; comparisons cast the text parameter to the column's type
            // so PostgreSQL compares (and uses indexes) in that type, and a bad value is its
            // 22P02.
            let type_name = if op.is_pattern() {
                "text"
            } else {
                target.type_name.as_str()
            };
            let p = b.param(v.clone());
            match quantifier {
                None if !op.is_pattern() => value(b, target, &p),
                None => b.sql.push_str(&format!("{p}::{type_name}")),
                Some(q) => {
                    let word = if *q == Quantifier::Any { "ANY" } else { "ALL" };
                    b.sql.push_str(&format!("{word} ({p}::{type_name}[])"));
                }
            }
        }
    }
}

/// A PostgreSQL array literal of text elements, each quoted.
pub(super) fn array_literal(values: &[String]) -> String {
    let mut out = String::from("{");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for ch in v.chars() {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
    }
    out.push('}');
    out
}
