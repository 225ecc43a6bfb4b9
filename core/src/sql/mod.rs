//! SQL: where user input meets SQL text. Names reach the text only through `quote_ident`;
//! values only as bind parameters (`$n`, sent as text and cast in SQL). The text depends on the
//! request's shape alone, never on its values, so it doubles as the prepared-plan cache key.

mod call;
mod read;
mod realtime;
mod write;

pub use call::call_statement;
pub use read::{explain_statement, plan_rows, planned_count_statement, read_statement};
pub use realtime::{channel_check_statement, subscribe_check_statement, visibility_statement};
use std::fmt::Write;
pub use write::write_statement;

/// The columns every statement ends with, after rows, total and body: `response.headers`
/// and `response.status` as the transaction left them (read after the rows are produced: the
/// select list of an aggregate over them), the written row's primary key (for `Location`) and
/// how many rows an upsert inserted; NULL where they do not apply.
pub(crate) fn push_tail(b: &mut Builder, location: Option<&str>, inserted: Option<&str>) {
    b.sql.push_str(
        ", NULLIF(pg_catalog.current_setting('response.headers', true), ''), \
         NULLIF(pg_catalog.current_setting('response.status', true), ''), ",
    );
    b.sql.push_str(location.unwrap_or("NULL::text"));
    b.sql.push_str(", ");
    b.sql.push_str(inserted.unwrap_or("NULL::int8"));
}

/// One parameterized statement; every parameter is of type `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
}

/// The one function that puts a name into SQL text: always double-quoted, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    push_ident(&mut out, name);
    out
}

pub(crate) fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

/// The call of `pg_rest.pre_request` (`fn` or `schema.fn`, as its check hook allows), each
/// part quoted.
pub fn pre_request_statement(function: &str) -> String {
    let mut sql = String::from("SELECT ");
    for (i, part) in function.splitn(2, '.').enumerate() {
        if i > 0 {
            sql.push('.');
        }
        push_ident(&mut sql, part);
    }
    sql.push_str("()");
    sql
}

/// A statement being written: its text and its parameters so far. Fragments (a node, an
/// embed, a condition) append to both, so a nested embedding is a fragment inside a fragment
/// and parameters are numbered in the order they appear.
pub(crate) struct Builder {
    pub sql: String,
    params: Vec<String>,
    /// The request body, bound once however often the statement reads it.
    payload: Option<String>,
    payload_placeholder: Option<String>,
}

impl Default for Builder {
    /// Room for a typical statement (a few hundred bytes), so building one reallocates
    /// seldom.
    fn default() -> Self {
        Builder {
            sql: String::with_capacity(1024),
            params: Vec::with_capacity(4),
            payload: None,
            payload_placeholder: None,
        }
    }
}

impl Builder {
    /// A builder for a statement that reads the request body (`param_payload`).
    pub fn with_payload(payload: Option<String>) -> Self {
        Builder {
            payload,
            ..Builder::default()
        }
    }

    /// The body's placeholder: one parameter, whatever the number of uses.
    pub fn param_payload(&mut self) -> String {
        if let Some(p) = &self.payload_placeholder {
            return p.clone();
        }
        let p = self.param(self.payload.clone().unwrap_or_else(|| "{}".into()));
        self.payload_placeholder = Some(p.clone());
        p
    }

    /// Adds a bind parameter and returns its placeholder (`$n`).
    pub fn param(&mut self, value: String) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Adds a bind parameter and writes its placeholder, cast to `type_name` (a planned
    /// type's SQL, not a client's text).
    pub fn push_param(&mut self, value: String, type_name: &str) {
        self.params.push(value);
        // Writing into a String cannot fail.
        let _ = write!(self.sql, "${}::{type_name}", self.params.len());
    }

    pub fn finish(self) -> Statement {
        Statement {
            sql: self.sql,
            params: self.params,
        }
    }
}

/// A cast's type as SQL: PostgreSQL's spellings of built-in types (`integer`, `double
/// precision`, …) become their catalog names, and every name is quoted, so a client's type
/// name can never be more than a type name (an unknown one is PostgreSQL's 42704).
pub(crate) fn push_type(out: &mut String, name: &str) {
    let (base, dims) = match name.find('[') {
        Some(i) => (name[..i].trim(), name[i..].matches("[]").count().max(1)),
        None => (name.trim(), 0),
    };
    let lower = base.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "int" | "integer" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "float" | "double precision" => "float8",
        "boolean" => "bool",
        "decimal" => "numeric",
        "character varying" => "varchar",
        "character" | "char" => "bpchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "time with time zone" => "timetz",
        "time without time zone" => "time",
        _ => base,
    };
    push_ident(out, canonical);
    for _ in 0..dims {
        out.push_str("[]");
    }
}

#[cfg(test)]
mod tests;
