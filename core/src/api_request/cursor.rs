//! A cursor over one query-string value, for the hand-written parsers of `select`, `order`,
//! filters and logic trees. Errors are worded as PostgREST's (Parsec) errors are:
//! `"failed to parse <what> (<input>)" (line 1, column N)` with `unexpected … expecting …`
//! as details, so clients that show them see the same text.

use crate::error::ApiError;

pub(crate) struct Cursor<'a> {
    input: &'a str,
    pos: usize,
    /// The text the message quotes (PostgREST parses `or=(…)` as `or(…)` but quotes `(…)`).
    shown: &'a str,
    /// What is parsed, for the message: `select parameter`, `order`, `logic tree`, `filter`.
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(input: &'a str, what: &'static str) -> Self {
        Cursor {
            input,
            pos: 0,
            shown: input,
            what,
        }
    }

    /// A cursor whose messages quote `shown` instead of `input`.
    pub fn showing(input: &'a str, shown: &'a str, what: &'static str) -> Self {
        Cursor {
            shown,
            ..Cursor::new(input, what)
        }
    }

    pub fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    pub fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Characters while `keep` holds.
    pub fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.input[start..self.pos]
    }

    pub fn expect(&mut self, c: char, expecting: &str) -> Result<(), ApiError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(expecting))
        }
    }

    /// A `"quoted"` text: `\"` and `\\` stand for themselves.
    pub fn quoted(&mut self) -> Result<String, ApiError> {
        self.expect('"', "\"\\\"\"")?;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("\"\\\"\"")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err(self.error("\"\\\"\"")),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// PostgREST's parse error at the current position.
    pub fn error(&self, expecting: &str) -> ApiError {
        let unexpected = match self.peek() {
            None => "end of input".to_string(),
            // Parsec quotes a character of `order` as a char, elsewhere as a string.
            Some(c) if self.what == "order" => format!("'{c}'"),
            Some(c) => format!("{:?}", c.to_string()),
        };
        self.error_with(format!("unexpected {unexpected} expecting {expecting}"))
    }

    /// A parse error at the current position with `details` of the caller's choosing.
    pub fn error_with(&self, details: String) -> ApiError {
        let column = self.input[..self.pos].chars().count() + 1;
        ApiError::parse_error(
            format!(
                "\"failed to parse {} ({})\" (line 1, column {column})",
                self.what, self.shown
            ),
            details,
        )
    }
}
