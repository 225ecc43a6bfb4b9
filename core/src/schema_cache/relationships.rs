//! Relationships between relations, as PostgREST derives them from foreign keys: each key
//! gives a many-to-one (or one-to-one, when its columns are unique) relationship and its
//! inverse; views that show all of a key's columns take part as their base tables do; and a
//! relation whose primary key covers two foreign keys joins their targets many-to-many.

use super::QualifiedName;

/// Column pairs `(origin column, other column)`.
pub type ColumnPairs = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Junction {
    pub relation: QualifiedName,
    /// The key from the junction to the origin, and the columns `(origin, junction)`.
    pub origin_constraint: String,
    pub origin_columns: ColumnPairs,
    /// The key from the junction to the target, and the columns `(target, junction)`.
    pub target_constraint: String,
    pub target_columns: ColumnPairs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cardinality {
    /// The origin holds the key: at most one target row per origin row.
    ManyToOne {
        constraint: String,
        columns: ColumnPairs,
    },
    /// The target holds the key.
    OneToMany {
        constraint: String,
        columns: ColumnPairs,
    },
    /// A key whose columns are unique; `origin_holds_key` tells the direction.
    OneToOne {
        constraint: String,
        columns: ColumnPairs,
        origin_holds_key: bool,
    },
    ManyToMany(Junction),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub origin: QualifiedName,
    pub target: QualifiedName,
    pub cardinality: Cardinality,
}

impl Relationship {
    /// At most one target row per origin row: embedded as an object, not an array.
    pub fn is_to_one(&self) -> bool {
        matches!(
            self.cardinality,
            Cardinality::ManyToOne { .. } | Cardinality::OneToOne { .. }
        )
    }

    /// The foreign key's name (for a junction: the junction's name), as `!hint` names it.
    pub fn constraint(&self) -> &str {
        match &self.cardinality {
            Cardinality::ManyToOne { constraint, .. }
            | Cardinality::OneToMany { constraint, .. }
            | Cardinality::OneToOne { constraint, .. } => constraint,
            Cardinality::ManyToMany(j) => &j.relation.name,
        }
    }

    /// Direct column pairs `(origin, target)`; empty for many-to-many.
    pub fn columns(&self) -> &[(String, String)] {
        match &self.cardinality {
            Cardinality::ManyToOne { columns, .. }
            | Cardinality::OneToMany { columns, .. }
            | Cardinality::OneToOne { columns, .. } => columns,
            Cardinality::ManyToMany(_) => &[],
        }
    }

    /// PostgREST's cardinality word (error details).
    pub fn cardinality_name(&self) -> &'static str {
        match self.cardinality {
            Cardinality::ManyToOne { .. } => "many-to-one",
            Cardinality::OneToMany { .. } => "one-to-many",
            Cardinality::OneToOne { .. } => "one-to-one",
            Cardinality::ManyToMany(_) => "many-to-many",
        }
    }

    /// PostgREST's description of the relationship (PGRST201's details).
    pub fn description(&self) -> String {
        let names = |pairs: &[(String, String)], second: bool| {
            pairs
                .iter()
                .map(|(a, b)| if second { b.as_str() } else { a.as_str() })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.cardinality {
            Cardinality::ManyToMany(j) => format!(
                "{} using {}({}) and {}({})",
                j.relation.name,
                j.origin_constraint,
                names(&j.origin_columns, true),
                j.target_constraint,
                names(&j.target_columns, true)
            ),
            _ => format!(
                "{} using {}({}) and {}({})",
                self.constraint(),
                self.origin.name,
                names(self.columns(), false),
                self.target.name,
                names(self.columns(), true)
            ),
        }
    }
}

/// A foreign key with column names resolved: `origin(columns) → target(columns)`.
#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    pub name: String,
    pub origin_columns: Vec<String>,
    pub target_columns: Vec<String>,
    /// The origin columns are a primary or unique key: one-to-one.
    pub unique: bool,
}

