//! The schema cache's model: the relations the API exposes, their columns and keys, the
//! relationships between them (for embedding) and the functions that act on their rows
//! (computed columns and relationships). The extension reads raw catalog rows
//! (src/schema_cache.rs) and [`build`] turns them into this model, so planning never looks
//! anything up in the catalogs itself.

mod build;
mod relationships;

pub use build::{
    build, CatalogRows, RawCast, RawColumn, RawForeignKey, RawFunction, RawMediaHandler,
    RawRelation,
};
pub use relationships::{Cardinality, Junction, Relationship};

use crate::error::ApiError;
use std::collections::HashMap;

/// A schema-qualified name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: &str, name: &str) -> Self {
        QualifiedName {
            schema: schema.to_string(),
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, NULL)`: a SQL type name as PostgreSQL prints it, quoted where
    /// needed and without a type modifier, so a filter value can be cast to it safely
    /// (a `varchar(3)` cast would silently truncate the value and match the wrong rows).
    pub type_name: String,
    /// The type after following domains: `tsvector`, `json`, `jsonb`, … decide how an
    /// operator applies to the column.
    pub base_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
    /// `varchar(n)`'s n, for the API description.
    pub max_length: Option<i32>,
    /// Allowed values of an enum-typed column, in order.
    pub enum_values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelationKind {
    #[default]
    Table,
    View,
    MaterializedView,
    ForeignTable,
    PartitionedTable,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    pub columns: Vec<Column>,
    /// Primary key columns; for a view, its base table's key where the view shows all of it.
    pub primary_key: Vec<String>,
    pub comment: Option<String>,
    /// Whether INSERT / UPDATE / DELETE are possible (`pg_relation_is_updatable`).
    pub insertable: bool,
    pub updatable: bool,
    pub deletable: bool,
}

impl Relation {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn qualified(&self) -> QualifiedName {
        QualifiedName::new(&self.schema, &self.name)
    }
}

/// How a function is declared volatile (`provolatile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Volatility {
    Immutable,
    Stable,
    #[default]
    Volatile,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parameter {
    pub name: String,
    pub type_name: String,
    /// Has a DEFAULT: the caller may leave it out.
    pub has_default: bool,
    pub variadic: bool,
}

/// A function in an exposed schema.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Function {
    pub schema: String,
    pub name: String,
    pub params: Vec<Parameter>,
    /// `format_type` of the return type.
    pub return_type: String,
    /// The relation whose rows it returns, if it returns a table's row type.
    pub returns_relation: Option<QualifiedName>,
    pub returns_set: bool,
    /// Declared `ROWS 1`: a set function PostgREST embeds as to-one.
    pub single_row: bool,
    /// Returns a scalar (not a composite or a table): the body is the bare value.
    pub returns_scalar: bool,
    pub volatility: Volatility,
    pub comment: Option<String>,
}

impl Function {
    /// A computed column or relationship of `relation`: one argument, of its row type.
    fn takes_row_of(
        &self,
        relation: &QualifiedName,
        row_types: &HashMap<String, QualifiedName>,
    ) -> bool {
        matches!(self.params.as_slice(), [p] if row_types.get(&p.type_name) == Some(relation))
    }
}

/// The functions of a domain's casts (PostgREST's "domain representations"): how values of
/// the domain are shown in JSON and read from a filter's text or a body's JSON. PostgreSQL
/// ignores casts to domains, so they are called as functions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DomainCasts {
    pub to_json: Option<QualifiedName>,
    pub from_text: Option<QualifiedName>,
    pub from_json: Option<QualifiedName>,
}

/// What a media handler answers for: any rows (an aggregate over `anyelement`), one
/// relation's rows, or one function's result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HandlerTarget {
    AnyElement,
    /// A relation, or a function (by its name); a set-returning function of a table's rows
    /// is answered as that table (PostgREST's rule).
    Named(QualifiedName),
}

/// How a media handler turns the result into the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerKind {
    /// An aggregate over the rows (or values), returning the media type's domain.
    Aggregate(QualifiedName),
    /// A function returning the domain itself: its one value is the body.
    Value,
}

/// PostgREST's custom media type handlers: a domain named after a media type
/// (`CREATE DOMAIN "application/vnd.geo2+json" AS jsonb`) returned by an aggregate over a
/// relation's rows (or `anyelement`), or by a function. The body is the value as its type's
/// binary send function writes it (a bytea's bytes, a text's text, a jsonb's version byte
/// and text), as PostgREST sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHandler {
    pub kind: HandlerKind,
    /// The domain (`public."application/vnd.geo2+json"`).
    pub domain: QualifiedName,
    /// The media type sent as `Content-Type` (`*/*` sends `application/octet-stream`).
    pub media_type: String,
    /// The domain's send function (`pg_catalog.jsonb_send`).
    pub send: QualifiedName,
}

