//! Plan: resolve an ApiRequest against the schema cache into a tree of nodes, one per
//! relation read (the top one and each embedded resource). Every name the client gave is
//! checked here — relations, columns, computed columns, relationships, embed labels of
//! filters and orders — so the SQL stage only ever sees names that exist.

pub mod call;
pub mod embed;
pub mod media;
pub mod write;

use crate::api_request::{
    Aggregate, ApiRequest, Condition, EmbedPath, Field, FilterOp, JoinType, MediaType, NullsOrder,
    OrderTarget, OrderTerm, Resource, SelectItem,
};
use crate::error::ApiError;
use crate::preferences::Count;
use crate::range::RowRange;
use crate::schema_cache::{QualifiedName, Relation, SchemaCache};
pub use embed::Join;

/// A read, names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub root: Node,
    pub count: Option<Count>,
    pub media: MediaType,
    /// The schema's media handler that makes the body instead of `media`.
    pub handler: Option<media::Handler>,
}

/// What a column expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Column(String),
    /// A computed column: `function(row)`.
    Computed(QualifiedName),
}

/// A column (or computed column), a JSON path into it and a cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub source: Source,
    pub field: Field,
    pub cast: Option<String>,
    /// The SQL type of the expression before the cast, to cast filter values to: the
    /// column's type, `text` after `->>`, the JSON type after `->`.
    pub type_name: String,
    /// The type with domains followed (decides full-text search's `to_tsvector`).
    pub base_type: String,
    /// The base type of the column itself, before any JSON path.
    pub source_type: String,
    /// A domain's casts: how a plain column of it is shown in JSON and how a filter's text
    /// becomes a value of it.
    pub to_json: Option<QualifiedName>,
    pub from_text: Option<QualifiedName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `*` of the relation.
    AllColumns,
    Expr {
        expr: Box<Expr>,
        name: String,
        aggregate: Option<Aggregate>,
        aggregate_cast: Option<String>,
    },
    /// `count()` over the group.
    CountAll { name: String, cast: Option<String> },
    /// The embed at this index of `Node::embeds`.
    Embed(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedCondition {
    Filter {
        target: Box<Expr>,
        negated: bool,
        op: FilterOp,
    },
    Logic {
        or: bool,
        negated: bool,
        children: Vec<PlannedCondition>,
    },
    /// `embed=is.null` / `embed=not.is.null`: rows without / with an embedded row.
    EmbedNull { embed: usize, is_null: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderBy {
    Expr(Box<Expr>),
    /// A column of a to-one embed's output (its SQL alias and the output name).
    Related {
        embed: usize,
        field: Field,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOrder {
    pub by: OrderBy,
    pub descending: bool,
    pub nulls: Option<NullsOrder>,
}

/// Where a node's rows come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NodeSource {
    /// Its relation.
    #[default]
    Relation,
    /// The rows a write returned (`pgrst_source`).
    Written,
    /// The rows (or the value) a function call returns.
    Call(call::Call),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub relation: QualifiedName,
    pub source: NodeSource,
    /// The SQL alias of this node's relation; unique in the statement.
    pub alias: String,
    pub outputs: Vec<Output>,
    pub conditions: Vec<PlannedCondition>,
    pub order: Vec<PlannedOrder>,
    pub range: RowRange,
    pub embeds: Vec<PlannedEmbed>,
    /// Some output aggregates: the others are the GROUP BY.
    pub grouped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEmbed {
    pub node: Node,
    pub join: Join,
    /// The key in the parent's JSON.
    pub label: String,
    /// What the select named (the relation, a key or a computed relationship).
    pub name: String,
    pub to_one: bool,
    pub inner: bool,
    pub spread: bool,
    /// Output names of the node, for a spread.
    pub columns: Vec<String>,
    /// The alias of the lateral subquery in the parent.
    pub lateral: String,
}

/// Planning settings.
pub struct Limits {
    pub max_rows: Option<u32>,
    pub aggregates_enabled: bool,
}

/// Resolves a read of `req.resource` in `schema`.
pub fn read_plan(
    req: &ApiRequest,
    cache: &SchemaCache,
    schema: &str,
    limits: &Limits,
) -> Result<ReadPlan, ApiError> {
    let name = match &req.resource {
        Resource::Relation(name) => name,
        // `/` and `/rpc` are planned elsewhere (openapi, `call::call_plan`).
        Resource::Root | Resource::Function(_) => return Err(ApiError::invalid_path()),
    };
    let relation = cache.relation_or_not_found(schema, name)?;
    let root = plan_root(req, cache, relation, limits, false)?;
    let handler = media::handler(req, cache, &relation.schema, &relation.name)?;
    // A plan request plans the statement of the media type it explains.
    let media = match req.media {
        MediaType::Plan(p) => p.target_media(),
        m => m,
    };
    Ok(ReadPlan {
        root,
        count: req.preferences.count,
        media,
        handler,
    })
}

/// The top node reading `relation` with the request's select, filters, order and range;
/// `expand_star` lists the columns `*` means (a write's returned rows need them named).
fn plan_root(
    req: &ApiRequest,
    cache: &SchemaCache,
    relation: &Relation,
    limits: &Limits,
    expand_star: bool,
) -> Result<Node, ApiError> {
    let mut planner = Planner {
        cache,
        req,
        limits,
        next_alias: 0,
    };
    let mut root = planner.node(relation, &req.select, &[], expand_star)?;
    root.range = req.range.capped(limits.max_rows);
    check_paths(req, &root)?;
    Ok(root)
}

struct Planner<'a> {
    cache: &'a SchemaCache,
    req: &'a ApiRequest,
    limits: &'a Limits,
    next_alias: usize,
}

impl Planner<'_> {
    fn alias(&mut self) -> usize {
        let n = self.next_alias;
        self.next_alias += 1;
        n
    }

    /// The node reading `relation` with `select`, at `path`; `spread` expands `*`.
    fn node(
        &mut self,
        relation: &Relation,
        select: &[SelectItem],
        path: &[(String, String)],
        spread: bool,
    ) -> Result<Node, ApiError> {
        let n = self.alias();
        let mut node = Node {
            relation: relation.qualified(),
            source: NodeSource::Relation,
            alias: format!("pgrst_{n}"),
            outputs: Vec::new(),
            conditions: Vec::new(),
            order: Vec::new(),
            range: RowRange::default(),
            embeds: Vec::new(),
            grouped: false,
        };
        for item in select {
            match item {
                // A column of a domain shown through its cast needs its name in the list.
                SelectItem::Star if spread || self.has_formatted_columns(relation) => {
                    for c in &relation.columns {
                        let expr = self.expr(relation, &Field::named(&c.name), None)?;
                        node.outputs.push(Output::Expr {
                            expr: Box::new(expr),
                            name: c.name.clone(),
                            aggregate: None,
                            aggregate_cast: None,
                        });
                    }
                }
                SelectItem::Star => node.outputs.push(Output::AllColumns),
                SelectItem::Field {
                    field,
                    alias,
                    cast,
                    aggregate,
                    aggregate_cast,
                } => {
                    if aggregate.is_some() {
                        if !self.limits.aggregates_enabled {
                            return Err(ApiError::aggregates_disabled());
                        }
                        node.grouped = true;
                    }
                    let Some(field) = field else {
                        node.outputs.push(Output::CountAll {
                            name: alias.clone().unwrap_or_else(|| "count".into()),
                            cast: aggregate_cast.clone(),
                        });
                        continue;
                    };
                    let expr = self.expr(relation, field, cast.clone())?;
                    let name = alias.clone().unwrap_or_else(|| match aggregate {
                        Some(a) => a.name().to_string(),
                        None => field.output_name(),
                    });
                    node.outputs.push(Output::Expr {
                        expr: Box::new(expr),
                        name,
                        aggregate: *aggregate,
                        aggregate_cast: aggregate_cast.clone(),
                    });
                }
                SelectItem::Embed(e) => {
                    let resolved = embed::resolve(self.cache, &node.relation, e)?;
                    let target = self
                        .cache
                        .relation_or_not_found(&resolved.target.schema, &resolved.target.name)?;
                    let mut child_path = path.to_vec();
                    child_path.push((e.label().to_string(), e.name.clone()));
                    let child = self.node(target, &e.select, &child_path, e.spread)?;
                    let columns = child.output_names();
                    let index = node.embeds.len();
                    let lateral = format!("{}_{}", child.alias, "l");
                    node.embeds.push(PlannedEmbed {
                        label: e.label().to_string(),
                        name: e.name.clone(),
                        to_one: resolved.to_one,
                        inner: e.join == Some(JoinType::Inner),
                        spread: e.spread,
                        join: resolved.join,
                        columns,
                        lateral,
                        node: child,
                    });
                    if !e.select.is_empty() {
                        node.outputs.push(Output::Embed(index));
                    }
                }
            }
        }
        let here = |p: &EmbedPath| {
            p.len() == path.len()
                && p.iter()
                    .zip(path)
                    .all(|(seg, (label, name))| seg == label || seg == name)
        };
        for (p, condition) in &self.req.conditions {
            if here(p) {
                let planned = self.condition(relation, &node, condition)?;
                node.conditions.push(planned);
            }
        }
        for (p, terms) in &self.req.order {
            if here(p) {
                for t in terms {
                    node.order.push(self.order(relation, &node, t)?);
                }
            }
        }
        if let Some((_, r)) = self.req.embed_ranges.iter().find(|(p, _)| here(p)) {
            node.range = *r;
        }
        Ok(node)
    }

    fn has_formatted_columns(&self, relation: &Relation) -> bool {
        relation.columns.iter().any(|c| {
            self.cache
                .domain_casts(&c.type_name)
                .is_some_and(|d| d.to_json.is_some())
        })
    }

    /// A field of `relation`: a column, else a computed column, else PostgreSQL's 42703.
    fn expr(
        &self,
        relation: &Relation,
        field: &Field,
        cast: Option<String>,
    ) -> Result<Expr, ApiError> {
        let (source, type_name, base_type) = match relation.column(&field.name) {
            Some(c) => (
                Source::Column(c.name.clone()),
                c.type_name.clone(),
                c.base_type.clone(),
            ),
            None => match self.cache.computed(&relation.qualified(), &field.name) {
                Some(f) if f.returns_relation.is_none() => (
                    Source::Computed(QualifiedName::new(&f.schema, &f.name)),
                    f.return_type.clone(),
                    f.return_type.clone(),
                ),
                _ => return Err(ApiError::undefined_column(&relation.name, &field.name)),
            },
        };
        let source_type = base_type.clone();
        let (type_name, base_type) = match field.json_path.last() {
            None => (type_name, base_type),
            Some(step) if step.as_text => ("text".to_string(), "text".to_string()),
            // `->` on json gives json, on jsonb (and anything read as jsonb) jsonb.
            Some(_) => {
                let t = if source_type == "json" {
                    "json"
                } else {
                    "jsonb"
                };
                (t.to_string(), t.to_string())
            }
        };
        let casts = field
            .json_path
            .is_empty()
            .then(|| self.cache.domain_casts(&type_name))
            .flatten();
        Ok(Expr {
            source,
            field: field.clone(),
            cast,
            to_json: casts.and_then(|c| c.to_json.clone()),
            from_text: casts.and_then(|c| c.from_text.clone()),
            type_name,
            base_type,
            source_type,
        })
    }

    fn condition(
        &self,
        relation: &Relation,
        node: &Node,
        condition: &Condition,
    ) -> Result<PlannedCondition, ApiError> {
        match condition {
            Condition::Logic {
                or,
                negated,
                children,
            } => Ok(PlannedCondition::Logic {
                or: *or,
                negated: *negated,
                children: children
                    .iter()
                    .map(|c| self.condition(relation, node, c))
                    .collect::<Result<_, _>>()?,
            }),
            Condition::Filter(f) => {
                if f.field.json_path.is_empty() && relation.column(&f.field.name).is_none() {
                    if let Some(i) = node.embed_index(&f.field.name) {
                        if let FilterOp::Is(v) = f.op {
                            use crate::api_request::IsValue;
                            if matches!(v, IsValue::Null | IsValue::NotNull) {
                                let is_null = (v == IsValue::Null) != f.negated;
                                return Ok(PlannedCondition::EmbedNull { embed: i, is_null });
                            }
                        }
                    }
                }
                Ok(PlannedCondition::Filter {
                    target: Box::new(self.expr(relation, &f.field, None)?),
                    negated: f.negated,
                    op: f.op.clone(),
                })
            }
        }
    }

    fn order(
        &self,
        relation: &Relation,
        node: &Node,
        t: &OrderTerm,
    ) -> Result<PlannedOrder, ApiError> {
        let by = match &t.target {
            OrderTarget::Field(f) => OrderBy::Expr(Box::new(self.expr(relation, f, None)?)),
            OrderTarget::Related { embed, field } => {
                let i = node
                    .embed_index(embed)
                    .ok_or_else(|| ApiError::not_embedded(embed))?;
                if !node.embeds[i].to_one {
                    return Err(ApiError::related_order_not_to_one(&relation.name, embed));
                }
                OrderBy::Related {
                    embed: i,
                    field: field.clone(),
                }
            }
        };
        Ok(PlannedOrder {
            by,
            descending: t.descending,
            nulls: t.nulls,
        })
    }
}

impl Node {
    /// The embed a parameter names: by its label, or (PostgREST's legacy rule) by the name
    /// of what it embeds.
    fn embed_index(&self, label: &str) -> Option<usize> {
        self.embeds
            .iter()
            .position(|e| e.label == label)
            .or_else(|| self.embeds.iter().position(|e| e.name == label))
    }

    /// The names of the columns this node outputs (`*` unexpanded gives none).
    fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .flat_map(|o| match o {
                Output::Expr { name, .. } | Output::CountAll { name, .. } => vec![name.clone()],
                Output::Embed(i) => {
                    let e = &self.embeds[*i];
                    if e.spread {
                        e.columns.clone()
                    } else {
                        vec![e.label.clone()]
                    }
                }
                Output::AllColumns => Vec::new(),
            })
            .collect()
    }
}

/// Every embed path a parameter names must be an embed of the select (PGRST108).
fn check_paths(req: &ApiRequest, root: &Node) -> Result<(), ApiError> {
    for path in parameter_paths(req) {
        check_path(root, path)?;
    }
    Ok(())
}

/// The embedding paths the request's filters, orders and limits name.
fn parameter_paths(req: &ApiRequest) -> impl Iterator<Item = &EmbedPath> {
    req.conditions
        .iter()
        .map(|(p, _)| p)
        .chain(req.order.iter().map(|(p, _)| p))
        .chain(req.embed_ranges.iter().map(|(p, _)| p))
}

/// PostgREST's `Warning` for a parameter that names an aliased embed by what it embeds
/// (`tasks.limit=1` with `the_tasks:tasks(…)`): still served, but deprecated.
pub fn legacy_embed_warning(req: &ApiRequest, root: &Node) -> Option<String> {
    for path in parameter_paths(req) {
        let mut node = root;
        for label in path {
            let Some(i) = node.embed_index(label) else {
                break;
            };
            let e = &node.embeds[i];
            if e.label != *label {
                return Some(format!(
                    "299 pg_rest \"Embedded resource was referenced by relation name even though \
                     it has an alias. This is deprecated and will stop working in a future \
                     release. Update `{label}` to `{}` in query string filters, orders or \
                     limits.\"",
                    e.label
                ));
            }
            node = &e.node;
        }
    }
    None
}

fn check_path(root: &Node, path: &EmbedPath) -> Result<(), ApiError> {
    let mut node = root;
    for label in path {
        let i = node
            .embed_index(label)
            .ok_or_else(|| ApiError::not_embedded(label))?;
        node = &node.embeds[i].node;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
