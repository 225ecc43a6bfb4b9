//! The `select` parameter: columns, `alias:` renames, `::casts`, JSON paths, aggregates and
//! embedded resources (`alias:rel!hint!inner(…)`, spreads `...rel(…)`), nested to any depth.

use super::cursor::Cursor;
use super::field::{self, Field};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

impl Aggregate {
    fn from_name(name: &str) -> Option<Aggregate> {
        Some(match name {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "max" => Aggregate::Max,
            "min" => Aggregate::Min,
            _ => return None,
        })
    }

    pub fn sql_function(self) -> &'static str {
        match self {
            Aggregate::Count => "pg_catalog.count",
            Aggregate::Sum => "pg_catalog.sum",
            Aggregate::Avg => "pg_catalog.avg",
            Aggregate::Max => "pg_catalog.max",
            Aggregate::Min => "pg_catalog.min",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    /// The relation (or computed relationship, or foreign key column/name) embedded.
    pub name: String,
    pub alias: Option<String>,
    pub hint: Option<String>,
    pub join: Option<JoinType>,
    /// `...rel(…)`: its columns join the parent's.
    pub spread: bool,
    pub select: Vec<SelectItem>,
}

impl Embed {
    /// The name filters, `order` and the response use for it.
    pub fn label(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`: every column.
    Star,
    /// A column or computed column; `field` is None only for a bare `count()`.
    Field {
        field: Option<Field>,
        alias: Option<String>,
        cast: Option<String>,
        aggregate: Option<Aggregate>,
        /// `::cast` after the aggregate: casts its result.
        aggregate_cast: Option<String>,
    },
    Embed(Embed),
}

impl SelectItem {
    pub fn column(name: &str) -> SelectItem {
        SelectItem::Field {
            field: Some(Field::named(name)),
            alias: None,
            cast: None,
            aggregate: None,
            aggregate_cast: None,
        }
    }
}

/// Parses a whole `select` value.
pub fn parse(value: &str) -> Result<Vec<SelectItem>, ApiError> {
    let mut c = Cursor::new(value, "select parameter");
    let items = items(&mut c)?;
    if !c.at_end() {
        return Err(c.error("\",\" or end of input"));
    }
    Ok(items)
}

/// Comma-separated items up to `)` or the end.
fn items(c: &mut Cursor) -> Result<Vec<SelectItem>, ApiError> {
    let mut out = Vec::new();
    c.skip_spaces();
    if c.at_end() || c.peek() == Some(')') {
        return Ok(out);
    }
    loop {
        c.skip_spaces();
        out.push(item(c)?);
        c.skip_spaces();
        if !c.eat(',') {
            return Ok(out);
        }
    }
}

fn item(c: &mut Cursor) -> Result<SelectItem, ApiError> {
    if c.eat_str("...") {
        let name = field::name(c)?;
        let mut e = embed(c, name, None)?;
        e.spread = true;
        return Ok(SelectItem::Embed(e));
    }
    if c.eat('*') {
        return Ok(SelectItem::Star);
    }
    let first = field::name(c)?;
    let (alias, name) = if c.rest().starts_with(':') && !c.rest().starts_with("::") {
        c.bump();
        c.skip_spaces();
        if c.eat_str("...") {
            return Err(c.error_with("a spread cannot have an alias".into()));
        }
        (Some(first), field::name(c)?)
    } else {
        (None, first)
    };
    if matches!(c.peek(), Some('(' | '!')) {
        if name == "count" && c.rest().starts_with("()") {
            c.eat_str("()");
            return Ok(SelectItem::Field {
                field: None,
                alias,
                cast: None,
                aggregate: Some(Aggregate::Count),
                aggregate_cast: cast(c)?,
            });
        }
        return Ok(SelectItem::Embed(embed(c, name, alias)?));
    }
    let field = Field {
        name,
        json_path: field::json_path(c)?,
    };
    let cast_before = cast(c)?;
    let aggregate = aggregate(c)?;
    let aggregate_cast = if aggregate.is_some() { cast(c)? } else { None };
    Ok(SelectItem::Field {
        field: Some(field),
        alias,
        cast: cast_before,
        aggregate,
        aggregate_cast,
    })
}

/// `.sum()` and friends after a field.
fn aggregate(c: &mut Cursor) -> Result<Option<Aggregate>, ApiError> {
    if c.peek() != Some('.') {
        return Ok(None);
    }
    c.bump();
    let name = c.take_while(|ch| ch.is_ascii_alphabetic());
    let agg = Aggregate::from_name(name)
        .ok_or_else(|| c.error("aggregate function (count, sum, avg, max, min)"))?;
    c.expect('(', "\"(\"")?;
    c.expect(')', "\")\"")?;
    Ok(Some(agg))
}

/// `::type`: letters, digits, `_`, spaces and `[]` (checked again where it becomes SQL).
fn cast(c: &mut Cursor) -> Result<Option<String>, ApiError> {
    if !c.eat_str("::") {
        return Ok(None);
    }
    let t = c.take_while(|ch| ch.is_alphanumeric() || matches!(ch, '_' | ' ' | '[' | ']'));
    if t.trim().is_empty() {
        return Err(c.error("cast type"));
    }
    Ok(Some(t.trim().to_string()))
}

/// `name!hint!inner(items)` after the name.
fn embed(c: &mut Cursor, name: String, alias: Option<String>) -> Result<Embed, ApiError> {
    let mut e = Embed {
        name,
        alias,
        hint: None,
        join: None,
        spread: false,
        select: Vec::new(),
    };
    while c.eat('!') {
        let word = field::name(c)?;
        match word.as_str() {
            "inner" => e.join = Some(JoinType::Inner),
            "left" => e.join = Some(JoinType::Left),
            _ if e.hint.is_none() => e.hint = Some(word),
            _ => return Err(c.error("\"(\"")),
        }
    }
    c.expect('(', "\"(\"")?;
    e.select = items(c)?;
    c.expect(')', "\",\" or \")\"")?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_request::field::{JsonKey, JsonStep};

    fn field_item(name: &str, alias: Option<&str>, cast: Option<&str>) -> SelectItem {
        SelectItem::Field {
            field: Some(Field::named(name)),
            alias: alias.map(str::to_string),
            cast: cast.map(str::to_string),
            aggregate: None,
            aggregate_cast: None,
        }
    }

    #[test]
    fn columns_renames_casts() {
        assert_eq!(
            parse("id, myId:id::text,*,\"a,b\"").unwrap(),
            [
                SelectItem::column("id"),
                field_item("id", Some("myId"), Some("text")),
                SelectItem::Star,
                SelectItem::column("a,b"),
            ]
        );
    }

    #[test]
    fn json_paths_with_alias_and_cast() {
        let items = parse("myBar:settings->foo->>int::integer").unwrap();
        let SelectItem::Field {
            field: Some(f),
            alias,
            cast,
            ..
        } = &items[0]
        else {
            panic!()
        };
        assert_eq!(alias.as_deref(), Some("myBar"));
        assert_eq!(cast.as_deref(), Some("integer"));
        assert_eq!(
            f.json_path[1],
            JsonStep {
                as_text: true,
                key: JsonKey::Key("int".into())
            }
        );
    }

    #[test]
    fn embeds_hints_joins_spreads_nesting() {
        let items =
            parse("id,client:clients!client_fk!inner(id,name),...tasks(t:name,users(*)),c()")
                .unwrap();
        let SelectItem::Embed(e) = &items[1] else {
            panic!()
        };
        assert_eq!((e.name.as_str(), e.label()), ("clients", "client"));
        assert_eq!(e.hint.as_deref(), Some("client_fk"));
        assert_eq!(e.join, Some(JoinType::Inner));
        assert_eq!(e.select.len(), 2);
        let SelectItem::Embed(s) = &items[2] else {
            panic!()
        };
        assert!(s.spread);
        assert!(matches!(&s.select[1], SelectItem::Embed(u) if u.select == [SelectItem::Star]));
        let SelectItem::Embed(empty) = &items[3] else {
            panic!()
        };
        assert!(empty.select.is_empty());
        let SelectItem::Embed(left) = &parse("x!left(a)").unwrap()[0] else {
            panic!()
        };
        assert_eq!(
            (left.join, left.hint.as_deref()),
            (Some(JoinType::Left), None)
        );
    }

    #[test]
    fn aggregates() {
        let items = parse("count(),total:amount.sum()::text,amount.max(),g").unwrap();
        assert!(matches!(
            &items[0],
            SelectItem::Field {
                field: None,
                aggregate: Some(Aggregate::Count),
                ..
            }
        ));
        assert!(
            matches!(&items[1], SelectItem::Field { aggregate: Some(Aggregate::Sum), aggregate_cast: Some(t), .. } if t == "text")
        );
        assert!(matches!(
            &items[2],
            SelectItem::Field {
                aggregate: Some(Aggregate::Max),
                ..
            }
        ));
    }

    #[test]
    fn malformed() {
        for bad in ["id,(", "a(", "a(b", "id::", "x.nope()", ",", "a!!b(c)"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, "PGRST100", "{bad}");
            assert!(
                e.message
                    .starts_with("\"failed to parse select parameter ("),
                "{bad}"
            );
        }
    }
}
