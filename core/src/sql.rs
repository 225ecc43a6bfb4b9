//! SQL: where user input meets SQL text. Names reach the text only through `quote_ident`;
//! values only as bind parameters (`$n`, sent as text and cast in SQL). The text depends on the
//! request's shape alone, never on its values, so it doubles as the prepared-plan cache key.

use crate::api_request::{IsValue, NullsOrder, Operand, Operator};
use crate::plan::{PlannedFilter, ReadPlan};
use std::fmt::Write;

/// One parameterized statement; every parameter is of type `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
}

/// The one function that puts a name into SQL text: always double-quoted, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    push_ident(&mut out, name);
    out
}

fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

/// The call of `pg_rest.pre_request` (`fn` or `schema.fn`, as its check hook allows), each
/// part quoted.
pub fn pre_request_statement(function: &str) -> String {
    let mut sql = String::from("SELECT ");
    for (i, part) in function.splitn(2, '.').enumerate() {
        if i > 0 {
            sql.push('.');
        }
        push_ident(&mut sql, part);
    }
    sql.push_str("()");
    sql
}

/// The read as one statement returning one row: the row count (for Content-Range) and the
/// whole JSON body as one text datum, built by PostgreSQL.
pub fn read_statement(plan: &ReadPlan) -> Statement {
    let mut qualified = String::new();
    push_ident(&mut qualified, &plan.schema);
    qualified.push('.');
    push_ident(&mut qualified, &plan.relation);

    let mut sql = String::with_capacity(160 + 48 * plan.filters.len());
    sql.push_str(
        "SELECT pg_catalog.count(*)::int8, \
         coalesce(pg_catalog.json_agg(_pgrst_t), '[]')::text FROM (SELECT ",
    );
    let _ = write!(sql, "{qualified}.* FROM {qualified}");
    let mut params = Vec::new();
    for (i, filter) in plan.filters.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        push_condition(&mut sql, &qualified, filter, &mut params);
    }
    for (i, term) in plan.order.iter().enumerate() {
        sql.push_str(if i == 0 { " ORDER BY " } else { ", " });
        sql.push_str(&qualified);
        sql.push('.');
        push_ident(&mut sql, &term.column);
        if term.descending {
            sql.push_str(" DESC");
        }
        match term.nulls {
            Some(NullsOrder::First) => sql.push_str(" NULLS FIRST"),
            Some(NullsOrder::Last) => sql.push_str(" NULLS LAST"),
            None => {}
        }
    }
    // Row counts are parameters too: one plan serves every page of a shape.
    if let Some(limit) = plan.range.limit {
        params.push(limit.to_string());
        let _ = write!(sql, " LIMIT ${}::int8", params.len());
    }
    if plan.range.offset > 0 {
        params.push(plan.range.offset.to_string());
        let _ = write!(sql, " OFFSET ${}::int8", params.len());
    }
    sql.push_str(") _pgrst_t");
    Statement { sql, params }
}

