//! The line protocol on the local stream socket between the realtime worker and each http
//! worker (docs/realtime.md). One line per message, `\n`-terminated:
//!
//! - realtime → http: `E<event JSON>` (a decoded change or message); `R<token> <event JSON>`
//!   (an event the subscription asked for with `token` missed: it resumes); `A<token> <lsn>`
//!   or `A<token> <lsn> gap`, the answer to a subscription request: every event after this
//!   line in the stream committed after `lsn`, and events of the requested table are in it
//!   from here on. The http worker makes the subscription live at this line, so "subscribed"
//!   never precedes a gap; `gap` says the missed events asked for are no longer kept.
//! - http → realtime: `S<token> <since> ["schema","table"]` (a table's events are wanted;
//!   the name is JSON so any name fits on the line) or `S<token> <since>` (a channel
//!   subscription), `since` the position to resume after, 0 for none; `U["schema","table"]`
//!   or `U` (one table or channel subscription fewer).

/// A line from the realtime worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Down<'a> {
    Event(&'a str),
    Replay { token: u64, json: &'a str },
    Ack { token: u64, lsn: u64, gap: bool },
}

pub fn parse_down(line: &str) -> Option<Down<'_>> {
    if let Some(json) = line.strip_prefix('E') {
        return Some(Down::Event(json));
    }
    if let Some(rest) = line.strip_prefix('R') {
        let (token, json) = rest.split_once(' ')?;
        return Some(Down::Replay {
            token: token.parse().ok()?,
            json,
        });
    }
    let mut fields = line.strip_prefix('A')?.split(' ');
    let token = fields.next()?.parse().ok()?;
    let lsn = fields.next()?.parse().ok()?;
    let gap = match fields.next() {
        None => false,
        Some("gap") => true,
        Some(_) => return None,
    };
    Some(Down::Ack { token, lsn, gap })
}

pub fn event_line(out: &mut Vec<u8>, json: &str) {
    out.push(b'E');
    out.extend_from_slice(json.as_bytes());
    out.push(b'\n');
}

pub fn replay_line(out: &mut Vec<u8>, token: u64, json: &str) {
    out.extend_from_slice(format!("R{token} ").as_bytes());
    out.extend_from_slice(json.as_bytes());
    out.push(b'\n');
}

pub fn ack_line(out: &mut Vec<u8>, token: u64, lsn: u64, gap: bool) {
    let gap = if gap { " gap" } else { "" };
    out.extend_from_slice(format!("A{token} {lsn}{gap}\n").as_bytes());
}

/// A table, as (schema, name).
pub type Table = (String, String);

fn table_json(t: &Table) -> String {
    serde_json::json!([t.0, t.1]).to_string()
}

/// A line from an http worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Up {
    Subscribe {
        token: u64,
        since: Option<u64>,
        table: Option<Table>,
    },
    Unsubscribe {
        table: Option<Table>,
    },
}

impl Up {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Up::Subscribe {
                token,
                since,
                table,
            } => {
                let since = since.unwrap_or(0);
                out.extend_from_slice(format!("S{token} {since}").as_bytes());
                if let Some(t) = table {
                    out.push(b' ');
                    out.extend_from_slice(table_json(t).as_bytes());
                }
            }
            Up::Unsubscribe { table } => {
                out.push(b'U');
                if let Some(t) = table {
                    out.extend_from_slice(table_json(t).as_bytes());
                }
            }
        }
        out.push(b'\n');
    }
}

fn parse_table(json: &str) -> Option<Table> {
    let (schema, name): (String, String) = serde_json::from_str(json).ok()?;
    Some((schema, name))
}

pub fn parse_up(line: &str) -> Option<Up> {
    if let Some(rest) = line.strip_prefix('S') {
        let mut fields = rest.splitn(3, ' ');
        let token = fields.next()?.parse().ok()?;
        let since = fields.next()?.parse::<u64>().ok()?;
        let table = match fields.next() {
            None => None,
            Some(t) => Some(parse_table(t)?),
        };
        return Some(Up::Subscribe {
            token,
            since: (since != 0).then_some(since),
            table,
        });
    }
    let table = line.strip_prefix('U')?;
    Some(Up::Unsubscribe {
        table: match table {
            "" => None,
            t => Some(parse_table(t)?),
        },
    })
}

/// Bytes read from the socket, cut into lines.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    /// Where the unread part starts.
    start: usize,
}

impl Lines {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole line, without its `\n`; lines that are not UTF-8 are skipped.
    pub fn next_line(&mut self) -> Option<&str> {
        loop {
            let rest = &self.buf[self.start..];
            let end = rest.iter().position(|b| *b == b'\n')?;
            let from = self.start;
            self.start += end + 1;
            if let Ok(line) = std::str::from_utf8(&self.buf[from..from + end]) {
                return Some(line);
            }
        }
    }

    /// Whether an unread whole line satisfies `pred` (nothing is taken).
    pub fn any_line(&self, pred: impl Fn(&str) -> bool) -> bool {
        let rest = &self.buf[self.start..];
        let complete = rest
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(&rest[..0], |end| &rest[..end]);
        complete
            .split(|b| *b == b'\n')
            .any(|l| std::str::from_utf8(l).is_ok_and(&pred))
    }

    /// Drops what was read, keeping a partial last line.
    pub fn compact(&mut self) {
        self.buf.drain(..self.start);
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_lines_round_trip() {
        let mut out = Vec::new();
        event_line(&mut out, r#"{"type":"INSERT"}"#);
        replay_line(&mut out, 3, r#"{"type":"UPDATE"}"#);
        ack_line(&mut out, 7, 1234, false);
        ack_line(&mut out, 8, 99, true);
        let mut lines = Lines::default();
        lines.push(&out[..5]);
        assert_eq!(lines.next_line(), None);
        lines.push(&out[5..]);
        assert!(lines.any_line(|l| l.starts_with("A7 ")));
        assert!(!lines.any_line(|l| l.starts_with("A9 ")));
        let mut next = || {
            lines
                .next_line()
                .and_then(parse_down)
                .map(|d| format!("{d:?}"))
        };
        let expected = [
            Down::Event(r#"{"type":"INSERT"}"#),
            Down::Replay {
                token: 3,
                json: r#"{"type":"UPDATE"}"#,
            },
            Down::Ack {
                token: 7,
                lsn: 1234,
                gap: false,
            },
            Down::Ack {
                token: 8,
                lsn: 99,
                gap: true,
            },
        ];
        for e in expected {
            assert_eq!(next(), Some(format!("{e:?}")));
        }
        assert_eq!(next(), None);
        lines.compact();
        assert_eq!(lines.next_line(), None);
        assert_eq!(parse_down("A1"), None);
        assert_eq!(parse_down("A1 2 what"), None);
    }

    #[test]
    fn up_lines_round_trip_any_name() {
        let table = ("my schema".to_string(), "to\"dos\n".to_string());
        for up in [
            Up::Subscribe {
                token: 3,
                since: Some(77),
                table: Some(table.clone()),
            },
            Up::Subscribe {
                token: 4,
                since: None,
                table: None,
            },
            Up::Unsubscribe { table: Some(table) },
            Up::Unsubscribe { table: None },
        ] {
            let mut out = Vec::new();
            up.encode(&mut out);
            assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
            let line = std::str::from_utf8(&out[..out.len() - 1]).expect("utf-8");
            assert_eq!(parse_up(line), Some(up));
        }
        assert_eq!(parse_up("X"), None);
    }
}
