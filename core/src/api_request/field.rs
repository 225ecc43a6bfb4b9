//! Field names and JSON paths, shared by `select`, filters and `order`:
//! `name`, `"quoted name"`, `field-with-dash`, `data->key->>0`.

use super::cursor::Cursor;
use crate::error::ApiError;

/// A column (or computed column) and the JSON path into it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field {
    pub name: String,
    pub json_path: Vec<JsonStep>,
}

impl Field {
    pub fn named(name: &str) -> Self {
        Field {
            name: name.to_string(),
            json_path: Vec::new(),
        }
    }

    /// The name PostgREST gives the field in a response: the last JSON key (indexes do not
    /// count), else the column.
    pub fn output_name(&self) -> String {
        self.json_path
            .iter()
            .rev()
            .find_map(|s| match &s.key {
                JsonKey::Key(k) => Some(k.clone()),
                JsonKey::Index(_) => None,
            })
            .unwrap_or_else(|| self.name.clone())
    }
}

/// One `->` (JSON) or `->>` (text) step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    /// `->>`: the step yields text.
    pub as_text: bool,
    pub key: JsonKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonKey {
    Key(String),
    /// An array index (negative counts from the end).
    Index(i64),
}

/// Characters of an unquoted name (PostgREST: letters, digits, `_`, `$` and spaces; a `-`
/// joins parts as in `field-with-dash`).
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$' | ' ')
}

/// What a name is expected to look like, for messages.
pub(crate) const EXPECTING_NAME: &str = "field name (* or [a..z0..9_$])";

/// A name: quoted, or unquoted parts joined by single dashes (never `->`). Trimmed.
pub(crate) fn name(c: &mut Cursor) -> Result<String, ApiError> {
    if c.peek() == Some('"') {
        return c.quoted();
    }
    let mut out = String::new();
    loop {
        let part = c.take_while(name_char);
        if part.is_empty() {
            return Err(c.error(EXPECTING_NAME));
        }
        out.push_str(part);
        let rest = c.rest();
        if rest.starts_with('-') && !rest.starts_with("->") {
            c.bump();
            out.push('-');
            continue;
        }
        break;
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        return Err(c.error(EXPECTING_NAME));
    }
    Ok(trimmed.to_string())
}

/// A whole text as one field (a query parameter's key).
pub fn parse_field(text: &str) -> Result<Field, ApiError> {
    let mut c = Cursor::new(text, "filter");
    let f = field(&mut c)?;
    if !c.at_end() {
        return Err(c.error("end of input"));
    }
    Ok(f)
}

/// A field: a name and its JSON path.
pub(crate) fn field(c: &mut Cursor) -> Result<Field, ApiError> {
    let name = name(c)?;
    Ok(Field {
        name,
        json_path: json_path(c)?,
    })
}

pub(crate) fn json_path(c: &mut Cursor) -> Result<Vec<JsonStep>, ApiError> {
    let mut steps = Vec::new();
    loop {
        let as_text = if c.eat_str("->>") {
            true
        } else if c.eat_str("->") {
            false
        } else {
            return Ok(steps);
        };
        steps.push(JsonStep {
            as_text,
            key: json_key(c)?,
        });
    }
}

fn json_key(c: &mut Cursor) -> Result<JsonKey, ApiError> {
    if c.peek() == Some('"') {
        return Ok(JsonKey::Key(c.quoted()?));
    }
    let negative = c.eat('-');
    let digits = c.take_while(|ch| ch.is_ascii_digit());
    if negative || !digits.is_empty() {
        if digits.is_empty() {
            return Err(c.error("digit"));
        }
        // Digits followed by name characters are a key (`1st`), not an index.
        if !c.peek().is_some_and(name_char) {
            let n: i64 = digits
                .parse()
                .map_err(|_| c.error_with("array index out of range".into()))?;
            return Ok(JsonKey::Index(if negative { -n } else { n }));
        }
        let rest = c.take_while(|ch| name_char(ch) || ch == '@');
        return Ok(JsonKey::Key(format!("{digits}{rest}")));
    }
    let key = c.take_while(|ch| name_char(ch) || ch == '@');
    if key.trim().is_empty() {
        return Err(c.error("key name"));
    }
    Ok(JsonKey::Key(key.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Field, ApiError> {
        let mut c = Cursor::new(s, "select parameter");
        let f = field(&mut c)?;
        assert!(c.at_end(), "left: {}", c.rest());
        Ok(f)
    }

    #[test]
    fn names_dashes_quotes_and_paths() {
        assert_eq!(
            parse("field-with_sep").unwrap(),
            Field::named("field-with_sep")
        );
        assert_eq!(parse("\"a.b,c\"").unwrap(), Field::named("a.b,c"));
        assert_eq!(parse("\"q\\\"x\"").unwrap(), Field::named("q\"x"));
        let f = parse("settings->foo->>bar").unwrap();
        assert_eq!(f.name, "settings");
        assert_eq!(
            f.json_path,
            [
                JsonStep {
                    as_text: false,
                    key: JsonKey::Key("foo".into())
                },
                JsonStep {
                    as_text: true,
                    key: JsonKey::Key("bar".into())
                }
            ]
        );
        assert_eq!(f.output_name(), "bar");
        let f = parse("data->>-3").unwrap();
        assert_eq!(f.json_path[0].key, JsonKey::Index(-3));
        assert_eq!(f.output_name(), "data");
    }

    #[test]
    fn a_dash_needs_a_digit() {
        let e = parse("data->>--34").unwrap_err();
        assert_eq!(
            e.details.as_deref(),
            Some("unexpected \"-\" expecting digit")
        );
        assert_eq!(
            e.message,
            "\"failed to parse select parameter (data->>--34)\" (line 1, column 9)"
        );
    }

    #[test]
    fn unicode_and_spaces() {
        assert_eq!(
            parse("Just A Server Model").unwrap().name,
            "Just A Server Model"
        );
        assert_eq!(parse("تست").unwrap().name, "تست");
        assert!(parse("").is_err());
    }
}