/// Relations by schema, then by name: two `&str` lookups, no allocation per request.
#[derive(Debug, Default, Clone)]
pub struct SchemaCache {
    /// Media handlers by what they answer for and the media type (lower case) they answer.
    media_handlers: HashMap<HandlerTarget, HashMap<String, MediaHandler>>,
    /// Domain casts by the domain's `format_type` name.
    domain_casts: HashMap<String, DomainCasts>,
    schemas: HashMap<String, HashMap<String, Relation>>,
    /// Relationships by origin relation.
    relationships: HashMap<QualifiedName, Vec<Relationship>>,
    /// Functions by schema and name (overloads share a name).
    functions: HashMap<String, HashMap<String, Vec<Function>>>,
    /// Computed columns and relationships by the relation whose row they take.
    computed: HashMap<QualifiedName, Vec<Function>>,
}

impl SchemaCache {
    /// A cache of relations without relationships or functions (tests of other stages).
    pub fn new(relations: impl IntoIterator<Item = Relation>) -> Self {
        let mut cache = SchemaCache::default();
        for r in relations {
            cache.insert_relation(r);
        }
        cache
    }

    fn insert_relation(&mut self, r: Relation) {
        self.schemas
            .entry(r.schema.clone())
            .or_default()
            .insert(r.name.clone(), r);
    }

    #[cfg(test)]
    pub(crate) fn insert_test_relation(&mut self, r: Relation) {
        self.insert_relation(r);
    }

    pub fn relation(&self, schema: &str, name: &str) -> Option<&Relation> {
        self.schemas.get(schema)?.get(name)
    }

    /// `schema.name`, or PGRST205 with the schema's relation most like it as the hint (at
    /// least 0.75 similar, as PostgREST's).
    pub fn relation_or_not_found(&self, schema: &str, name: &str) -> Result<&Relation, ApiError> {
        self.relation(schema, name).ok_or_else(|| {
            // Sorted, so that equally close names give the same hint every time.
            let mut names: Vec<&str> = self
                .schemas
                .get(schema)
                .into_iter()
                .flat_map(|m| m.keys().map(String::as_str))
                .collect();
            names.sort_unstable();
            let close = crate::fuzzy::closest(names, name, 0.75);
            ApiError::table_not_found(schema, name, close)
        })
    }

