use super::*;
use crate::api_request::parse;
use crate::plan::{read_plan, Limits};
use crate::schema_cache::library_cache;

fn statement(target: &str) -> Statement {
    statement_with(target, &[])
}

fn statement_with(target: &str, headers: &[(&str, &str)]) -> Statement {
    let limits = Limits {
        max_rows: None,
        aggregates_enabled: true,
    };
    let req = parse("GET", target, headers.iter().copied()).unwrap();
    read_statement(&read_plan(&req, &library_cache(), "lib", &limits).unwrap())
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
fn casts_are_quoted_type_names() {
    let mut s = String::new();
    push_type(&mut s, "integer");
    assert_eq!(s, "\"int4\"");
    let mut s = String::new();
    push_type(&mut s, "text[]");
    assert_eq!(s, "\"text\"[]");
    let mut s = String::new();
    push_type(&mut s, "x\" ; drop");
    assert_eq!(s, "\"x\"\" ; drop\"");
}

#[test]
fn unfiltered_read() {
    let s = statement("/books");
    assert_eq!(
        s.sql,
        "SELECT pg_catalog.count(_pgrst_t)::int8, NULL::int8, \
         coalesce(pg_catalog.json_agg(_pgrst_t), '[]')::text, \
         NULLIF(pg_catalog.current_setting('response.headers', true), ''), \
         NULLIF(pg_catalog.current_setting('response.status', true), ''), \
         NULL::text, NULL::int8 FROM (SELECT \"pgrst_0\".* \
         FROM \"lib\".\"books\" AS \"pgrst_0\") _pgrst_t"
    );
    assert!(s.params.is_empty());
}

#[test]
fn every_value_is_a_parameter_never_text() {
    let hostile = "x'; DROP TABLE t;--";
    let s = statement(&format!(
        "/books?select=id,meta->>genre&id=in.(1,2)&title=eq.{hostile}&or=(year.gt.2000,title.like.*a*)\
         &meta->>genre=fts(english).war&order=meta->>genre.desc&limit=5&offset=10"
    ));
    assert!(!s.sql.contains("DROP") && !s.sql.contains("english") && !s.sql.contains("war"));
    assert!(s.params.contains(&hostile.to_string()));
    assert!(s.params.contains(&"{\"1\",\"2\"}".to_string()));
    assert!(s.params.contains(&"%a%".to_string()));
    assert!(s.sql.contains("= ANY ($"));
    assert!(s.sql.contains("::regconfig"));
    assert!(
        s.sql
            .ends_with("LIMIT $10::int8 OFFSET $11::int8) _pgrst_t"),
        "{}",
        s.sql
    );
}

#[test]
fn same_shape_same_text() {
    let a = statement("/books?select=title,authors(name)&id=eq.1&limit=2&authors.name=like.A*");
    let b = statement("/books?select=title,authors(name)&id=eq.7&limit=9&authors.name=like.B*");
    assert_eq!(a.sql, b.sql);
    assert_ne!(a.params, b.params);
    assert_ne!(
        a.sql,
        statement("/books?select=title,authors(name)&id=gt.1&limit=2").sql
    );
}

#[test]
fn embeds_are_lateral_subqueries() {
    let s = statement("/books?select=title,authors(name),tags(name)");
    assert!(
        s.sql
            .contains("pg_catalog.row_to_json(\"pgrst_1_l\".*) AS \"authors\""),
        "{}",
        s.sql
    );
    assert!(s.sql.contains("LEFT JOIN LATERAL (SELECT \"pgrst_1\".\"name\" AS \"name\" FROM \"lib\".\"authors\" AS \"pgrst_1\" WHERE \"pgrst_1\".\"id\" = \"pgrst_0\".\"author_id\") AS \"pgrst_1_l\" ON TRUE"), "{}", s.sql);
    assert!(s
        .sql
        .contains("coalesce(\"pgrst_2_l\".\"body\", '[]') AS \"tags\""));
    assert!(s.sql.contains("INNER JOIN \"lib\".\"book_tags\" AS \"pgrst_2_j\" ON \"pgrst_2_j\".\"tag_id\" = \"pgrst_2\".\"id\" WHERE \"pgrst_2_j\".\"book_id\" = \"pgrst_0\".\"id\""), "{}", s.sql);
}

#[test]
fn inner_joins_and_anti_joins() {
    let s = statement("/authors?select=name,books!inner(title)");
    assert!(
        s.sql.contains("WHERE \"pgrst_1_l\".\"body\" IS NOT NULL"),
        "{}",
        s.sql
    );
    let s = statement("/books?select=title,authors!inner(name)");
    assert!(s.sql.contains("INNER JOIN LATERAL"));
    let s = statement("/authors?select=name,books()&books=is.null");
    assert!(s.sql.contains("\"pgrst_1_l\".\"body\" IS NULL"));
}

#[test]
fn exact_count_counts_without_range() {
    let s = statement_with(
        "/authors?select=name,books!inner(title)&limit=1",
        &[("prefer", "count=exact")],
    );
    assert!(s.sql.starts_with("SELECT pg_catalog.count(_pgrst_t)::int8, (SELECT pg_catalog.count(*) FROM (SELECT 1 FROM \"lib\".\"authors\" AS \"pgrst_0\" LEFT JOIN LATERAL"), "{}", s.sql);
    // The count's embed and the page's share their parameters' shapes but not their slots.
    assert_eq!(s.params, ["1"]);
}

#[test]
fn media_types_shape_the_body() {
    let csv = statement_with("/books", &[("accept", "text/csv")]);
    assert!(csv
        .sql
        .contains("pg_catalog.string_agg(pg_catalog.substr(_pgrst_t::text"));
    let one = statement_with("/books", &[("accept", "application/vnd.pgrst.object+json")]);
    assert!(one
        .sql
        .contains("(pg_catalog.json_agg(_pgrst_t) -> 0)::text"));
}

#[test]
fn aggregates_group_by_the_other_outputs() {
    let s = statement("/books?select=year,total:id.count(),count()");
    assert!(s.sql.contains("pg_catalog.count(\"pgrst_0\".\"id\") AS \"total\", pg_catalog.count(*) AS \"count\" FROM"), "{}", s.sql);
    assert!(s.sql.contains(" GROUP BY 1)"), "{}", s.sql);
}

#[test]
fn planned_counts_explain_the_counting_query() {
    let limits = Limits {
        max_rows: None,
        aggregates_enabled: false,
    };
    let req = parse("GET", "/books?id=gt.3", []).unwrap();
    let s = planned_count_statement(&read_plan(&req, &library_cache(), "lib", &limits).unwrap());
    assert_eq!(s.sql, "EXPLAIN (FORMAT JSON) SELECT 1 FROM \"lib\".\"books\" AS \"pgrst_0\" WHERE (\"pgrst_0\".\"id\" > $1::integer)");
    assert_eq!(plan_rows("[{\"Plan\": {\"Plan Rows\": 42}}]"), Some(42));
    assert_eq!(plan_rows("nonsense"), None);
}

#[test]
fn domains_show_and_read_through_their_casts() {
    let s = statement("/labels?color=eq.%23fff&id=in.(1,2)");
    // `*` is spelled out so the domain column goes through its cast to json.
    assert!(
        s.sql.contains("SELECT \"pgrst_0\".\"id\" AS \"id\", \"lib\".\"color_json\"(\"pgrst_0\".\"color\") AS \"color\""),
        "{}",
        s.sql
    );
    assert!(
        s.sql
            .contains("(\"pgrst_0\".\"color\" = \"lib\".\"color_text\"($1::text))"),
        "{}",
        s.sql
    );
    assert_eq!(s.params[0], "#fff");
    let s = statement("/labels?select=c:color::text");
    assert!(
        s.sql
            .contains("(\"lib\".\"color_json\"(\"pgrst_0\".\"color\"))::\"text\" AS \"c\""),
        "{}",
        s.sql
    );
}

#[test]
fn inserts_parse_domain_columns_through_their_json_cast() {
    let limits = Limits {
        max_rows: None,
        aggregates_enabled: false,
    };
    let req = crate::api_request::parse_with_body(
        "POST",
        "/labels",
        [],
        br##"[{"id": 1, "color": "#001100"}]"##,
    )
    .unwrap();
    let plan = crate::plan::write::write_plan(&req, &library_cache(), "lib", &limits).unwrap();
    let s = write_statement(&plan);
    // The cast column is the cast function of its JSON value; the others are populated from
    // an object of just their keys; key names are parameters, not SQL text.
    assert!(
        s.sql.contains(
            "(\"color\", \"id\") SELECT \"lib\".\"color_from_json\"(_pgrst_j -> $1::text), \
             \"_pgrst_r\".\"id\" FROM pg_catalog.json_array_elements($2::json) AS _pgrst_j, \
             LATERAL pg_catalog.json_populate_record(NULL::\"lib\".\"labels\", \
             pg_catalog.json_build_object($3::text, _pgrst_j -> $3::text)) AS _pgrst_r"
        ),
        "{}",
        s.sql
    );
    assert_eq!(s.params[0], "color");
    assert_eq!(s.params[2], "id");
    // Without a cast column, the usual single populate.
    let req = crate::api_request::parse_with_body("POST", "/labels", [], br#"{"id": 1}"#).unwrap();
    let plan = crate::plan::write::write_plan(&req, &library_cache(), "lib", &limits).unwrap();
    assert!(write_statement(&plan)
        .sql
        .contains("FROM pg_catalog.json_populate_recordset(NULL::\"lib\".\"labels\", pg_catalog.json_build_array($1::json)) AS _pgrst_r"));
}

fn root(target: &str) -> crate::plan::Node {
    let limits = Limits {
        max_rows: None,
        aggregates_enabled: false,
    };
    let req = parse("GET", target, []).unwrap();
    read_plan(&req, &library_cache(), "lib", &limits)
        .unwrap()
        .root
}

#[test]
fn realtime_visibility_judges_each_subscription_on_the_event_row() {
    let table = crate::schema_cache::QualifiedName::new("lib", "books");
    let (filtered, all) = (
        root("/books?id=gt.2&or=(title.eq.x,title.is.null)"),
        root("/books"),
    );
    let s = visibility_statement(&table, &["id".into()], &[&filtered, &all], "[]".into());
    assert_eq!(
        s.sql,
        "SELECT e.ord::text || ' ' || s.i::text FROM pg_catalog.jsonb_array_elements($1::jsonb) \
         WITH ORDINALITY AS e(j, ord) CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(\
         NULL::\"lib\".\"books\", e.j->'r') AS \"pgrst_0\" CROSS JOIN LATERAL (VALUES \
         (0, (\"pgrst_0\".\"id\" > $2::integer) AND ((\"pgrst_0\".\"title\" = $3::text) OR \
         (\"pgrst_0\".\"title\" IS NULL))), (1, TRUE)) AS s(i, ok) WHERE s.ok AND \
         ((e.j->>'d') IS NOT NULL OR EXISTS (SELECT 1 FROM \"lib\".\"books\" AS pgrst_t WHERE \
         \"pgrst_t\".\"id\" = \"pgrst_0\".\"id\")) ORDER BY e.ord, s.i"
    );
    assert_eq!(s.params, vec!["[]", "2", "x"]);
    // No key: the row is looked up whole.
    let s = visibility_statement(&table, &[], &[&all], "[]".into());
    assert!(
        s.sql.contains("WHERE pgrst_t::text = \"pgrst_0\"::text"),
        "{}",
        s.sql
    );
}

#[test]
fn realtime_subscribe_check_reads_the_filter_once_as_the_role() {
    let table = crate::schema_cache::QualifiedName::new("lib", "books");
    let s = subscribe_check_statement(&table, &root("/books?id=eq.1"));
    assert!(s.sql.contains("has_column_privilege"), "{}", s.sql);
    assert!(
        s.sql.contains(
            "NOT EXISTS (SELECT 1 FROM \"lib\".\"books\" AS \"pgrst_0\" WHERE (\"pgrst_0\".\"id\" = $2::integer) LIMIT 0)"
        ),
        "{}",
        s.sql
    );
    assert_eq!(s.params, vec!["\"lib\".\"books\"", "1"]);
}

#[test]
fn realtime_channel_check_calls_the_configured_function() {
    let s = channel_check_statement(Some("auth.may"), "chat", "publish");
    assert_eq!(
        s.sql,
        "SELECT (pg_catalog.has_function_privilege('pg_rest.publish(text, jsonb)', 'EXECUTE') \
         AND coalesce(\"auth\".\"may\"($1::text, $2::text), false))::text"
    );
    assert_eq!(s.params, vec!["chat", "publish"]);
    assert_eq!(
        channel_check_statement(None, "chat", "subscribe").sql,
        "SELECT (TRUE)::text"
    );
}

fn write(method: &str, target: &str, body: &[u8]) -> Result<Statement, crate::error::ApiError> {
    write_with(method, target, &[], body)
}

fn write_with(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Statement, crate::error::ApiError> {
    let limits = Limits {
        max_rows: None,
        aggregates_enabled: false,
    };
    let req = crate::api_request::parse_with_body(method, target, headers.iter().copied(), body)?;
    crate::plan::write::write_plan(&req, &library_cache(), "lib", &limits)
        .map(|plan| write_statement(&plan))
}

#[test]
fn limited_update_and_delete_write_a_range_of_the_filtered_rows_in_order() {
    let s = write(
        "PATCH",
        "/books?year=gt.2000&order=id.desc&limit=2&offset=1",
        br#"{"title": "t"}"#,
    )
    .unwrap();
    assert!(
        s.sql.contains(
            "AS _pgrst_r, (SELECT \"pgrst_0\".\"id\" FROM \"lib\".\"books\" AS \"pgrst_0\" \
             WHERE (\"pgrst_0\".\"year\" > $2::integer) ORDER BY \"pgrst_0\".\"id\" DESC \
             LIMIT $3::int8 OFFSET $4::int8) AS pgrst_affected_rows \
             WHERE \"pgrst_0\".\"id\" = \"pgrst_affected_rows\".\"id\" \
             AND (\"pgrst_0\".\"year\" > $5::integer) RETURNING"
        ),
        "{}",
        s.sql
    );
    assert_eq!(s.params[1..], ["2000", "2", "1", "2000"]);
    let s = write("DELETE", "/books?order=id&limit=1", b"").unwrap();
    assert!(
        s.sql.contains(
            "DELETE FROM \"lib\".\"books\" AS \"pgrst_0\" USING (SELECT \"pgrst_0\".\"id\" \
             FROM \"lib\".\"books\" AS \"pgrst_0\" ORDER BY \"pgrst_0\".\"id\" \
             LIMIT $1::int8) AS pgrst_affected_rows \
             WHERE \"pgrst_0\".\"id\" = \"pgrst_affected_rows\".\"id\" RETURNING"
        ),
        "{}",
        s.sql
    );
    // Without a range, the plain write; a Range header does not limit a write.
    let plain = write_with("DELETE", "/books?id=eq.1", &[("range", "0-1")], b"").unwrap();
    assert!(!plain.sql.contains("pgrst_affected_rows"), "{}", plain.sql);
}

#[test]
fn a_limited_write_without_an_order_of_columns_is_refused() {
    for target in [
        "/books?limit=1",
        "/books?offset=2",
        "/books?limit=1&order=title->>x",
    ] {
        let e = write("DELETE", target, b"").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST109"), "{target}");
        assert_eq!(
            e.hint.as_deref(),
            Some("Apply an 'order' using unique column(s)")
        );
    }
}
