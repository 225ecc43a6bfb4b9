//! Plans of writes: POST (insert, bulk, upsert by `Prefer: resolution`), PATCH, PUT and DELETE.
//! The written columns come from the body's keys (narrowed by `columns=`), each checked against
//! the schema cache (PGRST204); filters become the write's WHERE; the select tree becomes the
//! node that reads the written rows back (`return=representation`).

use super::{plan_root, Limits, Node, NodeSource, OrderBy, PlannedCondition, PlannedOrder, Source};
use crate::api_request::{
    Action, ApiRequest, Comparison, Condition, FilterOp, MediaType, Resource,
};
use crate::error::ApiError;
use crate::preferences::{Count, Resolution, Return};
use crate::range::RowRange;
use crate::schema_cache::{QualifiedName, Relation, SchemaCache};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteKind {
    Insert { on_conflict: Option<OnConflict> },
    Update,
    Delete,
}

/// An upsert: the unique columns it resolves on, and whether a duplicate is updated (merged)
/// or left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnConflict {
    pub columns: Vec<String>,
    pub merge: bool,
}

/// PostgREST's limited update/delete (`PATCH`/`DELETE` with `limit`/`offset`): only the
/// rows of that range of the filtered target in `order` are written, found again by the
/// order's columns (which should be unique, as PostgREST documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub order: Vec<PlannedOrder>,
    pub keys: Vec<String>,
    pub range: RowRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    pub kind: WriteKind,
    pub target: QualifiedName,
    /// Written columns, in the body's order.
    pub columns: Vec<String>,
    /// How an insert parses each of `columns` from the body: the column type's `json AS
    /// type` cast function (PostgREST's domain representations), or None (parsed as usual).
    /// Empty when the body's rows can be populated whole: no written column has such a cast
    /// and there is no `?columns=` (whose unlisted keys must not be parsed at all).
    pub json_casts: Vec<Option<QualifiedName>>,
    /// The rows updated or deleted (filters on the target, alias of `returning`).
    pub conditions: Vec<PlannedCondition>,
    /// Of those, only a range (PATCH and DELETE).
    pub limited: Option<Limited>,
    /// Reads the written rows back; its source is `NodeSource::Written`.
    pub returning: Node,
    pub primary_key: Vec<String>,
    /// The body as one JSON text (an object or an array).
    pub payload: String,
    /// The body is an array (else one object).
    pub bulk: bool,
    /// `Prefer: missing=default`: each column's default (None: NULL), in the relation's
    /// order, as the record absent keys are taken from.
    pub defaults: Option<Vec<Option<String>>>,
    pub returns: Return,
    pub count: Option<Count>,
    pub media: MediaType,
    /// The schema's media handler that makes the returned rows' body instead of `media`.
    pub handler: Option<super::media::Handler>,
}

impl WritePlan {
    /// PUT or POST with a resolution: 201 only when a row was inserted.
    pub fn is_upsert(&self) -> bool {
        matches!(
            self.kind,
            WriteKind::Insert {
                on_conflict: Some(_)
            }
        )
    }
}

/// The `json AS type` cast of each written column (see `WritePlan::json_casts`).
fn json_casts(
    cache: &SchemaCache,
    relation: &Relation,
    columns: &[String],
    listed: bool,
) -> Vec<Option<QualifiedName>> {
    let casts: Vec<Option<QualifiedName>> = columns
        .iter()
        .map(|name| {
            let column = relation.column(name)?;
            cache.domain_casts(&column.type_name)?.from_json.clone()
        })
        .collect();
    if listed || casts.iter().any(Option::is_some) {
        casts
    } else {
        Vec::new()
    }
}

