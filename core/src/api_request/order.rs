//! The `order` parameter: `col[.asc|.desc][.nullsfirst|.nullslast],…`, on JSON paths
//! (`data->>id.desc`) and on a to-one embedded resource's column (`clients(name).desc`).

use super::cursor::Cursor;
use super::field::{self, Field};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullsOrder {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderTarget {
    Field(Field),
    /// `embed(field)`: a column of a to-one embedded resource (by its label).
    Related {
        embed: String,
        field: Field,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub target: OrderTarget,
    pub descending: bool,
    pub nulls: Option<NullsOrder>,
}

pub fn parse(value: &str) -> Result<Vec<OrderTerm>, ApiError> {
    let mut c = Cursor::new(value, "order");
    let mut terms = Vec::new();
    loop {
        c.skip_spaces();
        terms.push(term(&mut c)?);
        c.skip_spaces();
        if c.at_end() {
            return Ok(terms);
        }
        c.expect(',', "\",\" or end of input")?;
    }
}

fn term(c: &mut Cursor) -> Result<OrderTerm, ApiError> {
    let first = field::field(c)?;
    let target = if first.json_path.is_empty() && c.eat('(') {
        let inner = field::field(c)?;
        c.expect(')', "\")\"")?;
        OrderTarget::Related {
            embed: first.name,
            field: inner,
        }
    } else {
        OrderTarget::Field(first)
    };
    let mut t = OrderTerm {
        target,
        descending: false,
        nulls: None,
    };
    if c.eat('.') {
        let direction = if c.eat_str("asc") {
            true
        } else if c.eat_str("desc") {
            t.descending = true;
            true
        } else {
            false
        };
        if direction && !c.eat('.') {
            return Ok(t);
        }
        if c.eat_str("nullsfirst") {
            t.nulls = Some(NullsOrder::First);
        } else if c.eat_str("nullslast") {
            t.nulls = Some(NullsOrder::Last);
        } else {
            return Err(c.error("\"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, descending: bool, nulls: Option<NullsOrder>) -> OrderTerm {
        OrderTerm {
            target: OrderTarget::Field(Field::named(name)),
            descending,
            nulls,
        }
    }

    #[test]
    fn terms() {
        assert_eq!(
            parse("a,b.desc,c.asc.nullslast,d.nullsfirst,\"x.y\".desc").unwrap(),
            [
                t("a", false, None),
                t("b", true, None),
                t("c", false, Some(NullsOrder::Last)),
                t("d", false, Some(NullsOrder::First)),
                t("x.y", true, None),
            ]
        );
        let r = parse("clients(name).nullsfirst,data->>id.desc").unwrap();
        assert_eq!(
            r[0].target,
            OrderTarget::Related {
                embed: "clients".into(),
                field: Field::named("name")
            }
        );
        assert!(matches!(&r[1].target, OrderTarget::Field(f) if f.json_path.len() == 1));
        assert!(r[1].descending);
    }

    #[test]
    fn bad_terms_are_postgrest_s_errors() {
        let e = parse("id.asc.nullslasttt").unwrap_err();
        assert_eq!(
            e.message,
            "\"failed to parse order (id.asc.nullslasttt)\" (line 1, column 17)"
        );
        assert_eq!(
            e.details.as_deref(),
            Some("unexpected 't' expecting \",\" or end of input")
        );
        for bad in ["id.up", "", "a,,b", "id.nullsfirst.asc", "id.asc.desc"] {
            assert_eq!(parse(bad).unwrap_err().code, "PGRST100", "{bad}");
        }
    }
}