/// Base column → the column of a relation standing in for the base relation, if it shows it.
pub(super) type Rename<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// A relation standing in for a base relation: the relation itself (identity mapping) or a
/// view, with the view's name for each base column it shows.
pub(super) struct Variant<'a> {
    pub relation: QualifiedName,
    /// Base column → this relation's column.
    pub rename: Rename<'a>,
}

/// The many-to-one / one-to-one relationships of `fk` and their inverses, for every pair of
/// variants of its two relations (`variants` gives the base relation first, then views).
pub(super) fn key_relationships(
    fk: &ForeignKey,
    origins: &[Variant],
    targets: &[Variant],
) -> Vec<Relationship> {
    let mut out = Vec::new();
    for o in origins {
        let Some(ocols) = fk
            .origin_columns
            .iter()
            .map(|c| (o.rename)(c))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        for t in targets {
            let Some(tcols) = fk
                .target_columns
                .iter()
                .map(|c| (t.rename)(c))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let pairs: ColumnPairs = ocols.iter().cloned().zip(tcols.iter().cloned()).collect();
            let inverse: ColumnPairs = pairs.iter().map(|(a, b)| (b.clone(), a.clone())).collect();
            let constraint = fk.name.clone();
            let (forward, backward) = if fk.unique {
                (
                    Cardinality::OneToOne {
                        constraint: constraint.clone(),
                        columns: pairs,
                        origin_holds_key: true,
                    },
                    Cardinality::OneToOne {
                        constraint,
                        columns: inverse,
                        origin_holds_key: false,
                    },
                )
            } else {
                (
                    Cardinality::ManyToOne {
                        constraint: constraint.clone(),
                        columns: pairs,
                    },
                    Cardinality::OneToMany {
                        constraint,
                        columns: inverse,
                    },
                )
            };
            out.push(Relationship {
                origin: o.relation.clone(),
                target: t.relation.clone(),
                cardinality: forward,
            });
            out.push(Relationship {
                origin: t.relation.clone(),
                target: o.relation.clone(),
                cardinality: backward,
            });
        }
    }
    out
}

/// Many-to-many relationships through every junction: a relation with many-to-one keys to
/// two relations (two distinct keys), all of whose columns are in its primary key.
pub(super) fn many_to_many(
    relationships: &[Relationship],
    primary_key: impl Fn(&QualifiedName) -> Vec<String>,
) -> Vec<Relationship> {
    let mut out = Vec::new();
    let to_one_keys: Vec<(&Relationship, &String, &ColumnPairs)> = relationships
        .iter()
        .filter_map(|r| match &r.cardinality {
            Cardinality::ManyToOne {
                constraint,
                columns,
            } => Some((r, constraint, columns)),
            _ => None,
        })
        .collect();
    for (a, cons_a, cols_a) in &to_one_keys {
        let pk = primary_key(&a.origin);
        if pk.is_empty() {
            continue;
        }
        for (b, cons_b, cols_b) in &to_one_keys {
            // The junction lives in the schema of the relations it joins (a view of it
            // elsewhere is not a second way between them).
            let same_schema =
                a.origin.schema == a.target.schema && a.origin.schema == b.target.schema;
            if a.origin != b.origin || cons_a == cons_b || !same_schema {
                continue;
            }
            let covered = cols_a
                .iter()
                .chain(cols_b.iter())
                .all(|(junction_col, _)| pk.contains(junction_col));
            if !covered {
                continue;
            }
            let flip =
                |pairs: &ColumnPairs| pairs.iter().map(|(j, o)| (o.clone(), j.clone())).collect();
            out.push(Relationship {
                origin: a.target.clone(),
                target: b.target.clone(),
                cardinality: Cardinality::ManyToMany(Junction {
                    relation: a.origin.clone(),
                    origin_constraint: (*cons_a).clone(),
                    origin_columns: flip(cols_a),
                    target_constraint: (*cons_b).clone(),
                    target_columns: flip(cols_b),
                }),
            });
        }
    }
    out
}
