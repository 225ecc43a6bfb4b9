//! Realtime's SQL (docs/realtime.md "Visibility"): which of a batch's row changes each
//! subscription of one (role, claims) group gets, in one statement run as that role, and the
//! checks a subscription passes once, when it is made.
//!
//! The batch is one JSON parameter, `[{"r": row, "d": true?}, …]` (`d` marks a delete, whose
//! row is the old key or old row). Each row becomes a record of the table's type under the
//! root alias the filters were planned for, so a subscription's REST filter is PostgreSQL's
//! own comparison on the event's row (the read dialect's SQL, with its casts and operators).
//! Inserts and updates are visible only if the role can read the row now (GRANTs and row
//! level security, through a look-up by key); a deleted row cannot be looked up, so a delete
//! reaches every subscriber whose role may read the table.

use super::read::{column, condition, qualified};
use super::{push_ident, Builder, Statement};
use crate::plan::Node;
use crate::schema_cache::QualifiedName;

/// One row per (event, subscription) that matches: `"<event ordinal, 1-based> <subscription
/// index>"`. `nodes[i]` is subscription i's planned read of the table (only its conditions
/// matter); all are roots, so they share one alias.
pub fn visibility_statement(
    table: &QualifiedName,
    primary_key: &[String],
    nodes: &[&Node],
    events_json: String,
) -> Statement {
    let alias = nodes.first().map_or("pgrst_0", |n| n.alias.as_str());
    let mut b = Builder::default();
    let events = b.param(events_json);
    b.sql
        .push_str("SELECT e.ord::text || ' ' || s.i::text FROM pg_catalog.jsonb_array_elements(");
    b.sql.push_str(&events);
    b.sql.push_str(
        "::jsonb) WITH ORDINALITY AS e(j, ord) CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::",
    );
    qualified(&mut b, &table.schema, &table.name);
    b.sql.push_str(", e.j->'r') AS ");
    push_ident(&mut b.sql, alias);
    b.sql.push_str(" CROSS JOIN LATERAL (VALUES ");
    for (i, node) in nodes.iter().enumerate() {
        if i > 0 {
            b.sql.push_str(", ");
        }
        b.sql.push_str(&format!("({i}, "));
        if node.conditions.is_empty() {
            b.sql.push_str("TRUE");
        } else {
            for (k, c) in node.conditions.iter().enumerate() {
                if k > 0 {
                    b.sql.push_str(" AND ");
                }
                condition(&mut b, node, c);
            }
        }
        b.sql.push(')');
    }
    b.sql.push_str(
        ") AS s(i, ok) WHERE s.ok AND ((e.j->>'d') IS NOT NULL OR EXISTS (SELECT 1 FROM ",
    );
    qualified(&mut b, &table.schema, &table.name);
    b.sql.push_str(" AS pgrst_t WHERE ");
    if primary_key.is_empty() {
        // No key to look the row up by: the whole row, as text.
        b.sql.push_str("pgrst_t::text = ");
        push_ident(&mut b.sql, alias);
        b.sql.push_str("::text");
    } else {
        for (k, key) in primary_key.iter().enumerate() {
            if k > 0 {
                b.sql.push_str(" AND ");
            }
            column(&mut b, "pgrst_t", key);
            b.sql.push_str(" = ");
            column(&mut b, alias, key);
        }
    }
    b.sql.push_str(")) ORDER BY e.ord, s.i");
    b.finish()
}

/// Run once as a new subscriber's role: fails as a read would (42501 without SELECT on the
/// table or a filtered column, 22P02 for a value the column's type cannot hold), and returns
/// the columns the role may read, in table order.
pub fn subscribe_check_statement(table: &QualifiedName, node: &Node) -> Statement {
    let mut b = Builder::default();
    b.sql
        .push_str("SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = ");
    let name = b.param(format!(
        "{}.{}",
        super::quote_ident(&table.schema),
        super::quote_ident(&table.name)
    ));
    b.sql.push_str(&name);
    b.sql.push_str(
        "::regclass AND a.attnum > 0 AND NOT a.attisdropped \
         AND pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT') \
         AND NOT EXISTS (SELECT 1 FROM ",
    );
    qualified(&mut b, &table.schema, &table.name);
    b.sql.push_str(" AS ");
    push_ident(&mut b.sql, &node.alias);
    for (k, c) in node.conditions.iter().enumerate() {
        b.sql.push_str(if k == 0 { " WHERE " } else { " AND " });
        condition(&mut b, node, c);
    }
    b.sql.push_str(" LIMIT 0) ORDER BY a.attnum");
    b.finish()
}

/// Whether the caller may use a channel: EXECUTE on `pg_rest.publish` for publishing, and
/// the `pg_rest.channel_check` function (`fn(channel, action)`), when one is set, for both.
pub fn channel_check_statement(check: Option<&str>, channel: &str, action: &str) -> Statement {
    let mut b = Builder::default();
    b.sql.push_str("SELECT (");
    if action == "publish" {
        b.sql.push_str(
            "pg_catalog.has_function_privilege('pg_rest.publish(text, jsonb)', 'EXECUTE')",
        );
    } else {
        b.sql.push_str("TRUE");
    }
    if let Some(f) = check {
        let (c, a) = (b.param(channel.to_string()), b.param(action.to_string()));
        b.sql.push_str(" AND coalesce(");
        for (i, part) in f.split('.').enumerate() {
            if i > 0 {
                b.sql.push('.');
            }
            push_ident(&mut b.sql, part);
        }
        b.sql.push_str(&format!("({c}::text, {a}::text), false)"));
    }
    b.sql.push_str(")::text");
    b.finish()
}
