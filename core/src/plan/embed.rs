//! Which relationship an embedded resource means: PostgREST's rules for matching an embed's
//! name (target relation, foreign key column or constraint, computed relationship) and its
//! `!hint`, and its errors when none or several match.

use crate::api_request::Embed;
use crate::error::ApiError;
use crate::schema_cache::{Cardinality, Function, QualifiedName, Relationship, SchemaCache};
use serde_json::json;

/// How an embedded resource joins its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// `target.col = parent.col` for each `(parent column, target column)`.
    Columns(Vec<(String, String)>),
    /// Through a junction: `(parent col, junction col)` and `(target col, junction col)`.
    Junction {
        relation: QualifiedName,
        parent: Vec<(String, String)>,
        target: Vec<(String, String)>,
    },
    /// A computed relationship: rows of `function(parent row)`.
    Function(QualifiedName),
}

/// The relationship an embed resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub target: QualifiedName,
    pub join: Join,
    pub to_one: bool,
}

/// Resolves `embed` from `origin` in `schema`.
pub fn resolve(
    cache: &SchemaCache,
    origin: &QualifiedName,
    embed: &Embed,
) -> Result<Resolved, ApiError> {
    if let Some(f) = computed_relationship(cache, origin, &embed.name) {
        if let Some(target) = &f.returns_relation {
            return Ok(Resolved {
                target: target.clone(),
                join: Join::Function(QualifiedName::new(&f.schema, &f.name)),
                to_one: !f.returns_set || f.single_row,
            });
        }
    }
    let hint = embed.hint.as_deref();
    let mut candidates: Vec<&Relationship> = cache
        .relationships_of(origin)
        .iter()
        .filter(|r| r.target.schema == origin.schema)
        .filter(|r| names_target(r, &embed.name))
        .filter(|r| hint.is_none_or(|h| matches_hint(r, h)))
        .collect();
    // PostgREST lists candidates in its relationships' order: by kind, then constraint.
    candidates.sort_by_key(|r| (kind_rank(r), r.constraint()));
    match candidates.as_slice() {
        [] => Err(ApiError::no_relationship(
            &origin.name,
            &embed.name,
            hint,
            &origin.schema,
        )),
        [one] => Ok(resolved(one)),
        many => Err(ambiguous(origin, &embed.name, many)),
    }
}

/// PostgREST's order of relationship kinds (its `Cardinality` constructors).
fn kind_rank(r: &Relationship) -> u8 {
    match r.cardinality {
        Cardinality::OneToMany { .. } => 0,
        Cardinality::ManyToOne { .. } => 1,
        Cardinality::OneToOne { .. } => 2,
        Cardinality::ManyToMany(_) => 3,
    }
}

/// A function of the origin's row type returning rows of an exposed relation.
fn computed_relationship<'c>(
    cache: &'c SchemaCache,
    origin: &QualifiedName,
    name: &str,
) -> Option<&'c Function> {
    cache
        .computed(origin, name)
        .filter(|f| f.returns_relation.is_some())
}

/// The embed's name is the target relation, or (to-one) a single foreign key column, or the
/// constraint's name.
fn names_target(r: &Relationship, name: &str) -> bool {
    if r.target.name == name {
        return true;
    }
    match &r.cardinality {
        Cardinality::ManyToOne {
            constraint,
            columns,
        }
        | Cardinality::OneToOne {
            constraint,
            columns,
            ..
        } => constraint == name || matches!(columns.as_slice(), [(c, _)] if c == name),
        Cardinality::OneToMany { constraint, .. } => constraint == name,
        Cardinality::ManyToMany(_) => false,
    }
}

/// `!hint`: the constraint (or junction) name, or a single column on either side.
fn matches_hint(r: &Relationship, hint: &str) -> bool {
    if r.constraint() == hint {
        return true;
    }
    match &r.cardinality {
        Cardinality::ManyToMany(j) => {
            j.origin_columns.iter().any(|(_, jc)| jc == hint)
                || j.target_columns.iter().any(|(_, jc)| jc == hint)
        }
        _ => matches!(r.columns(), [(a, b)] if a == hint || b == hint),
    }
}

fn resolved(r: &Relationship) -> Resolved {
    let join = match &r.cardinality {
        Cardinality::ManyToMany(j) => Join::Junction {
            relation: j.relation.clone(),
            parent: j.origin_columns.clone(),
            target: j.target_columns.clone(),
        },
        _ => Join::Columns(r.columns().to_vec()),
    };
    Resolved {
        target: r.target.clone(),
        join,
        to_one: r.is_to_one(),
    }
}

/// PGRST201: the candidates as details, the hints that would pick each.
fn ambiguous(origin: &QualifiedName, target: &str, many: &[&Relationship]) -> ApiError {
    let details: Vec<serde_json::Value> = many
        .iter()
        .map(|r| {
            json!({
                "cardinality": r.cardinality_name(),
                "embedding": format!("{} with {}", r.origin.name, r.target.name),
                "relationship": r.description(),
            })
        })
        .collect();
    let hints: Vec<String> = many.iter().map(|r| r.constraint().to_string()).collect();
    ApiError::ambiguous_relationship(
        &origin.name,
        target,
        &hints,
        serde_json::Value::Array(details).to_string(),
    )
}
