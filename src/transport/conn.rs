//! One client connection: a transport (plain TCP or TLS) under a protocol (HTTP/1.1;
//! HTTP/2 once the client's preface says so; WebSocket after a 101), and what the event loop
//! keeps about it. The
//! protocol layers are driven through [`Conn::drive`]; they meet the application only through
//! [`Handler`], so they are tested over socket pairs with a handler of the test's own.

use crate::transport::http1::Http1;
use crate::transport::http2::Http2;
use crate::transport::io::{Shared, Transport};
use crate::transport::websocket::WebSocket;
use mio::Interest;
use pg_rest_core::http1::Limits;
use pg_rest_core::request::{Reply, Request};
use pg_rest_core::response::Response;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Bytes read per `read` call: the size of the event loop's shared read buffer.
pub const READ_CHUNK: usize = 16 * 1024;

/// What answers requests: the application (`App`), or a test's stand-in.
pub trait Handler {
    /// Answers one request. Never panics and never raises: failures become error responses.
    fn handle(&mut self, request: &Request) -> Reply;

    /// Answers one WebSocket text message (the realtime protocol's): the reply to send now,
    /// if any (events follow later, through `Conn::push_message`).
    fn message(&mut self, text: &str) -> Option<String>;
}

/// What one `drive` call moved, for the worker's counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests: u64,
    pub errors: u64,
}

impl Traffic {
    fn add(&mut self, other: Traffic) {
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.requests += other.requests;
        self.errors += other.errors;
    }
}

/// Where a connection is in its life, whatever its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading requests and answering them.
    Open,
    /// The last response is queued; close once it is written.
    CloseAfterFlush,
    /// Write side shut; discarding input until EOF or the deadline.
    Lingering(Instant),
    /// Done: the event loop drops the connection.
    Closed,
}

/// What one `drive` call did.
#[derive(Debug, Default)]
pub struct Driven {
    pub traffic: Traffic,
    /// Stopped for the budget, or a protocol crate asked to be polled again: drive again
    /// without waiting for an edge.
    pub yielded: bool,
    /// HTTP/1.1 hands the connection to another protocol (see [`Switch`]).
    pub switch: Option<Switch>,
}

/// Another protocol takes the connection over, with the bytes already read that belong to it.
#[derive(Debug)]
pub enum Switch {
    /// The client sent HTTP/2's preface (the bytes start with it).
    Http2(Vec<u8>),
    /// A 101 was sent and written; what the client sent after its request.
    WebSocket(Vec<u8>),
}

// Every connection starts as HTTP/1.1 and most stay so: inline, it costs no allocation per
// connection (the others are boxed as they are few and large).
#[allow(clippy::large_enum_variant)]
enum Protocol {
    Http1(Http1),
    Http2(Box<Http2>),
    WebSocket(Box<WebSocket>),
}

pub struct Conn {
    protocol: Protocol,
    io: Shared,
    /// Accepted beyond max_connections: answered 503 and not counted as open.
    pub refused: bool,
    /// The interest currently registered with the poller.
    pub interest: Interest,
    /// The last `drive` stopped for its budget: drive again without waiting for an edge.
    pub yielded: bool,
    /// In the event loop's ready queue.
    pub queued: bool,
    /// In the event loop's list of connections waiting for a WAL flush.
    pub awaiting: bool,
}

impl Conn {
    pub fn new(transport: Transport, now: Instant) -> Conn {
        Conn::over(Shared::new(transport), now)
    }

    /// A connection over a transport already shared (the tests build theirs on socket pairs).
    pub(crate) fn over(io: Shared, now: Instant) -> Conn {
        Conn {
            protocol: Protocol::Http1(Http1::new(io.clone(), now)),
            io,
            refused: false,
            interest: Interest::READABLE,
            yielded: false,
            queued: false,
            awaiting: false,
        }
    }

    /// The socket, for the poller.
    pub fn raw_fd(&self) -> RawFd {
        self.io.raw_fd()
    }

    /// A connection beyond `pg_rest.max_connections`: one polite 503, then close.
    pub fn refuse(&mut self) {
        if let Protocol::Http1(h) = &mut self.protocol {
            h.refuse();
        }
        self.refused = true;
    }

