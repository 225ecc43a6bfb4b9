//! Encoders of streamed bodies (API.md "Realtime", HTTP streaming): the pieces a stream
//! response is made of, as bytes, for the connection to frame (HTTP/1.1 chunks here; HTTP/2
//! sends each piece as DATA frames itself).
//!
//! - NDJSON: one JSON event per line, or `fn(<json>);` per line with a JSONP callback;
//! - Server-Sent Events: `id:` (the event's LSN, so a reconnect can resume with
//!   `Last-Event-ID`), `data:` lines, a blank line; comments keep idle streams open.

/// `Content-Type` of an NDJSON stream.
pub const NDJSON: &str = "application/x-ndjson; charset=utf-8";
/// `Content-Type` of a JSONP-wrapped NDJSON stream.
pub const JSONP_LINES: &str = "application/javascript; charset=utf-8";
/// `Content-Type` of a Server-Sent Events stream.
pub const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// How a stream's events are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One JSON document per line.
    Ndjson,
    /// One `callback(<json>);` per line.
    JsonpLines(String),
    /// Server-Sent Events.
    EventStream,
}

impl Format {
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Ndjson => NDJSON,
            Format::JsonpLines(_) => JSONP_LINES,
            Format::EventStream => EVENT_STREAM,
        }
    }

    /// Appends one event: `json` is one JSON document (serde_json's output: no raw line
    /// breaks), `id` its position (an SSE `id:`, ignored by the line formats).
    pub fn event(&self, out: &mut Vec<u8>, id: Option<&str>, json: &str) {
        match self {
            Format::Ndjson => {
                out.extend_from_slice(json.as_bytes());
                out.push(b'\n');
            }
            Format::JsonpLines(callback) => {
                out.extend_from_slice(callback.as_bytes());
                out.push(b'(');
                out.extend_from_slice(json.as_bytes());
                out.extend_from_slice(b");\n");
            }
            Format::EventStream => sse_event(out, id, json),
        }
    }

    /// Appends what keeps an idle stream from being closed by proxies: an SSE comment, or an
    /// empty line for the line formats (NDJSON readers skip blank lines).
    pub fn keepalive(&self, out: &mut Vec<u8>) {
        match self {
            Format::EventStream => out.extend_from_slice(b": keepalive\n\n"),
            Format::Ndjson | Format::JsonpLines(_) => out.push(b'\n'),
        }
    }
}

/// One Server-Sent Event. A line break in `data` starts another `data:` line (the client
/// joins them with "\n"); CR and LF in `id` are dropped, as they would end the field.
fn sse_event(out: &mut Vec<u8>, id: Option<&str>, data: &str) {
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend(id.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends `piece` as one HTTP/1.1 chunk (RFC 9112 §7.1); an empty piece is skipped (it
/// would read as the last chunk).
pub fn chunk(out: &mut Vec<u8>, piece: &[u8]) {
    if piece.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
    out.extend_from_slice(piece);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, which ends a chunked body.
pub fn last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(f: &Format, id: Option<&str>, json: &str) -> String {
        let mut out = Vec::new();
        f.event(&mut out, id, json);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn ndjson_is_one_document_per_line() {
        assert_eq!(
            event(&Format::Ndjson, Some("0/1"), r#"{"a":1}"#),
            "{\"a\":1}\n"
        );
    }

    #[test]
    fn jsonp_lines_wrap_each_event() {
        let f = Format::JsonpLines("app.on".into());
        assert_eq!(event(&f, None, r#"{"a":1}"#), "app.on({\"a\":1});\n");
        assert_eq!(f.content_type(), JSONP_LINES);
    }

    #[test]
    fn server_sent_events_carry_the_id_and_split_data_lines() {
        let f = Format::EventStream;
        assert_eq!(
            event(&f, Some("0/16B3748"), r#"{"a":1}"#),
            "id: 0/16B3748\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            event(&f, Some("x\r\ny"), "one\r\ntwo\nthree"),
            "id: xy\ndata: one\ndata: two\ndata: three\n\n"
        );
        let mut k = Vec::new();
        f.keepalive(&mut k);
        assert_eq!(k, b": keepalive\n\n");
    }

    #[test]
    fn chunks_are_framed_in_hex_and_empty_pieces_skipped() {
        let mut out = Vec::new();
        chunk(&mut out, b"hello world, 26 bytes long");
        chunk(&mut out, b"");
        last_chunk(&mut out);
        assert_eq!(out, b"1a\r\nhello world, 26 bytes long\r\n0\r\n\r\n");
    }
}
