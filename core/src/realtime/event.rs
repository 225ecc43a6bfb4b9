//! Change events as the realtime worker hands them on: the decoding plugin's JSON
//! (src/decoding.rs), read once per http worker, with each row kept as its columns in order
//! and their values as raw JSON, so a subscriber's copy is a slice of it, not a re-encoding.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;

/// A row: its columns in table order, each value as the plugin wrote it.
#[derive(Debug, Default)]
pub struct Row(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        struct Columns;
        impl<'de> Visitor<'de> for Columns {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row as a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut columns = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    columns.push(entry);
                }
                Ok(Row(columns))
            }
        }
        d.deserialize_map(Columns)
    }
}

impl Row {
    /// The row as a JSON object, only with `columns` when given (the subscriber's role may
    /// read no others).
    pub fn push_json(&self, out: &mut String, columns: Option<&[String]>) {
        out.push('{');
        let mut first = true;
        for (name, value) in &self.0 {
            if columns.is_some_and(|c| !c.iter().any(|n| n == name)) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            push_string(out, name);
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
    }

    #[cfg(test)]
    pub fn get(&self, column: &str) -> Option<&RawValue> {
        self.0.iter().find(|(n, _)| n == column).map(|(_, v)| &**v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Kind {
    #[serde(rename = "INSERT")]
    Insert,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "MESSAGE")]
    Message,
    #[serde(rename = "COMMIT")]
    Commit,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Insert => "INSERT",
            Kind::Update => "UPDATE",
            Kind::Delete => "DELETE",
            Kind::Message => "MESSAGE",
            Kind::Commit => "COMMIT",
        }
    }

    /// The subscription event set this kind belongs to.
    pub fn events(self) -> super::Events {
        match self {
            Kind::Insert => super::Events::INSERT,
            Kind::Update => super::Events::UPDATE,
            Kind::Delete => super::Events::DELETE,
            Kind::Message | Kind::Commit => super::Events(0),
        }
    }
}

/// What the plugin writes for one event.
#[derive(Debug, Deserialize)]
struct Decoded {
    #[serde(rename = "type")]
    kind: Kind,
    lsn: String,
    #[serde(default)]
    schema: String,
    #[serde(default)]
    table: String,
    #[serde(default)]
    record: Option<Row>,
    #[serde(default)]
    old_record: Option<Row>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    content: Option<String>,
}

/// A `pg_rest.publish` message's content.
#[derive(Debug, Deserialize)]
struct Published {
    channel: String,
    payload: Box<RawValue>,
}

/// The prefix `pg_rest.publish` emits its messages with.
pub const MESSAGE_PREFIX: &str = "pg_rest";

/// One change or channel message.
#[derive(Debug)]
pub struct Event {
    pub kind: Kind,
    pub lsn: u64,
    /// As PostgreSQL prints it (`0/16B3748`).
    pub lsn_text: String,
    pub schema: String,
    pub table: String,
    pub record: Option<Row>,
    pub old_record: Option<Row>,
    /// A message's channel and payload.
    pub channel: String,
    pub payload: Option<Box<RawValue>>,
}

impl Event {
    /// Reads one plugin event; None for what realtime does not deliver (other prefixes'
    /// messages, malformed lines).
    pub fn parse(json: &str) -> Option<Event> {
        let d: Decoded = serde_json::from_str(json).ok()?;
        let lsn = parse_lsn(&d.lsn)?;
        let (channel, payload) = match d.kind {
            Kind::Message if d.prefix == MESSAGE_PREFIX => {
                let p: Published = serde_json::from_str(d.content.as_deref()?).ok()?;
                (p.channel, Some(p.payload))
            }
            Kind::Message => return None,
            _ => (String::new(), None),
        };
        Some(Event {
            kind: d.kind,
            lsn,
            lsn_text: d.lsn,
            schema: d.schema,
            table: d.table,
            record: d.record,
            old_record: d.old_record,
            channel,
            payload,
        })
    }

    /// The row a subscription's filter and visibility are judged on: the new row, or the
    /// old one of a delete.
    pub fn row(&self) -> Option<&Row> {
        match self.kind {
            Kind::Delete => self.old_record.as_ref(),
            _ => self.record.as_ref(),
        }
    }