    pub fn phase(&self) -> Phase {
        match &self.protocol {
            Protocol::Http1(h) => h.phase,
            Protocol::Http2(h) => h.phase,
            Protocol::WebSocket(w) => w.phase,
        }
    }

    /// Queues a piece of the streamed response `id` (`Reply::Stream`); false when the
    /// connection has no such stream, or when its output would pass the stream buffer cap (the
    /// stream, on HTTP/1.1 the connection, is then dropped). Written by the next `drive`.
    pub fn push_stream(&mut self, id: u64, piece: &[u8]) -> bool {
        match &mut self.protocol {
            Protocol::Http1(h) => h.push_stream(id, piece),
            Protocol::Http2(h) => h.push_stream(id, piece),
            Protocol::WebSocket(_) => false,
        }
    }

    /// Queues a WebSocket text frame; false when the connection is no (open) WebSocket.
    pub fn push_message(&mut self, text: String, now: Instant) -> bool {
        match &mut self.protocol {
            Protocol::WebSocket(w) => w.push(text, now),
            _ => false,
        }
    }

    /// Ends the streamed response `id`; false when the connection has no such stream.
    pub fn end_stream(&mut self, id: u64) -> bool {
        match &mut self.protocol {
            Protocol::Http1(h) => h.end_stream(id),
            Protocol::Http2(h) => h.end_stream(id),
            Protocol::WebSocket(_) => false,
        }
    }

    /// The deferred answer `id` (`Reply::Deferred`) has come; written by the next `drive`.
    /// Its request is counted in the returned traffic; nothing when the connection awaits no
    /// such answer (it was closed, and its key given to another).
    pub fn complete(&mut self, id: u64, response: Response) -> Traffic {
        let mut traffic = Traffic::default();
        match &mut self.protocol {
            Protocol::Http1(h) => h.complete(id, response, &mut traffic),
            Protocol::Http2(h) => h.complete(id, response, &mut traffic),
            Protocol::WebSocket(_) => false,
        };
        traffic
    }

    /// The poller saw the peer close (or the socket fail): reads go on until `WouldBlock`.
    pub fn peer_closing(&mut self) {
        self.io.peer_closing();
    }

    /// Drops the connection at the next update (a bug was caught while driving it).
    pub fn close(&mut self) {
        match &mut self.protocol {
            Protocol::Http1(h) => h.phase = Phase::Closed,
            Protocol::Http2(h) => h.phase = Phase::Closed,
            Protocol::WebSocket(w) => w.phase = Phase::Closed,
        }
    }

    /// Makes the progress the socket and the budget allow (see each protocol's `drive`).
    /// `scratch` is the event loop's read buffer, shared by all connections.
    pub fn drive(
        &mut self,
        app: &mut impl Handler,
        limits: &Limits,
        now: Instant,
        scratch: &mut [u8],
    ) -> Traffic {
        self.io.begin_drive();
        // TLS records left from the last call go first (a WRITABLE edge may be for them).
        self.io.flush_transport();
        let mut driven = self.drive_protocol(app, limits, now, scratch);
        if let Some(switch) = driven.switch.take() {
            self.protocol = match switch {
                Switch::Http2(prefix) => {
                    Protocol::Http2(Box::new(Http2::new(self.io.clone(), prefix, limits, now)))
                }
                Switch::WebSocket(leftover) => {
                    let ws = WebSocket::new(self.io.clone(), leftover, limits.max_body_size, now);
                    Protocol::WebSocket(Box::new(ws))
                }
            };
            // The new protocol starts on what was already read.
            let more = self.drive_protocol(app, limits, now, scratch);
            driven.traffic.add(more.traffic);
            driven.yielded = more.yielded;
        }
        self.yielded = driven.yielded;
        self.io.flush_transport();
        driven.traffic
    }

    fn drive_protocol(
        &mut self,
        app: &mut impl Handler,
        limits: &Limits,
        now: Instant,
        scratch: &mut [u8],
    ) -> Driven {
        match &mut self.protocol {
            Protocol::Http1(h) => h.drive(app, limits, now, scratch),
            Protocol::Http2(h) => h.drive(app, limits, now),
            Protocol::WebSocket(w) => w.drive(app, now),
        }
    }

