//! The protocol-neutral request: what HTTP/1.1 and HTTP/2 both decode into and the
//! application answers, whatever carried it.

/// One request. Owned, so the connection may drop or reuse its read buffer while the
/// application runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: String,
    /// Raw request-target, e.g. "/books?id=eq.1" (HTTP/2: the `:path` pseudo-header).
    pub target: String,
    /// Names lower-cased, values as sent (trimmed); order kept, duplicates kept. HTTP/2's
    /// `:authority` arrives as `host`.
    pub headers: Vec<(String, String)>,
    /// The whole body (HTTP/1.1: de-chunked).
    pub body: Vec<u8>,
}

impl Request {
    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The target's query string, without the `?` ("" when none).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// First header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the application answers a request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A whole response.
    Response(crate::response::Response),
    /// A 101 response: after it, the connection speaks WebSocket (HTTP/1.1 only).
    Upgrade(crate::response::Response),
    /// A response that may be sent only once the write-ahead log is flushed up to
    /// `flush_lsn`: the request committed without waiting for its own flush, so that one
    /// flush serves every commit of a pass of the event loop (group commit). Later responses
    /// on the same HTTP/1.1 connection wait behind it, in order.
    Pending {
        response: crate::response::Response,
        flush_lsn: u64,
    },
    /// An answer that comes later, through `Conn::complete(id, …)`: the request is out of the
    /// worker (forwarded to the primary) and the worker serves its other clients meanwhile.
    /// On HTTP/1.1 nothing more is answered on the connection until it comes, so later
    /// pipelined answers keep their order; on HTTP/2 the other streams go on. `id` is the
    /// application's, unique over the worker's life (a connection key may be reused).
    Deferred { id: u64 },
    /// A streamed response: `head`'s status and headers (its body, if any, is the first
    /// piece) now, pieces later through the connection (`Conn::push_stream(id, …)`) until
    /// `Conn::end_stream(id)`: chunks on HTTP/1.1 (nothing else is answered on the connection
    /// meanwhile), DATA frames on HTTP/2. `id` is the application's name for the stream.
    Stream {
        head: crate::response::Response,
        id: u64,
    },
}
