//! Filters (`col=op.value`) and logic trees (`or=(a.eq.1,and(b.gt.2,c.lt.3))`) in PostgREST's
//! syntax, with every operator, `not.`, the `any`/`all` modifiers, full-text search languages,
//! `in.(…)` lists and quoted values.

use super::cursor::Cursor;
use super::field::{self, Field, EXPECTING_NAME};
use crate::error::ApiError;

/// A binary operator whose right side is one value (or, quantified, an array of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Match,
    Imatch,
    /// Arrays and ranges: contains, contained in, overlap.
    Cs,
    Cd,
    Ov,
    /// Ranges: strictly left/right, does not extend right/left, adjacent.
    Sl,
    Sr,
    Nxr,
    Nxl,
    Adj,
}

impl Comparison {
    fn from_name(name: &str) -> Option<Comparison> {
        use Comparison::*;
        Some(match name {
            "eq" => Eq,
            "neq" => Neq,
            "gt" => Gt,
            "gte" => Gte,
            "lt" => Lt,
            "lte" => Lte,
            "like" => Like,
            "ilike" => Ilike,
            "match" => Match,
            "imatch" => Imatch,
            "cs" => Cs,
            "cd" => Cd,
            "ov" => Ov,
            "sl" => Sl,
            "sr" => Sr,
            "nxr" => Nxr,
            "nxl" => Nxl,
            "adj" => Adj,
            _ => return None,
        })
    }

    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        use Comparison::*;
        match self {
            Eq => "=",
            Neq => "<>",
            Gt => ">",
            Gte => ">=",
            Lt => "<",
            Lte => "<=",
            Like => "LIKE",
            Ilike => "ILIKE",
            Match => "~",
            Imatch => "~*",
            Cs => "@>",
            Cd => "<@",
            Ov => "&&",
            Sl => "<<",
            Sr => ">>",
            Nxr => "&<",
            Nxl => "&>",
            Adj => "-|-",
        }
    }

    /// Patterns compare as text whatever the column's type.
    pub fn is_pattern(self) -> bool {
        use Comparison::*;
        matches!(self, Like | Ilike | Match | Imatch)
    }

    /// Only these take `(any)` / `(all)`.
    fn quantifiable(self) -> bool {
        use Comparison::*;
        matches!(
            self,
            Eq | Neq | Gt | Gte | Lt | Lte | Like | Ilike | Match | Imatch
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

/// Full-text search: `to_tsquery`, `plainto_tsquery`, `phraseto_tsquery`,
/// `websearch_to_tsquery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsOperator {
    Fts,
    Plain,
    Phrase,
    Websearch,
}

impl FtsOperator {
    fn from_name(name: &str) -> Option<FtsOperator> {
        Some(match name {
            "fts" => FtsOperator::Fts,
            "plfts" => FtsOperator::Plain,
            "phfts" => FtsOperator::Phrase,
            "wfts" => FtsOperator::Websearch,
            _ => return None,
        })
    }

    pub fn sql_function(self) -> &'static str {
        match self {
            FtsOperator::Fts => "pg_catalog.to_tsquery",
            FtsOperator::Plain => "pg_catalog.plainto_tsquery",
            FtsOperator::Phrase => "pg_catalog.phraseto_tsquery",
            FtsOperator::Websearch => "pg_catalog.websearch_to_tsquery",
        }
    }
}

/// The operand of `is`: a keyword, never a bind parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

