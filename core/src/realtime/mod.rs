//! The realtime protocol (API.md "Realtime"): what WebSocket clients send and are sent, the
//! change events the realtime worker hands the http workers ([`event`]), and the line
//! protocol between them ([`feed`]).

pub mod event;
pub mod feed;

use serde_json::{json, Map, Value};

/// Which row changes a table subscription wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events(u8);

impl Events {
    pub const INSERT: Events = Events(1);
    pub const UPDATE: Events = Events(2);
    pub const DELETE: Events = Events(4);
    pub const ALL: Events = Events(7);

    /// `INSERT`, `UPDATE`, `DELETE` or `*`, case-insensitive; None for another name.
    pub fn parse_one(name: &str) -> Option<Events> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "INSERT" => Events::INSERT,
            "UPDATE" => Events::UPDATE,
            "DELETE" => Events::DELETE,
            "*" => Events::ALL,
            _ => return None,
        })
    }

    /// A comma-separated list (`?events=INSERT,UPDATE`); empty means all.
    pub fn parse_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Events, String> {
        let mut set = 0;
        for name in names {
            match Events::parse_one(name) {
                Some(e) => set |= e.0,
                None => {
                    return Err(format!(
                        "unknown event \"{name}\": use INSERT, UPDATE, DELETE or *"
                    ))
                }
            }
        }
        Ok(if set == 0 { Events::ALL } else { Events(set) })
    }

    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }
}

/// What a subscription listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Row changes of a table: `schema` None is the default schema; `filter` is REST filter
    /// syntax (`owner=eq.7&or=(…)`), parsed by the read dialect.
    Table {
        schema: Option<String>,
        name: String,
        events: Events,
        filter: String,
    },
    Channel(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub id: String,
    pub target: Target,
    /// Resume after this position (an earlier event's `lsn`).
    pub since: Option<u64>,
}

/// One message from a WebSocket client.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Subscribe(Subscribe),
    Unsubscribe {
        id: String,
    },
    Publish {
        channel: String,
        payload: Value,
    },
    Ping,
    /// A fresh token for the connection's later subscriptions (Supabase's `access_token`).
    AccessToken(String),
}

/// Why a client's message is refused: the `error` event sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub id: Option<String>,
    pub code: String,
    pub message: String,
}

impl Refusal {
    pub fn new(id: Option<&str>, code: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            id: id.map(str::to_string),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        error(self.id.as_deref(), &self.code, &self.message)
    }
}

/// Reads one client message.
pub fn parse_op(text: &str) -> Result<Op, Refusal> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Refusal::new(None, "invalid_message", format!("not JSON: {e}")))?;
    let Some(m) = v.as_object() else {
        return Err(Refusal::new(
            None,
            "invalid_message",
            "a message is a JSON object",
        ));
    };
    let id = m.get("id").and_then(Value::as_str);
    let text_field = |name: &str| -> Result<String, Refusal> {
        match m.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(Refusal::new(
                id,
                "invalid_message",
                format!("\"{name}\" must be a non-empty string"),
            )),
        }
    };
    match m.get("op").and_then(Value::as_str) {
        Some("ping") => Ok(Op::Ping),
        Some("subscribe") => subscribe(m, text_field("id")?).map(Op::Subscribe),
        Some("unsubscribe") => Ok(Op::Unsubscribe {
            id: text_field("id")?,
        }),
        Some("publish") => Ok(Op::Publish {
            channel: text_field("channel")?,
            payload: m.get("payload").cloned().unwrap_or(Value::Null),
        }),
        Some("access_token") => Ok(Op::AccessToken(text_field("access_token")?)),
        Some(op) => Err(Refusal::new(
            id,
            "unknown_op",
            format!("unknown op \"{op}\""),
        )),
        None => Err(Refusal::new(
            id,
            "invalid_message",
            "a message needs an \"op\"",
        )),
    }
}

fn subscribe(m: &Map<String, Value>, id: String) -> Result<Subscribe, Refusal> {
    let refuse = |message: String| Refusal::new(Some(&id), "invalid_message", message);
    let since = match m.get("since") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            event::parse_lsn(s).ok_or_else(|| refuse(format!("\"since\" is not an LSN: {s}")))?,
        ),
        Some(_) => return Err(refuse("\"since\" must be an LSN string".into())),
    };
    let target = match (m.get("table"), m.get("channel")) {
        (Some(Value::String(t)), None) => {
            let events = match m.get("events") {
                None | Some(Value::Null) => Events::ALL,
                Some(Value::Array(list)) => {
                    let names: Option<Vec<&str>> = list.iter().map(Value::as_str).collect();
                    let names = names.ok_or_else(|| refuse("\"events\" lists names".into()))?;
                    Events::parse_list(names).map_err(refuse)?
                }
                Some(Value::String(s)) => Events::parse_list(s.split(',')).map_err(refuse)?,
                Some(_) => return Err(refuse("\"events\" must be a list".into())),
            };
            let filter = match m.get("filter") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(f)) => f.clone(),
                Some(_) => return Err(refuse("\"filter\" must be a string".into())),
            };
            let (schema, name) = split_table(t);
            Target::Table {
                schema,
                name,
                events,
                filter,
            }
        }
        (None, Some(Value::String(c))) if !c.is_empty() => Target::Channel(c.clone()),
        _ => {
            return Err(refuse(
                "a subscription names a \"table\" or a \"channel\" (a string)".into(),
            ))
        }
    };
    Ok(Subscribe { id, target, since })
}

