//! Plan: resolve an ApiRequest against the schema cache. Every name the client gave is checked
//! here, so the SQL stage only ever sees relations and columns that exist.

use crate::api_request::{ApiRequest, Filter, OrderTerm, Resource};
use crate::error::ApiError;
use crate::range::RowRange;
use crate::schema_cache::SchemaCache;

/// A read of one relation, names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub schema: String,
    pub relation: String,
    pub filters: Vec<PlannedFilter>,
    /// `order=` terms, on columns that exist.
    pub order: Vec<OrderTerm>,
    /// Rows wanted, capped by `pg_rest.max_rows`.
    pub range: RowRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFilter {
    pub filter: Filter,
    /// The column's type, to cast the text bind parameter to (see `Column::type_name`).
    pub type_name: String,
}

/// Resolves a read of `req.resource` in `schema` (the first of `pg_rest.schemas`), returning at
/// most `max_rows` rows.
pub fn read_plan(
    req: &ApiRequest,
    cache: &SchemaCache,
    schema: &str,
    max_rows: Option<u32>,
) -> Result<ReadPlan, ApiError> {
    let name = match &req.resource {
        Resource::Relation(name) => name,
        Resource::Root => return Err(ApiError::not_implemented("the root endpoint (OpenAPI)")),
    };
    let relation = cache
        .relation(schema, name)
        .ok_or_else(|| ApiError::table_not_found(schema, name))?;
    let column = |name: &str| {
        relation
            .column(name)
            .ok_or_else(|| ApiError::undefined_column(&relation.name, name))
    };
    let filters = req
        .filters
        .iter()
        .map(|f| {
            Ok(PlannedFilter {
                filter: f.clone(),
                type_name: column(&f.column)?.type_name.clone(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    for term in &req.order {
        column(&term.column)?;
    }
    Ok(ReadPlan {
        schema: schema.to_string(),
        relation: name.clone(),
        filters,
        order: req.order.clone(),
        range: req.range.capped(max_rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_request::parse;

    fn cache() -> SchemaCache {
        crate::schema_cache::test_cache("books")
    }

    #[test]
    fn resolves_filters_with_their_types() {
        let plan = read_plan(
            &parse("GET", "/books?id=eq.1", []).unwrap(),
            &cache(),
            "public",
            None,
        )
        .unwrap();
        assert_eq!(plan.relation, "books");
        assert_eq!(plan.filters[0].type_name, "integer");
    }

    #[test]
    fn unknown_relation_is_pgrst205() {
        let e = read_plan(
            &parse("GET", "/nope", []).unwrap(),
            &cache(),
            "public",
            None,
        )
        .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (404, "PGRST205"));
        assert!(e.message.contains("'public.nope'"));
    }

    #[test]
    fn unknown_column_is_42703() {
        let e = read_plan(
            &parse("GET", "/books?nope=eq.1", []).unwrap(),
            &cache(),
            "public",
            None,
        )
        .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "42703"));
        assert_eq!(e.message, "column books.nope does not exist");
    }

    #[test]
    fn order_columns_must_exist_and_max_rows_caps_the_range() {
        let plan = read_plan(
            &parse("GET", "/books?order=title.desc&limit=50", []).unwrap(),
            &cache(),
            "public",
            Some(10),
        )
        .unwrap();
        assert_eq!(plan.order[0].column, "title");
        assert_eq!(plan.range.limit, Some(10));
        let e = read_plan(
            &parse("GET", "/books?order=nope", []).unwrap(),
            &cache(),
            "public",
            None,
        )
        .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "42703"));
    }

    #[test]
    fn other_schemas_are_not_searched() {
        let e = read_plan(&parse("GET", "/books", []).unwrap(), &cache(), "api", None).unwrap_err();
        assert_eq!(e.code, "PGRST205");
    }
}