impl IsValue {
    pub fn sql(self) -> &'static str {
        match self {
            IsValue::Null => "IS NULL",
            IsValue::NotNull => "IS NOT NULL",
            IsValue::True => "IS TRUE",
            IsValue::False => "IS FALSE",
            IsValue::Unknown => "IS UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOp {
    Compare {
        op: Comparison,
        quantifier: Option<Quantifier>,
        value: String,
    },
    In(Vec<String>),
    Is(IsValue),
    IsDistinct(String),
    Fts {
        op: FtsOperator,
        language: Option<String>,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub negated: bool,
    pub op: FilterOp,
}

/// A filter or a logic tree of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Filter(Filter),
    Logic {
        /// `or`; else `and`.
        or: bool,
        negated: bool,
        children: Vec<Condition>,
    },
}

/// `col=[not.]op.value` as a query parameter: `value` is everything after the operator.
pub fn filter(field: Field, expr: &str) -> Result<Filter, ApiError> {
    let mut c = Cursor::new(expr, "filter");
    let negated = c.eat_str("not.");
    let op = operation(&mut c, false)?;
    Ok(Filter { field, negated, op })
}

/// A logic tree parameter: `key` is `or`, `and`, `not.or` or `not.and` (without an embed
/// path), `value` its `(…)`.
pub fn logic_tree(key: &str, value: &str) -> Result<Condition, ApiError> {
    let input = format!("{key}{value}");
    let mut c = Cursor::showing(&input, value, "logic tree");
    let tree = logic(&mut c)?;
    c.skip_spaces();
    if !c.at_end() {
        return Err(c.error("end of input"));
    }
    Ok(tree)
}

/// `[not.](and|or)(cond, …)` at the cursor.
fn logic(c: &mut Cursor) -> Result<Condition, ApiError> {
    let negated = c.eat_str("not.");
    let or = if c.eat_str("or") {
        true
    } else if c.eat_str("and") {
        false
    } else {
        return Err(c.error("logic operator (and, or)"));
    };
    c.skip_spaces();
    c.expect('(', "\"(\"")?;
    let mut children = Vec::new();
    loop {
        c.skip_spaces();
        children.push(condition(c)?);
        c.skip_spaces();
        if c.eat(',') {
            continue;
        }
        c.expect(')', "\",\" or \")\"")?;
        return Ok(Condition::Logic {
            or,
            negated,
            children,
        });
    }
}

/// One member of a logic tree: a nested tree or `field.[not.]op.value`.
fn condition(c: &mut Cursor) -> Result<Condition, ApiError> {
    let rest = c.rest();
    let nested = ["and", "or", "not.and", "not.or"].iter().any(|k| {
        rest.strip_prefix(k)
            .is_some_and(|r| r.trim_start().starts_with('('))
    });
    if nested {
        return logic(c);
    }
    if matches!(c.peek(), Some(ch) if ch == ')' || ch == ',') || c.at_end() {
        return Err(c.error(&format!(
            "{EXPECTING_NAME}, negation operator (not) or logic operator (and, or)"
        )));
    }
    let field = field::field(c)?;
    c.expect('.', "\".\"")?;
    let negated = c.eat_str("not.");
    let op = operation(c, true)?;
    Ok(Condition::Filter(Filter { field, negated, op }))
}

/// `op[(modifier)].value`. Inside a logic tree (`nested`) the value ends at `,` or `)` unless
/// quoted or braced; at the top level it is the rest of the text.
fn operation(c: &mut Cursor, nested: bool) -> Result<FilterOp, ApiError> {
    let name = c.take_while(|ch| ch.is_ascii_alphabetic());
    let modifier = if c.eat('(') {
        let m = c.take_while(|ch| ch != ')');
        c.expect(')', "\")\"")?;
        Some(m)
    } else {
        None
    };
    if !c.eat('.') {
        return Err(c.error_with(if name.is_empty() || c.at_end() {
            "unexpected end of input expecting operator (eq, gt, ...)".into()
        } else {
            format!("unknown operator '{name}' or missing value")
        }));
    }
    if name == "in" && modifier.is_none() {
        return Ok(FilterOp::In(list(c)?));
    }
    let value = if nested {
        nested_value(c)?
    } else {
        c.rest().to_string()
    };
    if !nested {
        while c.bump().is_some() {}
    }
    if name == "is" && modifier.is_none() {
        return is_value(&value).map(FilterOp::Is).ok_or_else(|| {
            ApiError::parse_error(
                format!("\"failed to parse filter (is.{value})\" (line 1, column 4)"),
                "unexpected \"".to_string()
                    + value
                        .chars()
                        .next()
                        .map(String::from)
                        .unwrap_or_default()
                        .as_str()
                    + "\" expecting null or trilean value (unknown, true, false)",
            )
        });
    }
    if name == "isdistinct" && modifier.is_none() {
        return Ok(FilterOp::IsDistinct(value));
    }
    if let Some(op) = FtsOperator::from_name(name) {
        return Ok(FilterOp::Fts {
            op,
            language: modifier.map(str::to_string),
            value,
        });
    }
    let op = Comparison::from_name(name)
        .ok_or_else(|| c.error_with(format!("unknown operator '{name}'")))?;
    let quantifier = match modifier {
        None => None,
        Some("any") if op.quantifiable() => Some(Quantifier::Any),
        Some("all") if op.quantifiable() => Some(Quantifier::All),
        Some(other) => return Err(c.error_with(format!("unknown modifier '{other}' for '{name}'"))),
    };
    // PostgREST's `*` wildcard spares clients from percent-encoding `%`.
    let value = if matches!(op, Comparison::Like | Comparison::Ilike) {
        value.replace('*', "%")
    } else {
        value
    };
    Ok(FilterOp::Compare {
        op,
        quantifier,
        value,
    })
}

fn is_value(value: &str) -> Option<IsValue> {
    match value.trim().to_ascii_lowercase().as_str() {
        "null" => Some(IsValue::Null),
        "not_null" => Some(IsValue::NotNull),
        "true" => Some(IsValue::True),
        "false" => Some(IsValue::False),
        "unknown" => Some(IsValue::Unknown),
        _ => None,
    }
}

/// `(a, "b,c", d)`: elements trimmed, quoted ones taken as they are.
fn list(c: &mut Cursor) -> Result<Vec<String>, ApiError> {
    c.expect('(', "\"(\"")?;
    let mut items = Vec::new();
    c.skip_spaces();
    if c.eat(')') {
        return Ok(items);
    }
    loop {
        c.skip_spaces();
        if c.peek() == Some('"') {
            items.push(c.quoted()?);
            c.skip_spaces();
        } else {
            items.push(c.take_while(|ch| ch != ',' && ch != ')').trim().to_string());
        }
        if c.eat(',') {
            continue;
        }
        c.expect(')', "\",\" or \")\"")?;
        return Ok(items);
    }
}

/// A value inside a logic tree: quoted, or up to the next `,`/`)` outside `{…}`, trimmed.
fn nested_value(c: &mut Cursor) -> Result<String, ApiError> {
    c.skip_spaces();
    if c.peek() == Some('"') {
        return c.quoted();
    }
    let mut out = String::new();
    let mut depth = 0usize;
    while let Some(ch) = c.peek() {
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            '(' if out.is_empty() || depth > 0 => depth += 1,
            ')' if depth > 0 => depth -= 1,
            ',' | ')' if depth == 0 => break,
            _ => {}
        }
        out.push(ch);
        c.bump();
    }
    Ok(out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(expr: &str) -> FilterOp {
        filter(Field::named("c"), expr).unwrap().op
    }

    fn cmp(op: Comparison, quantifier: Option<Quantifier>, value: &str) -> FilterOp {
        FilterOp::Compare {
            op,
            quantifier,
            value: value.into(),
        }
    }

    #[test]
    fn every_comparison() {
        use Comparison::*;
        for (name, op) in [
            ("eq", Eq),
            ("neq", Neq),
            ("gt", Gt),
            ("gte", Gte),
            ("lt", Lt),
            ("lte", Lte),
            ("match", Match),
            ("imatch", Imatch),
            ("cs", Cs),
            ("cd", Cd),
            ("ov", Ov),
            ("sl", Sl),
            ("sr", Sr),
            ("nxr", Nxr),
            ("nxl", Nxl),
            ("adj", Adj),
        ] {
            assert_eq!(f(&format!("{name}.x.y")), cmp(op, None, "x.y"), "{name}");
        }
        assert_eq!(f("like.*a*"), cmp(Like, None, "%a%"));
        assert_eq!(
            f("ilike(all).{*a*,b}"),
            cmp(Ilike, Some(Quantifier::All), "{%a%,b}")
        );
        assert_eq!(f("eq(any).{1,2}"), cmp(Eq, Some(Quantifier::Any), "{1,2}"));
        assert!(filter(Field::named("c"), "not.eq.1").unwrap().negated);
    }

    #[test]
    fn in_lists_is_and_fts() {
        assert_eq!(
            f("in.(1, \"a,b\" ,x y,\"q\\\"\")"),
            FilterOp::In(vec!["1".into(), "a,b".into(), "x y".into(), "q\"".into()])
        );
        assert_eq!(f("in.()"), FilterOp::In(vec![]));
        assert_eq!(f("in.(   )"), FilterOp::In(vec![]));
        assert_eq!(f("in.( ,3)"), FilterOp::In(vec!["".into(), "3".into()]));
        assert_eq!(f("is.NoT_NuLl"), FilterOp::Is(IsValue::NotNull));
        assert_eq!(f("isdistinct.2"), FilterOp::IsDistinct("2".into()));
        assert_eq!(
            f("fts(french).amusant"),
            FilterOp::Fts {
                op: FtsOperator::Fts,
                language: Some("french".into()),
                value: "amusant".into()
            }
        );
        assert!(matches!(
            f("wfts.a b"),
            FilterOp::Fts {
                op: FtsOperator::Websearch,
                language: None,
                ..
            }
        ));
        let e = filter(Field::named("c"), "is.nil").unwrap_err();
        assert_eq!(e.code, "PGRST100");
        assert_eq!(
            filter(Field::named("c"), "foo.1").unwrap_err().code,
            "PGRST100"
        );
        assert_eq!(filter(Field::named("c"), "1").unwrap_err().code, "PGRST100");
        assert_eq!(
            filter(Field::named("c"), "cs(any).1").unwrap_err().code,
            "PGRST100"
        );
    }

    #[test]
    fn logic_trees_nest_and_take_quoted_and_braced_values() {
        let t = logic_tree(
            "and",
            "( and ( id.in.( 1, 2, 3 ) , id.eq.3 ) , or ( id.eq.2 , name.eq.\"a,b)\" ), arr.not.cs.{1,2})",
        )
        .unwrap();
        let Condition::Logic {
            or,
            negated,
            children,
        } = t
        else {
            panic!()
        };
        assert!(!or && !negated);
        assert_eq!(children.len(), 3);
        let Condition::Logic {
            children: inner, ..
        } = &children[0]
        else {
            panic!()
        };
        assert_eq!(
            inner[0],
            Condition::Filter(Filter {
                field: Field::named("id"),
                negated: false,
                op: FilterOp::In(vec!["1".into(), "2".into(), "3".into()])
            })
        );
        let Condition::Logic {
            children: second, ..
        } = &children[1]
        else {
            panic!()
        };
        assert_eq!(
            second[1],
            Condition::Filter(Filter {
                field: Field::named("name"),
                negated: false,
                op: cmp(Comparison::Eq, None, "a,b)")
            })
        );
        assert_eq!(
            children[2],
            Condition::Filter(Filter {
                field: Field::named("arr"),
                negated: true,
                op: cmp(Comparison::Cs, None, "{1,2}")
            })
        );
        let t = logic_tree("or", "(not.and(name.eq.entity 2,id.eq.2),data->a->>b.eq.x)").unwrap();
        let Condition::Logic { children, .. } = t else {
            panic!()
        };
        assert!(matches!(
            &children[0],
            Condition::Logic {
                negated: true,
                or: false,
                ..
            }
        ));
        let Condition::Filter(fl) = &children[1] else {
            panic!()
        };
        assert_eq!(fl.field.json_path.len(), 2);
    }

    #[test]
    fn an_empty_tree_is_postgrest_s_error() {
        let e = logic_tree("or", "()").unwrap_err();
        assert_eq!(
            e.message,
            "\"failed to parse logic tree (())\" (line 1, column 4)"
        );
        assert_eq!(
            e.details.as_deref(),
            Some("unexpected \")\" expecting field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)")
        );
        assert!(logic_tree("or", "(id.eq.1").is_err());
        assert!(logic_tree("or", "(id.eq.1))").is_err());
        assert!(logic_tree("or", "(id.eq.1)").is_ok());
    }
}