    /// Every relation of `schema`, sorted by name (the API description lists them so).
    pub fn relations_in(&self, schema: &str) -> Vec<&Relation> {
        let mut all: Vec<&Relation> = self
            .schemas
            .get(schema)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Relationships whose origin is `relation`.
    pub fn relationships_of(&self, relation: &QualifiedName) -> &[Relationship] {
        self.relationships
            .get(relation)
            .map_or(&[][..], Vec::as_slice)
    }

    /// The overloads of `schema.name`.
    pub fn functions(&self, schema: &str, name: &str) -> &[Function] {
        self.functions
            .get(schema)
            .and_then(|m| m.get(name))
            .map_or(&[][..], Vec::as_slice)
    }

    /// Every function of `schema`, sorted by name.
    pub fn functions_in(&self, schema: &str) -> Vec<&Function> {
        let mut all: Vec<&Function> = self
            .functions
            .get(schema)
            .map(|m| m.values().flatten().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The casts of the domain `type_name`, if it has any.
    pub fn domain_casts(&self, type_name: &str) -> Option<&DomainCasts> {
        self.domain_casts.get(type_name)
    }

    /// The computed column or relationship `name` of `relation`, if a function defines one.
    pub fn computed(&self, relation: &QualifiedName, name: &str) -> Option<&Function> {
        self.computed.get(relation)?.iter().find(|f| f.name == name)
    }

    /// Whether any media handler exists: without one, negotiation needs no schema.
    pub fn has_media_handlers(&self) -> bool {
        !self.media_handlers.is_empty()
    }

    /// The handler of `media_type` (lower case) for `target`.
    pub fn media_handler(&self, target: &HandlerTarget, media_type: &str) -> Option<&MediaHandler> {
        self.media_handlers.get(target)?.get(media_type)
    }

    pub fn len(&self) -> usize {
        self.schemas.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A transaction isolation level (`default_transaction_isolation` of a role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

/// The settings the database keeps for one role (`ALTER ROLE … SET`), applied to each of its
/// requests as PostgREST does: `default_transaction_isolation` picks the transaction's
/// isolation level, the others are set transaction-locally before the role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSettings {
    pub settings: Vec<(String, String)>,
    pub isolation: Isolation,
}

/// Role settings by role, from `(role, name, value)` rows in the order they apply (global
/// ones before those for this database): a later value of a name replaces an earlier one.
pub fn role_settings(
    rows: impl IntoIterator<Item = (String, String, String)>,
) -> HashMap<String, RoleSettings> {
    let mut by_role: HashMap<String, RoleSettings> = HashMap::new();
    for (role, name, value) in rows {
        let entry = by_role.entry(role).or_default();
        if name == "default_transaction_isolation" {
            entry.isolation = match value.trim().to_ascii_lowercase().as_str() {
                "serializable" => Isolation::Serializable,
                "repeatable read" => Isolation::RepeatableRead,
                _ => Isolation::ReadCommitted,
            };
            continue;
        }
        entry.settings.retain(|(n, _)| *n != name);
        entry.settings.push((name, value));
    }
    by_role
}

/// A column for tests: `type_name` is also its base type.
#[cfg(test)]
pub(crate) fn test_column(name: &str, type_name: &str) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        base_type: type_name.into(),
        nullable: true,
        ..Column::default()
    }
}

/// A one-table cache (`public.<name>` with `id integer, title text`) for other stages' tests.
#[cfg(test)]
pub(crate) fn test_cache(name: &str) -> SchemaCache {
    SchemaCache::new([Relation {
        schema: "public".into(),
        name: name.into(),
        columns: vec![test_column("id", "integer"), test_column("title", "text")],
        primary_key: vec!["id".into()],
        ..Relation::default()
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_relations_and_columns() {
        let cache = test_cache("books");
        let books = cache.relation("public", "books").unwrap();
        assert_eq!(books.column("id").unwrap().type_name, "integer");
        assert!(books.column("nope").is_none());
        assert!(cache.relation("api", "books").is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn role_settings_later_wins_and_isolation_is_separate() {
        let row = |r: &str, n: &str, v: &str| (r.to_string(), n.to_string(), v.to_string());
        let map = role_settings([
            row("web", "statement_timeout", "5s"),
            row("web", "work_mem", "8MB"),
            row("web", "default_transaction_isolation", "REPEATABLE READ"),
            row("web", "statement_timeout", "1s"),
            row("other", "default_transaction_isolation", "serializable"),
        ]);
        let web = &map["web"];
        assert_eq!(
            web.settings,
            [
                ("work_mem".to_string(), "8MB".to_string()),
                ("statement_timeout".to_string(), "1s".to_string())
            ]
        );
        assert_eq!(web.isolation, Isolation::RepeatableRead);
        assert_eq!(map["other"].isolation, Isolation::Serializable);
        assert!(map["other"].settings.is_empty());
    }
}

/// A small library schema built from catalog-like rows, for the planner's and SQL tests:
/// `authors(id, name)`, `books(id, title, year, author_id → authors, meta jsonb)`,
/// `tags(id, name)`, `book_tags(book_id → books, tag_id → tags, pk both)`, the view
/// `recent_books(id, title, author_id)` over books, and `loans(id, lender_id → authors,
/// borrower_id → authors)`.
#[cfg(test)]
pub(crate) fn library_cache() -> SchemaCache {
    let rel = |oid: u32, name: &str, kind: char| RawRelation {
        oid,
        relation: Relation {
            schema: "lib".into(),
            name: name.into(),
            ..Relation::default()
        },
        kind,
        row_type: format!("lib.{name}"),
        exposed: true,
    };
    let col = |oid: u32, attnum: i16, name: &str, t: &str| RawColumn {
        relation_oid: oid,
        attnum,
        column: test_column(name, t),
    };
    let fk = |name: &str, o: u32, oa: i16, t: u32, ta: i16| RawForeignKey {
        name: name.into(),
        origin_oid: o,
        origin_attnums: vec![oa],
        target_oid: t,
        target_attnums: vec![ta],
    };
    build(CatalogRows {
        relations: vec![
            rel(1, "authors", 'r'),
            rel(2, "books", 'r'),
            rel(3, "tags", 'r'),
            rel(4, "book_tags", 'r'),
            rel(5, "recent_books", 'v'),
            rel(6, "loans", 'r'),
            rel(7, "labels", 'r'),
        ],
        columns: vec![
            col(1, 1, "id", "integer"),
            col(1, 2, "name", "text"),
            col(2, 1, "id", "integer"),
            col(2, 2, "title", "text"),
            col(2, 3, "year", "integer"),
            col(2, 4, "author_id", "integer"),
            col(2, 5, "meta", "jsonb"),
            col(3, 1, "id", "integer"),
            col(3, 2, "name", "text"),
            col(4, 1, "book_id", "integer"),
            col(4, 2, "tag_id", "integer"),
            col(5, 1, "id", "integer"),
            col(5, 2, "title", "text"),
            col(5, 3, "author_id", "integer"),
            col(6, 1, "id", "integer"),
            col(6, 2, "lender_id", "integer"),
            col(6, 3, "borrower_id", "integer"),
            col(7, 1, "id", "integer"),
            col(7, 2, "color", "lib.color"),
        ],
        keys: vec![
            (1, true, vec![1]),
            (2, true, vec![1]),
            (3, true, vec![1]),
            (4, true, vec![1, 2]),
            (6, true, vec![1]),
        ],
        foreign_keys: vec![
            fk("books_author_id_fkey", 2, 4, 1, 1),
            fk("book_tags_book_id_fkey", 4, 1, 2, 1),
            fk("book_tags_tag_id_fkey", 4, 2, 3, 1),
            fk("lender", 6, 2, 1, 1),
            fk("borrower", 6, 3, 1, 1),
        ],
        view_columns: vec![(5, 1, 2, 1), (5, 2, 2, 2), (5, 3, 2, 4)],
        functions: vec![Function {
            schema: "lib".into(),
            name: "title_upper".into(),
            params: vec![Parameter {
                name: "b".into(),
                type_name: "lib.books".into(),
                ..Parameter::default()
            }],
            return_type: "text".into(),
            returns_scalar: true,
            ..Function::default()
        }],
        casts: vec![
            (
                "lib.color".into(),
                "json".into(),
                QualifiedName::new("lib", "color_json"),
            ),
            (
                "text".into(),
                "lib.color".into(),
                QualifiedName::new("lib", "color_text"),
            ),
            (
                "json".into(),
                "lib.color".into(),
                QualifiedName::new("lib", "color_from_json"),
            ),
        ],
        media_handlers: Vec::new(),
    })
}

#[cfg(test)]
mod build_tests {
    use super::*;

    fn rels(cache: &SchemaCache, origin: &str) -> Vec<(String, &'static str, String)> {
        let mut out: Vec<_> = cache
            .relationships_of(&QualifiedName::new("lib", origin))
            .iter()
            .map(|r| {
                (
                    r.target.name.clone(),
                    r.cardinality_name(),
                    r.constraint().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn keys_give_both_directions_and_junctions_many_to_many() {
        let c = library_cache();
        let books = rels(&c, "books");
        assert!(books.contains(&(
            "authors".into(),
            "many-to-one",
            "books_author_id_fkey".into()
        )));
        assert!(books.contains(&("tags".into(), "many-to-many", "book_tags".into())));
        assert!(books.contains(&(
            "book_tags".into(),
            "one-to-many",
            "book_tags_book_id_fkey".into()
        )));
        let authors = rels(&c, "authors");
        assert!(authors.contains(&("books".into(), "one-to-many", "books_author_id_fkey".into())));
        assert!(authors.contains(&(
            "recent_books".into(),
            "one-to-many",
            "books_author_id_fkey".into()
        )));
        assert_eq!(authors.iter().filter(|r| r.0 == "loans").count(), 2);
    }

    #[test]
    fn views_follow_their_base_tables() {
        let c = library_cache();
        let view = c.relation("lib", "recent_books").unwrap();
        assert_eq!(view.kind, RelationKind::View);
        assert_eq!(view.primary_key, ["id"]);
        assert!(rels(&c, "recent_books").contains(&(
            "authors".into(),
            "many-to-one",
            "books_author_id_fkey".into()
        )));
    }

    #[test]
    fn computed_columns_are_found_by_row_type() {
        let c = library_cache();
        let books = QualifiedName::new("lib", "books");
        assert_eq!(
            c.computed(&books, "title_upper").unwrap().return_type,
            "text"
        );
        assert!(c
            .computed(&QualifiedName::new("lib", "authors"), "title_upper")
            .is_none());
    }

    #[test]
    fn descriptions_name_keys_and_columns() {
        let c = library_cache();
        let r = c
            .relationships_of(&QualifiedName::new("lib", "books"))
            .iter()
            .find(|r| r.target.name == "tags")
            .unwrap();
        assert_eq!(
            r.description(),
            "book_tags using book_tags_book_id_fkey(book_id) and book_tags_tag_id_fkey(tag_id)"
        );
    }
}