/// `schema.table` or `table`. Names with dots are written quoted: `"my.schema"."t"`.
pub fn split_table(text: &str) -> (Option<String>, String) {
    let parts = split_quoted(text);
    match parts.as_slice() {
        [schema, name] => (Some(schema.clone()), name.clone()),
        _ => (None, parts.join(".")),
    }
}

fn split_quoted(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                part.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    parts
}

/// `{"op":"subscribed","id":…}`: the subscription is live.
pub fn subscribed(id: &str) -> String {
    json!({"op": "subscribed", "id": id}).to_string()
}

pub fn pong() -> String {
    r#"{"op":"pong"}"#.to_string()
}

/// `{"op":"error","id":…,"code":…,"message":…}`.
pub fn error(id: Option<&str>, code: &str, message: &str) -> String {
    json!({"op": "error", "id": id, "code": code, "message": message}).to_string()
}

/// `{"op":"ok"}`-style acknowledgement of an unsubscribe or a publish.
pub fn done(op: &str, id: Option<&str>) -> String {
    json!({"op": op, "id": id}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Refusal {
        parse_op(text).expect_err("refused")
    }

    #[test]
    fn table_subscriptions_read_events_filter_and_since() {
        let op = parse_op(
            r#"{"op":"subscribe","id":"s1","table":"public.todos","events":["insert","UPDATE"],"filter":"owner=eq.7","since":"0/16B3748"}"#,
        )
        .expect("parsed");
        let Op::Subscribe(s) = op else {
            panic!("not a subscribe: {op:?}")
        };
        assert_eq!(s.id, "s1");
        assert_eq!(s.since, Some(0x16B3748));
        let Target::Table {
            schema,
            name,
            events,
            filter,
        } = s.target
        else {
            panic!("not a table")
        };
        assert_eq!(
            (schema.as_deref(), name.as_str()),
            (Some("public"), "todos")
        );
        assert!(events.contains(Events::INSERT) && events.contains(Events::UPDATE));
        assert!(!events.contains(Events::DELETE));
        assert_eq!(filter, "owner=eq.7");
    }

    #[test]
    fn defaults_are_every_event_and_no_filter() {
        let Ok(Op::Subscribe(s)) = parse_op(r#"{"op":"subscribe","id":"a","table":"todos"}"#)
        else {
            panic!("parsed")
        };
        assert_eq!(
            s.target,
            Target::Table {
                schema: None,
                name: "todos".into(),
                events: Events::ALL,
                filter: String::new()
            }
        );
        let Ok(Op::Subscribe(c)) = parse_op(r#"{"op":"subscribe","id":"c","channel":"chat"}"#)
        else {
            panic!("parsed")
        };
        assert_eq!(c.target, Target::Channel("chat".into()));
    }

    #[test]
    fn quoted_names_may_hold_dots() {
        assert_eq!(
            split_table(r#""my.app"."to""dos""#),
            (Some("my.app".into()), "to\"dos".into())
        );
        assert_eq!(split_table("todos"), (None, "todos".into()));
    }

    #[test]
    fn other_ops_and_bad_messages() {
        assert_eq!(parse_op(r#"{"op":"ping"}"#), Ok(Op::Ping));
        assert_eq!(
            parse_op(r#"{"op":"unsubscribe","id":"s1"}"#),
            Ok(Op::Unsubscribe { id: "s1".into() })
        );
        assert_eq!(
            parse_op(r#"{"op":"publish","channel":"chat","payload":{"x":1}}"#),
            Ok(Op::Publish {
                channel: "chat".into(),
                payload: json!({"x": 1})
            })
        );
        assert_eq!(
            parse_op(r#"{"op":"access_token","access_token":"t"}"#),
            Ok(Op::AccessToken("t".into()))
        );
        assert_eq!(refused("{").code, "invalid_message");
        assert_eq!(refused("[1]").code, "invalid_message");
        let r = refused(r#"{"op":"dance","id":"x"}"#);
        assert_eq!(
            (r.code.as_str(), r.id.as_deref()),
            ("unknown_op", Some("x"))
        );
        assert_eq!(
            refused(r#"{"op":"subscribe","table":"t"}"#).code,
            "invalid_message"
        );
        let r = refused(r#"{"op":"subscribe","id":"s","table":"t","events":["TRUNCATE"]}"#);
        assert!(r.message.contains("TRUNCATE"), "{r:?}");
        assert_eq!(
            refused(r#"{"op":"subscribe","id":"s","table":"t","channel":"c"}"#).id,
            Some("s".into())
        );
    }

    #[test]
    fn server_messages() {
        let v: Value = serde_json::from_str(&error(Some("s1"), "c", "m")).expect("json");
        assert_eq!(v, json!({"op":"error","id":"s1","code":"c","message":"m"}));
        assert_eq!(subscribed("s1"), r#"{"id":"s1","op":"subscribed"}"#);
        assert_eq!(pong(), r#"{"op":"pong"}"#);
    }
}
