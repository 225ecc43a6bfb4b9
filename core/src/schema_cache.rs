//! The schema cache's model: which relations the API exposes and their columns. The extension
//! fills it from the catalogs (src/schema_cache.rs); planning reads it, so no request looks
//! anything up in the catalogs itself.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, NULL)`: a SQL type name as PostgreSQL prints it, quoted where
    /// needed and without a type modifier, so a filter value can be cast to it safely
    /// (a `varchar(3)` cast would silently truncate the value and match the wrong rows).
    pub type_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

impl Relation {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Relations keyed by (schema, name).
/// Relations by schema, then by name: two `&str` lookups, no allocation per request.
#[derive(Debug, Default, Clone)]
pub struct SchemaCache {
    schemas: HashMap<String, HashMap<String, Relation>>,
}

impl SchemaCache {
    pub fn new(relations: impl IntoIterator<Item = Relation>) -> Self {
        let mut schemas: HashMap<String, HashMap<String, Relation>> = HashMap::new();
        for r in relations {
            schemas
                .entry(r.schema.clone())
                .or_default()
                .insert(r.name.clone(), r);
        }
        SchemaCache { schemas }
    }

    pub fn relation(&self, schema: &str, name: &str) -> Option<&Relation> {
        self.schemas.get(schema)?.get(name)
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

/// A one-table cache (`public.<name>` with `id integer, title text`) for other stages' tests.
#[cfg(test)]
pub(crate) fn test_cache(name: &str) -> SchemaCache {
    let column = |name: &str, type_name: &str| Column {
        name: name.into(),
        type_name: type_name.into(),
    };
    SchemaCache::new([Relation {
        schema: "public".into(),
        name: name.into(),
        columns: vec![column("id", "integer"), column("title", "text")],
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_relations_and_columns() {
        let cache = SchemaCache::new([Relation {
            schema: "public".into(),
            name: "books".into(),
            columns: vec![Column {
                name: "id".into(),
                type_name: "integer".into(),
            }],
        }]);
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
