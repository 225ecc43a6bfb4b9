use super::*;
use crate::api_request::parse;
use crate::schema_cache::library_cache;

fn plan(target: &str) -> Result<ReadPlan, ApiError> {
    let limits = Limits {
        max_rows: None,
        aggregates_enabled: true,
    };
    read_plan(
        &parse("GET", target, []).unwrap(),
        &library_cache(),
        "lib",
        &limits,
    )
}

#[test]
fn unknown_names_are_errors_before_sql() {
    let e = plan("/nope").unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (404, "PGRST205"));
    let e = plan("/books?select=nope").unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str(), e.message.as_str()),
        (400, "42703", "column books.nope does not exist")
    );
    assert_eq!(plan("/books?nope=eq.1").unwrap_err().code, "42703");
    assert_eq!(plan("/books?order=nope").unwrap_err().code, "42703");
}

#[test]
fn embeds_resolve_to_one_and_to_many() {
    let p = plan("/books?select=title,authors(name),tags(name)").unwrap();
    let e = &p.root.embeds;
    assert!(
        e[0].to_one
            && matches!(&e[0].join, Join::Columns(c) if c == &[("author_id".to_string(), "id".to_string())])
    );
    assert!(!e[1].to_one && matches!(&e[1].join, Join::Junction { .. }));
    let p = plan("/authors?select=name,books(title,reviews:book_tags(*))").unwrap();
    assert!(!p.root.embeds[0].to_one);
    assert_eq!(p.root.embeds[0].node.embeds[0].label, "reviews");
    // A foreign key column names its to-one target.
    assert!(plan("/books?select=author_id(name)").unwrap().root.embeds[0].to_one);
}

#[test]
fn ambiguity_and_hints() {
    let e = plan("/authors?select=loans(id)").unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (300, "PGRST201"));
    assert_eq!(
        e.hint.as_deref(),
        Some("Try changing 'loans' to one of the following: 'loans!borrower', 'loans!lender'. Find the desired relationship in the 'details' key.")
    );
    let details: serde_json::Value = serde_json::from_str(e.details.as_deref().unwrap()).unwrap();
    assert_eq!(details[0]["cardinality"], "one-to-many");
    assert!(plan("/authors?select=loans!lender(id)").is_ok());
    assert!(plan("/authors?select=loans!borrower_id(id)").is_ok());
    let e = plan("/authors?select=loans!nope(id)").unwrap_err();
    assert_eq!(e.code, "PGRST200");
    assert_eq!(
        e.details.as_deref(),
        Some("Searched for a foreign key relationship between 'authors' and 'loans' using the hint 'nope' in the schema 'lib', but no matches were found.")
    );
    assert_eq!(plan("/tags?select=loans(id)").unwrap_err().code, "PGRST200");
}

#[test]
fn embedded_parameters_need_their_embed() {
    let e = plan("/authors?select=name&books.year=gt.1").unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (400, "PGRST108"));
    let p =
        plan("/authors?select=name,books(title)&books.year=gt.1&books.order=year&books.limit=1")
            .unwrap();
    let child = &p.root.embeds[0].node;
    assert_eq!(
        (child.conditions.len(), child.order.len(), child.range.limit),
        (1, 1, Some(1))
    );
    assert!(p.root.conditions.is_empty());
}

#[test]
fn anti_joins_related_orders_and_computed_columns() {
    let p = plan("/authors?select=name,books()&books=is.null").unwrap();
    assert_eq!(
        p.root.conditions,
        [PlannedCondition::EmbedNull {
            embed: 0,
            is_null: true
        }]
    );
    assert_eq!(p.root.outputs.len(), 1, "an empty embed is not output");
    let p = plan("/books?select=id,authors(name)&order=authors(name).desc").unwrap();
    assert!(matches!(
        p.root.order[0].by,
        OrderBy::Related { embed: 0, .. }
    ));
    let e = plan("/authors?select=id,books(title)&order=books(title)").unwrap_err();
    assert_eq!(e.code, "PGRST118");
    let e = plan("/books?select=id&order=authors(name)").unwrap_err();
    assert_eq!(e.code, "PGRST108");
    let p = plan("/books?select=title_upper&title_upper=eq.X").unwrap();
    assert!(matches!(
        &p.root.outputs[0],
        Output::Expr { expr, .. } if matches!(expr.source, Source::Computed(_))
    ));
}

#[test]
fn json_paths_type_their_filters_and_spreads_expand_star() {
    let p = plan("/books?meta->>genre=eq.x&meta->awards=cs.[1]").unwrap();
    let types: Vec<&str> = p
        .root
        .conditions
        .iter()
        .map(|c| match c {
            PlannedCondition::Filter { target, .. } => target.type_name.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(types, ["text", "jsonb"]);
    let p = plan("/books?select=title,...authors(*)").unwrap();
    assert_eq!(p.root.embeds[0].columns, ["id", "name"]);
}

#[test]
fn aggregates_need_the_setting_and_max_rows_caps() {
    let limits = Limits {
        max_rows: Some(10),
        aggregates_enabled: false,
    };
    let cache = library_cache();
    let e = read_plan(
        &parse("GET", "/books?select=year.sum()", []).unwrap(),
        &cache,
        "lib",
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.code, "PGRST123");
    let p = read_plan(
        &parse("GET", "/books?limit=50", []).unwrap(),
        &cache,
        "lib",
        &limits,
    )
    .unwrap();
    assert_eq!(p.root.range.limit, Some(10));
    assert!(plan("/books?select=year,count()").unwrap().root.grouped);
}

#[test]
fn naming_an_aliased_embed_by_its_relation_is_served_with_a_warning() {
    let warning = |target: &str| {
        let req = parse("GET", target, []).unwrap();
        let p = plan(target).unwrap();
        legacy_embed_warning(&req, &p.root)
    };
    let w = warning("/authors?select=name,written:books(title)&books.limit=1").unwrap();
    assert!(w.starts_with("299 pg_rest \"Embedded resource was referenced by relation name"));
    assert!(w.ends_with("Update `books` to `written` in query string filters, orders or limits.\""));
    assert_eq!(
        warning("/authors?select=name,written:books(title)&written.limit=1"),
        None
    );
    assert_eq!(
        warning("/authors?select=name,books(title)&books.order=title"),
        None
    );
}