fn push_condition(
    sql: &mut String,
    qualified: &str,
    planned: &PlannedFilter,
    params: &mut Vec<String>,
) {
    let f = &planned.filter;
    if f.negated {
        sql.push_str("NOT (");
    }
    sql.push_str(qualified);
    sql.push('.');
    push_ident(sql, &f.column);
    match &f.operand {
        Operand::Is(v) => sql.push_str(match v {
            IsValue::Null => " IS NULL",
            IsValue::NotNull => " IS NOT NULL",
            IsValue::True => " IS TRUE",
            IsValue::False => " IS FALSE",
            IsValue::Unknown => " IS UNKNOWN",
        }),
        Operand::Value(value) => {
            params.push(value.clone());
            let n = params.len();
            let op = match f.operator {
                Operator::Eq | Operator::Is => "=",
                Operator::Neq => "<>",
                Operator::Gt => ">",
                Operator::Gte => ">=",
                Operator::Lt => "<",
                Operator::Lte => "<=",
                Operator::Like => "LIKE",
                Operator::Ilike => "ILIKE",
            };
            // Patterns stay text; comparisons cast the text parameter to the column's type so
            // PostgreSQL compares (and uses indexes) in that type, and a bad value is its 22P02.
            match f.operator {
                Operator::Like | Operator::Ilike => {
                    let _ = write!(sql, " {op} ${n}");
                }
                _ => {
                    let _ = write!(sql, " {op} ${n}::{}", planned.type_name);
                }
            }
        }
    }
    if f.negated {
        sql.push(')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_request::parse;
    use crate::plan::read_plan;

    fn statement(target: &str) -> Statement {
        statement_capped(target, None)
    }

    fn statement_capped(target: &str, max_rows: Option<u32>) -> Statement {
        let cache = crate::schema_cache::test_cache("bo\"oks");
        read_statement(
            &read_plan(
                &parse("GET", target, []).unwrap(),
                &cache,
                "public",
                max_rows,
            )
            .unwrap(),
        )
    }

    #[test]
    fn pre_request_call_quotes_each_part() {
        assert_eq!(pre_request_statement("check"), "SELECT \"check\"()");
        assert_eq!(
            pre_request_statement("auth.switch_role"),
            "SELECT \"auth\".\"switch_role\"()"
        );
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn unfiltered_read() {
        let s = statement("/bo%22oks");
        assert_eq!(
            s.sql,
            "SELECT pg_catalog.count(*)::int8, coalesce(pg_catalog.json_agg(_pgrst_t), '[]')::text \
             FROM (SELECT \"public\".\"bo\"\"oks\".* FROM \"public\".\"bo\"\"oks\") _pgrst_t"
        );
        assert!(s.params.is_empty());
    }

    #[test]
    fn values_are_parameters_never_text() {
        let s = statement("/bo%22oks?id=eq.1&title=eq.x%27;%20DROP%20TABLE%20t;--");
        assert!(s.sql.ends_with(
            "WHERE \"public\".\"bo\"\"oks\".\"id\" = $1::integer AND \"public\".\"bo\"\"oks\".\"title\" = $2::text) _pgrst_t"
        ));
        assert_eq!(s.params, ["1", "x'; DROP TABLE t;--"]);
        assert!(!s.sql.contains("DROP"));
    }

    #[test]
    fn same_shape_same_text() {
        assert_eq!(
            statement("/bo%22oks?id=eq.1").sql,
            statement("/bo%22oks?id=eq.2").sql
        );
        assert_ne!(
            statement("/bo%22oks?id=eq.1").sql,
            statement("/bo%22oks?id=gt.1").sql
        );
    }

    #[test]
    fn max_rows_caps_the_inner_select() {
        let s = statement_capped("/bo%22oks?id=gt.1", Some(100));
        assert!(
            s.sql
                .ends_with("\"id\" > $1::integer LIMIT $2::int8) _pgrst_t"),
            "{}",
            s.sql
        );
        assert_eq!(s.params, ["1", "100"]);
        assert!(!statement("/bo%22oks").sql.contains("LIMIT"));
    }

    #[test]
    fn order_limit_and_offset() {
        let s = statement("/bo%22oks?order=title.desc.nullslast,id&limit=5&offset=10");
        assert!(
            s.sql.ends_with(
                "ORDER BY \"public\".\"bo\"\"oks\".\"title\" DESC NULLS LAST, \
                 \"public\".\"bo\"\"oks\".\"id\" LIMIT $1::int8 OFFSET $2::int8) _pgrst_t"
            ),
            "{}",
            s.sql
        );
        assert_eq!(s.params, ["5", "10"]);
        // Another page, the same statement.
        assert_eq!(
            statement("/bo%22oks?order=title.desc.nullslast,id&limit=7&offset=3").sql,
            s.sql
        );
    }

    #[test]
    fn operators_negation_and_is() {
        let s = statement("/bo%22oks?id=not.lt.3&title=ilike.*a*&id=is.null");
        assert!(s
            .sql
            .contains("NOT (\"public\".\"bo\"\"oks\".\"id\" < $1::integer)"));
        assert!(s.sql.contains("\"title\" ILIKE $2"));
        assert!(s.sql.contains("\"id\" IS NULL"));
        assert_eq!(s.params, ["3", "%a%"]);
    }
}
