//! From catalog rows to the model: names resolved, view columns followed to their base
//! tables, relationships derived. Pure, so the derivation is unit-tested without a database.

use super::relationships::{key_relationships, many_to_many, ForeignKey, Variant};
use super::{
    Column, Function, HandlerTarget, MediaHandler, QualifiedName, Relation, RelationKind,
    SchemaCache,
};
use std::collections::{HashMap, HashSet};

/// A relation as the catalogs describe it; `exposed` when its schema is in `pg_rest.schemas`
/// (others are loaded only to follow keys and views through them).
#[derive(Debug, Clone, Default)]
pub struct RawRelation {
    pub oid: u32,
    pub relation: Relation,
    /// `relkind`.
    pub kind: char,
    /// `format_type(reltype)`: how a function's argument of its row type is printed.
    pub row_type: String,
    pub exposed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RawColumn {
    pub relation_oid: u32,
    pub attnum: i16,
    pub column: Column,
}

#[derive(Debug, Clone, Default)]
pub struct RawForeignKey {
    pub name: String,
    pub origin_oid: u32,
    pub origin_attnums: Vec<i16>,
    pub target_oid: u32,
    pub target_attnums: Vec<i16>,
}

/// A cast with a function, from or to a domain: `(source type, target type, function)`.
pub type RawCast = (String, String, QualifiedName);

/// A function; `returns_relation` is filled in from `return_type` here.
pub type RawFunction = Function;

/// A media handler and what it answers for: `(target, media type as the domain is named,
/// handler)`.
pub type RawMediaHandler = (HandlerTarget, String, MediaHandler);

/// Everything the loader reads, in one value.
#[derive(Debug, Clone, Default)]
pub struct CatalogRows {
    pub relations: Vec<RawRelation>,
    pub columns: Vec<RawColumn>,
    /// Primary (`true`) and unique keys: `(relation oid, primary, attnums)`.
    pub keys: Vec<(u32, bool, Vec<i16>)>,
    pub foreign_keys: Vec<RawForeignKey>,
    /// A view column's source: `(view oid, view attnum, source oid, source attnum)`, where
    /// the source may be another view.
    pub view_columns: Vec<(u32, i16, u32, i16)>,
    pub functions: Vec<RawFunction>,
    pub casts: Vec<RawCast>,
    pub media_handlers: Vec<RawMediaHandler>,
}

/// How deep views on views are followed.
const MAX_VIEW_DEPTH: usize = 16;

pub fn build(rows: CatalogRows) -> SchemaCache {
    let mut relations: HashMap<u32, RawRelation> =
        rows.relations.into_iter().map(|r| (r.oid, r)).collect();
    let mut names: HashMap<(u32, i16), String> = HashMap::new();
    let mut columns = rows.columns;
    columns.sort_by_key(|c| (c.relation_oid, c.attnum));
    for c in columns {
        names.insert((c.relation_oid, c.attnum), c.column.name.clone());
        if let Some(r) = relations.get_mut(&c.relation_oid) {
            r.relation.columns.push(c.column);
        }
    }
    let sources = view_sources(&rows.view_columns, &relations);
    let column_names = |oid: u32, attnums: &[i16]| -> Option<Vec<String>> {
        attnums
            .iter()
            .map(|a| names.get(&(oid, *a)).cloned())
            .collect()
    };

    // Keys, as column names; views inherit their base table's primary key when they show it.
    let mut unique_keys: HashMap<u32, Vec<Vec<String>>> = HashMap::new();
    for (oid, primary, attnums) in &rows.keys {
        let Some(cols) = column_names(*oid, attnums) else {
            continue;
        };
        if *primary {
            if let Some(r) = relations.get_mut(oid) {
                r.relation.primary_key = cols.clone();
            }
        }
        unique_keys.entry(*oid).or_default().push(cols);
    }
    let base_keys: HashMap<u32, Vec<String>> = relations
        .iter()
        .map(|(oid, r)| (*oid, r.relation.primary_key.clone()))
        .collect();
    for (view, by_base) in &sources {
        for (base, base_to_view) in by_base {
            let Some(pk) = base_keys.get(base).filter(|k| !k.is_empty()) else {
                continue;
            };
            let mapped: Option<Vec<String>> =
                pk.iter().map(|c| base_to_view.get(c).cloned()).collect();
            if let (Some(mapped), Some(r)) = (mapped, relations.get_mut(view)) {
                if r.relation.primary_key.is_empty() {
                    r.relation.primary_key = mapped;
                }
            }
        }
    }

    // Foreign keys, then their relationships through every variant of both ends.
    let mut relationships = Vec::new();
    for fk in &rows.foreign_keys {
        let (Some(o), Some(t)) = (relations.get(&fk.origin_oid), relations.get(&fk.target_oid))
        else {
            continue;
        };
        let (Some(origin_columns), Some(target_columns)) = (
            column_names(fk.origin_oid, &fk.origin_attnums),
            column_names(fk.target_oid, &fk.target_attnums),
        ) else {
            continue;
        };
        let as_set = |cols: &[String]| cols.iter().cloned().collect::<HashSet<_>>();
        let unique = unique_keys
            .get(&fk.origin_oid)
            .is_some_and(|keys| keys.iter().any(|k| as_set(k) == as_set(&origin_columns)));
        let key = ForeignKey {
            name: fk.name.clone(),
            origin_columns,
            target_columns,
            unique,
        };
        let origin_name = o.relation.qualified();
        let target_name = t.relation.qualified();
        let origins = variants(fk.origin_oid, &origin_name, &relations, &sources);
        let targets = variants(fk.target_oid, &target_name, &relations, &sources);
        relationships.extend(key_relationships(&key, &origins, &targets));
    }
    let primary_keys: HashMap<QualifiedName, Vec<String>> = relations
        .values()
        .map(|r| (r.relation.qualified(), r.relation.primary_key.clone()))
        .collect();
    let m2m = many_to_many(&relationships, |q| {
        primary_keys.get(q).cloned().unwrap_or_default()
    });
    relationships.extend(m2m);

    let mut cache = SchemaCache::default();
    for (source, target, function) in rows.casts {
        match (source.as_str(), target.as_str()) {
            (domain, "json") => {
                cache
                    .domain_casts
                    .entry(domain.to_string())
                    .or_default()
                    .to_json = Some(function)
            }
            ("text", domain) => {
                cache
                    .domain_casts
                    .entry(domain.to_string())
                    .or_default()
                    .from_text = Some(function)
            }
            ("json", domain) => {
                cache
                    .domain_casts
                    .entry(domain.to_string())
                    .or_default()
                    .from_json = Some(function)
            }
            _ => {}
        }
    }
    let exposed: HashSet<QualifiedName> = relations
        .values()
        .filter(|r| r.exposed)
        .map(|r| r.relation.qualified())
        .collect();
    for r in relationships {
        if exposed.contains(&r.origin) && exposed.contains(&r.target) {
            cache
                .relationships
                .entry(r.origin.clone())
                .or_default()
                .push(r);
        }
    }
    let row_types: HashMap<String, QualifiedName> = relations
        .values()
        .map(|r| (r.row_type.clone(), r.relation.qualified()))
        .collect();
    for mut f in rows.functions {
        f.returns_relation = row_types.get(&f.return_type).cloned();
        for rel in &exposed {
            if f.takes_row_of(rel, &row_types) {
                cache
                    .computed
                    .entry(rel.clone())
                    .or_default()
                    .push(f.clone());
            }
        }
        cache
            .functions
            .entry(f.schema.clone())
            .or_default()
            .entry(f.name.clone())
            .or_default()
            .push(f);
    }
    for (target, media_type, handler) in rows.media_handlers {
        cache
            .media_handlers
            .entry(target)
            .or_default()
            .insert(media_type.to_ascii_lowercase(), handler);
    }
    for (_, r) in relations {
        if r.exposed {
            let mut relation = r.relation;
            relation.kind = match r.kind {
                'v' => RelationKind::View,
                'm' => RelationKind::MaterializedView,
                'f' => RelationKind::ForeignTable,
                'p' => RelationKind::PartitionedTable,
                _ => RelationKind::Table,
            };
            cache.insert_relation(relation);
        }
    }
    cache
}

/// For each view: by base table (a relation that is not a view), base column → view column.
type ViewSources = HashMap<u32, HashMap<u32, HashMap<String, String>>>;

fn view_sources(
    view_columns: &[(u32, i16, u32, i16)],
    relations: &HashMap<u32, RawRelation>,
) -> ViewSources {
    let direct: HashMap<(u32, i16), (u32, i16)> = view_columns
        .iter()
        .map(|(v, va, s, sa)| ((*v, *va), (*s, *sa)))
        .collect();
    let name = |oid: u32, attnum: i16| {
        relations
            .get(&oid)?
            .relation
            .columns
            .get(usize::try_from(attnum).ok()?.checked_sub(1)?)
            .map(|c| c.name.clone())
    };
    let mut out: ViewSources = HashMap::new();
    for ((view, attnum), first) in &direct {
        let mut source = *first;
        let mut depth = 0;
        // Follow views on views down to a table.
        while let Some(next) = direct.get(&source) {
            source = *next;
            depth += 1;
            if depth > MAX_VIEW_DEPTH {
                break;
            }
        }
        if relations.get(&source.0).is_none_or(|r| r.kind == 'v') {
            continue;
        }
        let (Some(base_col), Some(view_col)) = (name(source.0, source.1), name(*view, *attnum))
        else {
            continue;
        };
        out.entry(*view)
            .or_default()
            .entry(source.0)
            .or_default()
            .insert(base_col, view_col);
    }
    out
}

/// A relation and every view showing some of its columns, with their column mappings.
fn variants<'a>(
    oid: u32,
    name: &QualifiedName,
    relations: &'a HashMap<u32, RawRelation>,
    sources: &'a ViewSources,
) -> Vec<Variant<'a>> {
    let mut out = vec![Variant {
        relation: name.clone(),
        rename: Box::new(|c: &str| Some(c.to_string())),
    }];
    let mut views: Vec<(&u32, &HashMap<String, String>)> = sources
        .iter()
        .filter_map(|(view, by_base)| by_base.get(&oid).map(|m| (view, m)))
        .collect();
    views.sort_by_key(|(view, _)| relations.get(view).map(|r| r.relation.qualified()));
    for (view, mapping) in views {
        if let Some(r) = relations.get(view) {
            out.push(Variant {
                relation: r.relation.qualified(),
                rename: Box::new(move |c: &str| mapping.get(c).cloned()),
            });
        }
    }
    out
}