pub fn write_plan(
    req: &ApiRequest,
    cache: &SchemaCache,
    schema: &str,
    limits: &Limits,
) -> Result<WritePlan, ApiError> {
    let Resource::Relation(name) = &req.resource else {
        return Err(ApiError::invalid_path());
    };
    let relation = cache.relation_or_not_found(schema, name)?;
    let mut returning = plan_root(req, cache, relation, limits, true)?;
    returning.source = NodeSource::Written;
    returning.range = Default::default();
    let conditions = std::mem::take(&mut returning.conditions);
    let limited = match req.action {
        Action::Update | Action::Delete if req.range != RowRange::default() => {
            Some(limited(&returning.order, req.range)?)
        }
        _ => None,
    };
    let payload = req.payload.as_ref();
    let columns = match payload {
        None => Vec::new(),
        Some(p) => {
            let keys: Vec<&String> = match &req.columns {
                Some(only) => only.iter().collect(),
                None => p.keys.iter().collect(),
            };
            keys.into_iter()
                .map(|k| {
                    relation
                        .column(k)
                        .map(|c| c.name.clone())
                        .ok_or_else(|| ApiError::column_not_found(&relation.name, k))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let kind = match req.action {
        // Without a key to resolve on (no primary key, no `on_conflict=`), a resolution
        // means nothing: a plain insert, as in PostgREST.
        Action::Insert => WriteKind::Insert {
            on_conflict: req
                .preferences
                .resolution
                .map(|r| OnConflict {
                    columns: req
                        .on_conflict
                        .clone()
                        .unwrap_or_else(|| relation.primary_key.clone()),
                    merge: r == Resolution::MergeDuplicates,
                })
                .filter(|c| !c.columns.is_empty()),
        },
        Action::Upsert => {
            check_put(req, &relation.primary_key)?;
            WriteKind::Insert {
                on_conflict: Some(OnConflict {
                    columns: relation.primary_key.clone(),
                    merge: true,
                }),
            }
        }
        Action::Update => WriteKind::Update,
        Action::Delete => WriteKind::Delete,
        Action::Read | Action::Call => return Err(ApiError::invalid_path()),
    };
    let defaults = (req.preferences.missing_default == Some(true) && req.action == Action::Insert)
        .then(|| relation.columns.iter().map(|c| c.default.clone()).collect());
    let returns = req.preferences.return_.unwrap_or(Return::Minimal);
    // Negotiated for every write (406 stands), used only when rows are returned.
    let handler = super::media::handler(req, cache, &relation.schema, &relation.name)?
        .filter(|_| returns == Return::Representation);
    let json_casts = match (&kind, &defaults) {
        (WriteKind::Insert { .. }, None) => {
            json_casts(cache, relation, &columns, req.columns.is_some())
        }
        _ => Vec::new(),
    };
    Ok(WritePlan {
        kind,
        target: relation.qualified(),
        columns,
        json_casts,
        conditions,
        limited,
        returning,
        primary_key: relation.primary_key.clone(),
        payload: payload.map_or_else(|| "{}".to_string(), |p| p.json.clone()),
        bulk: payload.is_some_and(|p| p.array),
        defaults,
        returns,
        count: req.preferences.count,
        media: req.media,
        handler,
    })
}

/// A limited write's range and its order; the order must name the target's own columns (no
/// JSON path, no embedded field), PGRST109 otherwise, as it is without one: a range of rows
/// in no order would write rows nobody chose.
fn limited(order: &[PlannedOrder], range: RowRange) -> Result<Limited, ApiError> {
    let keys: Option<Vec<String>> = order
        .iter()
        .map(|o| match &o.by {
            OrderBy::Expr(e) if e.field.json_path.is_empty() => match &e.source {
                Source::Column(c) => Some(c.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    match keys {
        Some(keys) if !keys.is_empty() => Ok(Limited {
            order: order.to_vec(),
            keys,
            range,
        }),
        _ => Err(ApiError::limit_without_order()),
    }
}

/// A JSON value as the text a filter value would be: strings bare, the rest as JSON.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// PUT names one row: its filters are exactly `pk=eq.value` for each primary key column
/// (PGRST105), and the body is that one row with the same key (PGRST115).
fn check_put(req: &ApiRequest, primary_key: &[String]) -> Result<(), ApiError> {
    let mut named: Vec<(&str, &str)> = Vec::new();
    for (path, c) in &req.conditions {
        match c {
            Condition::Filter(f)
                if path.is_empty()
                    && !f.negated
                    && f.field.json_path.is_empty()
                    && matches!(
                        f.op,
                        FilterOp::Compare {
                            op: Comparison::Eq,
                            quantifier: None,
                            ..
                        }
                    ) =>
            {
                if let FilterOp::Compare { value, .. } = &f.op {
                    named.push((f.field.name.as_str(), value.as_str()));
                }
            }
            _ if path.is_empty() => return Err(ApiError::put_filters()),
            _ => {}
        }
    }
    let mut keys: Vec<&str> = named.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    let mut pk: Vec<&str> = primary_key.iter().map(String::as_str).collect();
    pk.sort_unstable();
    if pk.is_empty() || keys != pk {
        return Err(ApiError::put_filters());
    }
    let payload = req.payload.as_ref().ok_or_else(ApiError::put_mismatch)?;
    let body: serde_json::Value = serde_json::from_str(&payload.json)
        .map_err(|_| ApiError::invalid_body("Empty or invalid json"))?;
    let row = match &body {
        serde_json::Value::Array(rows) if rows.len() == 1 => &rows[0],
        serde_json::Value::Object(_) => &body,
        _ => return Err(ApiError::put_mismatch()),
    };
    for (column, value) in named {
        let same = row.get(column).is_some_and(|v| json_text(v) == value);
        if !same {
            return Err(ApiError::put_mismatch());
        }
    }
    Ok(())
}