    /// The event as a client gets it. WebSocket frames carry `op` and the subscription
    /// `id`; stream lines (`id` None) are the bare event. `columns` limits the rows to what
    /// the subscriber's role may read.
    pub fn to_client_json(&self, id: Option<&str>, columns: Option<&[String]>) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        if let Some(id) = id {
            out.push_str(if self.kind == Kind::Message {
                r#""op":"message","id":"#
            } else {
                r#""op":"change","id":"#
            });
            push_string(&mut out, id);
            out.push(',');
        }
        if self.kind == Kind::Message {
            out.push_str(r#""channel":"#);
            push_string(&mut out, &self.channel);
            out.push_str(r#","lsn":"#);
            push_string(&mut out, &self.lsn_text);
            out.push_str(r#","payload":"#);
            out.push_str(self.payload.as_ref().map_or("null", |p| p.get()));
            out.push('}');
            return out;
        }
        out.push_str(r#""lsn":"#);
        push_string(&mut out, &self.lsn_text);
        out.push_str(r#","table":"#);
        push_string(&mut out, &format!("{}.{}", self.schema, self.table));
        out.push_str(r#","type":""#);
        out.push_str(self.kind.as_str());
        out.push_str(r#"","record":"#);
        push_row(&mut out, self.record.as_ref(), columns);
        out.push_str(r#","old_record":"#);
        push_row(&mut out, self.old_record.as_ref(), columns);
        out.push('}');
        out
    }
}

fn push_row(out: &mut String, row: Option<&Row>, columns: Option<&[String]>) {
    match row {
        Some(r) => r.push_json(out, columns),
        None => out.push_str("null"),
    }
}

fn push_string(out: &mut String, s: &str) {
    // Writing a string to a String cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// `16/B374D848` → its 64-bit position; None for anything else.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// A position as PostgreSQL prints it.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_round_trip() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(parse_lsn("1/xyz"), None);
    }

    #[test]
    fn changes_keep_column_order_and_raw_values() {
        let e = Event::parse(
            r#"{"type":"UPDATE","lsn":"0/155F310","xid":7,"schema":"public","table":"todos","record":{"zeta":1.50,"alpha":{"b":[1, 2]},"t":"x\"y"},"old_record":{"zeta":1}}"#,
        )
        .expect("parsed");
        assert_eq!(e.kind, Kind::Update);
        assert_eq!(e.lsn, 0x155F310);
        assert_eq!(
            e.to_client_json(Some("s1"), None),
            r#"{"op":"change","id":"s1","lsn":"0/155F310","table":"public.todos","type":"UPDATE","record":{"zeta":1.50,"alpha":{"b":[1, 2]},"t":"x\"y"},"old_record":{"zeta":1}}"#
        );
        let only = ["t".to_string()];
        assert_eq!(
            e.to_client_json(None, Some(&only)),
            r#"{"lsn":"0/155F310","table":"public.todos","type":"UPDATE","record":{"t":"x\"y"},"old_record":{}}"#
        );
        assert_eq!(
            e.row().and_then(|r| r.get("zeta")).map(|v| v.get()),
            Some("1.50")
        );
    }

    #[test]
    fn deletes_are_judged_on_the_old_row() {
        let e = Event::parse(
            r#"{"type":"DELETE","lsn":"0/1","xid":7,"schema":"s","table":"t","record":null,"old_record":{"id":3}}"#,
        )
        .expect("parsed");
        assert_eq!(
            e.row().and_then(|r| r.get("id")).map(|v| v.get()),
            Some("3")
        );
        assert!(e
            .to_client_json(None, None)
            .contains(r#""record":null,"old_record":{"id":3}"#));
    }

    #[test]
    fn published_messages_carry_channel_and_payload() {
        let e = Event::parse(
            r#"{"type":"MESSAGE","lsn":"0/2A","transactional":true,"prefix":"pg_rest","content":"{\"channel\":\"chat\",\"payload\":{\"x\": 1}}"}"#,
        )
        .expect("parsed");
        assert_eq!(
            e.to_client_json(Some("c1"), None),
            r#"{"op":"message","id":"c1","channel":"chat","lsn":"0/2A","payload":{"x": 1}}"#
        );
        // Another extension's messages are not realtime's.
        assert!(Event::parse(
            r#"{"type":"MESSAGE","lsn":"0/2A","transactional":true,"prefix":"other","content":"x"}"#
        )
        .is_none());
        assert!(Event::parse("garbage").is_none());
    }
}