    /// The poller interest this state needs: both layers may have bytes waiting.
    pub fn wanted_interest(&self) -> Interest {
        let protocol_waits = match &self.protocol {
            Protocol::Http1(h) => h.wants_write(),
            Protocol::Http2(h) => h.wants_write(),
            Protocol::WebSocket(w) => w.wants_write(),
        };
        if protocol_waits || self.io.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Applies idle, request and linger deadlines.
    pub fn check_timeouts(&mut self, now: Instant, idle: Duration, request: Duration) -> Traffic {
        match &mut self.protocol {
            Protocol::Http1(h) => h.check_timeouts(now, idle, request),
            Protocol::Http2(h) => {
                h.check_timeouts(now, idle, request);
                Traffic::default()
            }
            Protocol::WebSocket(w) => {
                w.check_timeouts(now, idle);
                Traffic::default()
            }
        }
    }

    /// Server shutdown begins: HTTP/2 says GOAWAY, WebSocket closes with 1001 (HTTP/1.1
    /// connections close when quiet).
    pub fn shut_down(&mut self, now: Instant) {
        match &mut self.protocol {
            Protocol::Http1(_) => {}
            Protocol::Http2(h) => h.shut_down(),
            Protocol::WebSocket(w) => w.shut_down(now),
        }
    }

    /// The highest WAL position a held response (`Reply::Pending`) waits for, if any.
    pub fn awaits_flush(&self) -> Option<u64> {
        match &self.protocol {
            Protocol::Http1(h) => h.awaits_flush(),
            Protocol::Http2(h) => h.awaits_flush(),
            Protocol::WebSocket(_) => None,
        }
    }

    /// The WAL is flushed up to `flushed`: responses waiting for that may be written (by the
    /// next `drive`).
    pub fn release(&mut self, flushed: u64) {
        match &mut self.protocol {
            Protocol::Http1(h) => h.release(flushed),
            Protocol::Http2(h) => h.release(flushed),
            Protocol::WebSocket(_) => {}
        }
    }

    /// Nothing in flight either way: safe to close at shutdown.
    pub fn is_quiet(&self) -> bool {
        !self.io.wants_write()
            && match &self.protocol {
                Protocol::Http1(h) => h.is_quiet(),
                Protocol::Http2(h) => h.is_quiet(),
                Protocol::WebSocket(w) => w.is_quiet(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_support::{socket_pair, LIMITS};
    use pg_rest_core::response::Response;
    use std::io::{Read, Write};

    /// POSTs commit at LSN 100 and wait for its flush; anything else is answered at once.
    struct Committing;

    impl Handler for Committing {
        fn handle(&mut self, r: &Request) -> Reply {
            let response = Response {
                status: 200,
                body: format!("{} {}", r.method, r.target).into_bytes(),
                ..Default::default()
            };
            if r.target == "/deferred" {
                Reply::Deferred { id: 9 }
            } else if r.target == "/ws" {
                Reply::Upgrade(Response {
                    status: 101,
                    ..Default::default()
                })
            } else if r.method == "POST" {
                Reply::Pending {
                    response,
                    flush_lsn: 100,
                }
            } else if r.target == "/stream" {
                Reply::Stream {
                    head: Response {
                        status: 200,
                        body: b"first\n".to_vec(),
                        ..Default::default()
                    },
                    id: 7,
                }
            } else {
                Reply::Response(response)
            }
        }

        fn message(&mut self, text: &str) -> Option<String> {
            Some(text.to_string())
        }
    }

    fn pair() -> (Conn, std::net::TcpStream) {
        let (io, client) = socket_pair();
        (Conn::over(io, Instant::now()), client)
    }

    fn drive(conn: &mut Conn) {
        let mut scratch = vec![0u8; READ_CHUNK];
        for _ in 0..5 {
            conn.drive(&mut Committing, &LIMITS, Instant::now(), &mut scratch);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn received(client: &mut std::net::TcpStream) -> String {
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut buf = vec![0u8; 8192];
        match client.read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(_) => String::new(),
        }
    }

    #[test]
    fn a_websocket_failed_by_its_client_closes_at_the_clients_eof() {
        for frame in [&b"\x83\x80\x01\x02\x03\x04"[..], b"\x81\x02hi"] {
            let (mut conn, mut client) = pair();
            client
                .write_all(b"GET /ws HTTP/1.1\r\n\r\n")
                .expect("write");
            drive(&mut conn);
            assert!(received(&mut client).starts_with("HTTP/1.1 101"));
            client.write_all(frame).expect("write");
            client
                .shutdown(std::net::Shutdown::Write)
                .expect("shutdown");
            drive(&mut conn);
            assert_eq!(conn.phase(), Phase::Closed, "after {frame:?}");
            // It was told why first: a close frame, 1002 (protocol error).
            let mut close = [0u8; 4];
            client.read_exact(&mut close).expect("the close frame");
            assert_eq!((close[0], &close[2..]), (0x88, &1002u16.to_be_bytes()[..]));
        }
    }

    #[test]
    fn a_pending_answer_holds_later_pipelined_ones_until_released() {
        let (mut conn, mut client) = pair();
        client
            .write_all(b"GET /a HTTP/1.1\r\n\r\nPOST /w HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
            .expect("write");
        drive(&mut conn);
        let first = received(&mut client);
        assert!(
            first.ends_with("GET /a"),
            "only the first answer: {first:?}"
        );
        assert_eq!(conn.awaits_flush(), Some(100));
        // Not flushed far enough: still held.
        conn.release(99);
        drive(&mut conn);
        assert_eq!(received(&mut client), "");
        conn.release(100);
        assert_eq!(conn.awaits_flush(), None);
        drive(&mut conn);
        let rest = received(&mut client);
        let post = rest.find("POST /w").expect("the POST's answer");
        let get = rest.find("GET /b").expect("the GET's answer");
        assert!(post < get, "in order: {rest:?}");
    }

    #[test]
    fn a_deferred_answer_holds_later_pipelined_ones_until_it_comes() {
        let (mut conn, mut client) = pair();
        client
            .write_all(b"GET /deferred HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n")
            .expect("write");
        drive(&mut conn);
        assert_eq!(received(&mut client), "");
        assert!(!conn.is_quiet(), "an answer is awaited");
        let wrong = Response::default();
        assert_eq!(conn.complete(8, wrong).requests, 0, "not this connection's");
        let later = Response {
            status: 503,
            body: b"later".to_vec(),
            ..Default::default()
        };
        let traffic = conn.complete(9, later);
        assert_eq!((traffic.requests, traffic.errors), (1, 1));
        drive(&mut conn);
        let rest = received(&mut client);
        let deferred = rest.find("503").expect("the deferred answer");
        let next = rest.find("200 OK").expect("the HEAD's answer");
        assert!(deferred < next, "in order: {rest:?}");
        assert!(rest.contains("\r\n\r\nlater"), "{rest:?}");
    }

    #[test]
    fn a_stream_sends_chunks_as_pushed_and_then_the_pipelined_answers() {
        let (mut conn, mut client) = pair();
        client
            .write_all(b"GET /stream HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
            .expect("write");
        drive(&mut conn);
        let head = received(&mut client);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
        assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head:?}");
        assert!(!head.contains("Content-Length"), "{head:?}");
        assert!(head.ends_with("\r\n\r\n6\r\nfirst\n\r\n"), "{head:?}");
        assert!(conn.push_stream(7, b"more\n"));
        assert!(!conn.push_stream(8, b"not this one"));
        drive(&mut conn);
        assert_eq!(received(&mut client), "5\r\nmore\n\r\n");
        assert!(conn.end_stream(7));
        assert!(!conn.push_stream(7, b"after the end"));
        drive(&mut conn);
        let rest = received(&mut client);
        assert!(rest.starts_with("0\r\n\r\nHTTP/1.1 200 OK\r\n"), "{rest:?}");
        assert!(rest.ends_with("GET /after"), "{rest:?}");
    }

    #[test]
    fn a_stream_whose_client_stops_reading_is_dropped_at_the_cap() {
        let (mut conn, mut client) = pair();
        client
            .write_all(b"GET /stream HTTP/1.1\r\n\r\n")
            .expect("write");
        drive(&mut conn);
        let piece = vec![b'x'; 64 * 1024];
        let mut pushed = 0;
        while conn.push_stream(7, &piece) {
            pushed += piece.len();
            drive(&mut conn);
            assert!(pushed < 64 << 20, "never capped");
        }
        // What the kernel buffers took, plus at most the cap in the connection.
        assert!(pushed >= crate::transport::http1::STREAM_BUFFER_CAP - piece.len());
        assert_eq!(conn.phase(), Phase::Closed);
        assert!(!conn.push_stream(7, b"x"));
    }
}
