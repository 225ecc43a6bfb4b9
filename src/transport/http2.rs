//! The HTTP/2 side of a connection, driven by the `h2` crate from the worker's mio loop (no
//! async runtime): `h2`'s futures are polled with a waker that only raises a flag, and the
//! transport answers `Pending` on `WouldBlock`, so an epoll edge (or the ready queue, when the
//! flag was raised) resumes it.
//!
//! Streams are many, requests stay one transaction each: a request is handed to the
//! application once its body is complete, in the order requests complete, and its response is
//! queued on its stream. `h2` keeps the body as one `Bytes` (no copy) and sends it as the
//! peer's flow-control windows open, so a large response is held once, not per frame.

use crate::transport::conn::{Driven, Handler, Phase, Traffic};
use crate::transport::http1::STREAM_BUFFER_CAP;
use crate::transport::io::{Counters, Shared};
use bytes::Bytes;
use h2::server::{Connection, Handshake, SendResponse};
use h2::{RecvStream, SendStream};
use pg_rest_core::error::ApiError;
use pg_rest_core::http1::Limits;
use pg_rest_core::request::{Reply, Request};
use pg_rest_core::response::{error_response, Response};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// The connection's receive window: room for a few full-size uploads in flight.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE).
const STREAM_WINDOW: u32 = 1 << 20;
/// Requests one `drive` call may answer before the other connections get their turn.
const REQUESTS_PER_DRIVE: usize = 64;
/// Rounds of polling one `drive` call may make.
const ROUNDS_PER_DRIVE: usize = 16;
/// Headers HTTP/2 forbids (RFC 9113 §8.2.2): connection-specific, HTTP/1.1 only.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

pub struct Http2 {
    state: State,
    io: Counters,
    exchanges: VecDeque<Exchange>,
    /// Answered streams whose responses wait for a WAL flush (`Reply::Pending`).
    held: Vec<Held>,
    /// Streamed responses being sent (`Reply::Stream`).
    streams: Vec<OpenStream>,
    /// Streams whose answers come later (`Reply::Deferred`).
    deferred: Vec<Deferred>,
    waker: Waker,
    woken: Arc<Flag>,
    pub phase: Phase,
    pub last_active: Instant,
    /// GOAWAY was asked for (sent as soon as the handshake is done).
    shutting_down: bool,
}

enum State {
    Handshaking(Handshake<H2Io, Bytes>),
    Serving(Connection<H2Io, Bytes>),
    Done,
}

/// A response waiting for the WAL to be flushed up to `lsn`.
struct Held {
    respond: SendResponse<Bytes>,
    response: Response,
    head_only: bool,
    lsn: u64,
}

/// A stream whose answer comes later, through [`Http2::complete`].
struct Deferred {
    id: u64,
    respond: SendResponse<Bytes>,
    head_only: bool,
}

/// A streamed response: pieces wait here until the peer's flow-control windows take them,
/// all streams of the connection together within `STREAM_BUFFER_CAP`.
struct OpenStream {
    id: u64,
    send: SendStream<Bytes>,
    queued: VecDeque<Bytes>,
    queued_len: usize,
    /// Ended by the application: END_STREAM once the queue is sent.
    ending: bool,
}

impl OpenStream {
    fn queue(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.queued_len += piece.len();
        self.queued.push_back(piece);
        self.send.reserve_capacity(self.queued_len);
    }

    /// Sends what the windows allow. Returns whether anything moved and whether the stream is
    /// still open (not once ended and sent, or reset by the peer).
    fn flush(&mut self, cx: &mut Context<'_>) -> (bool, bool) {
        let mut progressed = false;
        loop {
            let Some(front) = self.queued.front_mut() else {
                if self.ending {
                    let _ = self.send.send_data(Bytes::new(), true);
                    return (true, false);
                }
                return (progressed, true);
            };
            match self.send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(n))) if n > 0 => {
                    let piece = front.split_to(n.min(front.len()));
                    self.queued_len -= piece.len();
                    if front.is_empty() {
                        self.queued.pop_front();
                    }
                    if self.send.send_data(piece, false).is_err() {
                        return (true, false);
                    }
                    self.send.reserve_capacity(self.queued_len);
                    progressed = true;
                }
                Poll::Ready(Some(Ok(_))) | Poll::Pending => return (progressed, true),
                Poll::Ready(Some(Err(_)) | None) => return (true, false),
            }
        }
    }
}

/// One request and its stream.
struct Exchange {
    request: Request,
    /// None once the body is complete.
    body: Option<RecvStream>,
    respond: SendResponse<Bytes>,
    started: Instant,
    /// Set when the request cannot be served (its body is too large): answered as is.
    refused: Option<ApiError>,
}

impl Http2 {
    /// Takes over a connection whose first bytes (`prefix`, starting with the preface) were
    /// already read.
    pub fn new(io: Shared, prefix: Vec<u8>, limits: &Limits, now: Instant) -> Http2 {
        let io_state = Counters::default();
        let transport = H2Io {
            io,
            prefix,
            prefix_pos: 0,
            state: io_state.clone(),
        };
        let handshake = h2::server::Builder::new()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(transport);
        let woken = Arc::new(Flag::default());
        Http2 {
            state: State::Handshaking(handshake),
            io: io_state,
            exchanges: VecDeque::new(),
            held: Vec::new(),
            deferred: Vec::new(),
            streams: Vec::new(),
            waker: Waker::from(woken.clone()),
            woken,
            phase: Phase::Open,
            last_active: now,
            shutting_down: false,
        }
    }

    /// Reads frames, answers complete requests, writes frames, until nothing moves or the
    /// budget is spent.
    pub fn drive(&mut self, app: &mut impl Handler, limits: &Limits, now: Instant) -> Driven {
        let mut driven = Driven::default();
        let mut requests = REQUESTS_PER_DRIVE;
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        // Stopped while still moving (budget or rounds spent): more may already be buffered,
        // which no epoll edge would announce, so the ready queue resumes it.
        let mut moving = false;
        for _ in 0..ROUNDS_PER_DRIVE {
            self.woken.take();
            moving = self.poll_connection(&mut cx, limits, now);
            moving |= self.receive_bodies(&mut cx, limits);
            moving |= self.answer(app, &mut requests, &mut driven.traffic);
            moving |= self.flush_streams(&mut cx);
            // Writes what answering queued (polling the connection flushes).
            moving |= self.poll_connection(&mut cx, limits, now);
            if !moving || requests == 0 || self.phase == Phase::Closed {
                break;
            }
        }
        driven.yielded = moving || self.woken.is_set();
        let (bytes_in, bytes_out) = self.io.take_counts();
        driven.traffic.bytes_in += bytes_in;
        driven.traffic.bytes_out += bytes_out;
        if bytes_in + bytes_out > 0 {
            self.last_active = now;
        }
        driven.yielded &= self.phase != Phase::Closed;
        driven
    }

    /// The transport has frames waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.io.write_blocked()
    }

    /// No request in flight: safe to close at shutdown.
    pub fn is_quiet(&self) -> bool {
        self.exchanges.is_empty()
            && self.held.is_empty()
            && self.deferred.is_empty()
            && !self.wants_write()
    }

    /// Queues a piece of the open stream `id`; false when there is no such stream, or when
    /// the connection's streamed output would pass `STREAM_BUFFER_CAP` (the stream is then
    /// reset: a client that stopped reading gets no unbounded buffer).
    pub fn push_stream(&mut self, id: u64, piece: &[u8]) -> bool {
        let buffered: usize = self.streams.iter().map(|s| s.queued_len).sum();
        let Some(i) = self.streams.iter().position(|s| s.id == id && !s.ending) else {
            return false;
        };
        if buffered + piece.len() > STREAM_BUFFER_CAP {
            let mut s = self.streams.remove(i);
            s.send.send_reset(h2::Reason::CANCEL);
            return false;
        }
        self.streams[i].queue(Bytes::copy_from_slice(piece));
        true
    }

    /// Ends the open stream `id` once what it queued is sent.
    pub fn end_stream(&mut self, id: u64) -> bool {
        match self.streams.iter_mut().find(|s| s.id == id && !s.ending) {
            Some(s) => {
                s.ending = true;
                true
            }
            None => false,
        }
    }

    /// Sends the streams' queued pieces as the windows allow; drops the streams that are over.
    fn flush_streams(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        self.streams.retain_mut(|s| {
            let (moved, open) = s.flush(cx);
            progressed |= moved;
            open
        });
        progressed
    }

    /// The highest WAL position a held response waits for, if any.
    pub fn awaits_flush(&self) -> Option<u64> {
        self.held.iter().map(|h| h.lsn).max()
    }

    /// The WAL is flushed up to `flushed`: the responses waiting for that are sent (each
    /// stream is answered on its own, so there is no order to keep between them).
    pub fn release(&mut self, flushed: u64) {
        for mut h in self.held.extract_if(.., |h| h.lsn <= flushed) {
            send(&mut h.respond, h.response, h.head_only);
        }
    }

    /// The deferred answer `id` (`Reply::Deferred`) has come: it is sent on its stream
    /// (written by the next drive). False when the connection awaits no such answer.
    pub fn complete(&mut self, id: u64, response: Response, traffic: &mut Traffic) -> bool {
        let Some(i) = self.deferred.iter().position(|d| d.id == id) else {
            return false;
        };
        let mut d = self.deferred.swap_remove(i);
        count(traffic, &response);
        send(&mut d.respond, response, d.head_only);
        true
    }

    /// Sends GOAWAY: requests already received are answered, new ones refused, then the
    /// connection closes.
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
        match &mut self.state {
            State::Serving(c) => c.graceful_shutdown(),
            State::Handshaking(_) => self.close(),
            State::Done => {}
        }
    }

    /// Applies the idle and request deadlines.
    pub fn check_timeouts(&mut self, now: Instant, idle: Duration, request: Duration) {
        let idle_now =
            self.exchanges.is_empty() && self.streams.is_empty() && self.deferred.is_empty();
        if idle_now && now.duration_since(self.last_active) >= idle {
            self.close();
            return;
        }
        for ex in self.exchanges.iter_mut() {
            if ex.body.is_some()
                && ex.refused.is_none()
                && now.duration_since(ex.started) >= request
            {
                ex.body = None;
                ex.refused = Some(ApiError::request_timeout());
            }
        }
    }

    fn close(&mut self) {
        self.state = State::Done;
        self.exchanges.clear();
        self.phase = Phase::Closed;
    }

    /// Drives the handshake and the connection; takes new streams. True if anything moved.
    fn poll_connection(&mut self, cx: &mut Context, limits: &Limits, now: Instant) -> bool {
        let mut progressed = false;
        if let State::Handshaking(h) = &mut self.state {
            match Pin::new(h).poll(cx) {
                Poll::Ready(Ok(c)) => {
                    self.state = State::Serving(c);
                    if self.shutting_down {
                        self.shut_down();
                    }
                    progressed = true;
                }
                Poll::Ready(Err(_)) => {
                    self.close();
                    return true;
                }
                Poll::Pending => return false,
            }
        }
        let State::Serving(conn) = &mut self.state else {
            return progressed;
        };
        loop {
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    self.exchanges
                        .push_back(exchange(request, respond, limits, now));
                    progressed = true;
                }
                // A connection error (GOAWAY sent by h2), or the peer or our GOAWAY is done.
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                    self.close();
                    return true;
                }
                Poll::Pending => return progressed,
            }
        }
    }

    /// Collects request bodies as their DATA frames arrive, returning the window.
    fn receive_bodies(&mut self, cx: &mut Context, limits: &Limits) -> bool {
        let mut progressed = false;
        for ex in self.exchanges.iter_mut() {
            let Some(body) = ex.body.as_mut() else {
                continue;
            };
            loop {
                match body.poll_data(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        progressed = true;
                        let _ = body.flow_control().release_capacity(data.len());
                        if ex.request.body.len() + data.len() > limits.max_body_size {
                            ex.refused = Some(ApiError::protocol(413, "Payload Too Large"));
                            ex.body = None;
                            break;
                        }
                        ex.request.body.extend_from_slice(&data);
                    }
                    Poll::Ready(None) => {
                        progressed = true;
                        ex.body = None;
                        break;
                    }
                    // The client reset the stream: nothing to answer.
                    Poll::Ready(Some(Err(_))) => {
                        progressed = true;
                        ex.body = None;
                        ex.refused = Some(ApiError::protocol(400, "Bad Request"));
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        progressed
    }

    /// Answers the requests whose bodies are complete, in the order they completed.
    fn answer(
        &mut self,
        app: &mut impl Handler,
        budget: &mut usize,
        traffic: &mut Traffic,
    ) -> bool {
        let mut progressed = false;
        let mut i = 0;
        while i < self.exchanges.len() && *budget > 0 {
            if self.exchanges[i].body.is_some() {
                i += 1;
                continue;
            }
            let Some(mut ex) = self.exchanges.remove(i) else {
                break;
            };
            *budget -= 1;
            progressed = true;
            let head_only = ex.request.method == "HEAD";
            let response = match ex.refused.take() {
                Some(err) => error_response(&err),
                None => match app.handle(&ex.request) {
                    Reply::Response(r) => r,
                    // HTTP/2 carries no Upgrade (RFC 9113 §8.6; RFC 8441 is not supported).
                    Reply::Upgrade(_) => error_response(&ApiError::protocol(
                        400,
                        "WebSocket needs HTTP/1.1: HTTP/2 cannot upgrade a connection",
                    )),
                    Reply::Stream { head, id } => {
                        count(traffic, &head);
                        if let Some(s) = open_stream(&mut ex.respond, head, id, head_only) {
                            self.streams.push(s);
                        }
                        continue;
                    }
                    Reply::Deferred { id } => {
                        self.deferred.push(Deferred {
                            id,
                            respond: ex.respond,
                            head_only,
                        });
                        continue;
                    }
                    Reply::Pending {
                        response,
                        flush_lsn,
                    } => {
                        count(traffic, &response);
                        self.held.push(Held {
                            respond: ex.respond,
                            response,
                            head_only,
                            lsn: flush_lsn,
                        });
                        continue;
                    }
                },
            };
            count(traffic, &response);
            send(&mut ex.respond, response, head_only);
        }
        progressed
    }
}

fn count(traffic: &mut Traffic, response: &Response) {
    traffic.requests += 1;
    if response.status >= 400 {
        traffic.errors += 1;
    }
}

/// A new stream: the request head as pg_rest's request, the body still to come.
fn exchange(
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    limits: &Limits,
    now: Instant,
) -> Exchange {
    let (parts, body) = request.into_parts();
    let request = neutral_request(&parts);
    let declared = request
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    let refused = declared
        .is_some_and(|n| n > limits.max_body_size as u64)
        .then(|| ApiError::protocol(413, "Payload Too Large"));
    let body = (!body.is_end_stream() && refused.is_none()).then_some(body);
    Exchange {
        request,
        body,
        respond,
        started: now,
        refused,
    }
}

/// The head as HTTP/1.1 would have delivered it: `:authority` as `host`, `cookie` fields
/// joined into one (RFC 9113 §8.2.3).
fn neutral_request(parts: &http::request::Parts) -> Request {
    let mut headers = Vec::with_capacity(parts.headers.len() + 1);
    if let Some(authority) = parts.uri.authority() {
        if !parts.headers.contains_key(http::header::HOST) {
            headers.push(("host".to_string(), authority.as_str().to_string()));
        }
    }
    let mut cookie: Option<usize> = None;
    for (name, value) in parts.headers.iter() {
        let value = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
        if name == http::header::COOKIE {
            if let Some(i) = cookie {
                headers[i].1.push_str("; ");
                headers[i].1.push_str(&value);
                continue;
            }
            cookie = Some(headers.len());
        }
        headers.push((name.as_str().to_string(), value));
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    Request {
        method: parts.method.as_str().to_string(),
        target,
        headers,
        body: Vec::new(),
    }
}

/// Sends a streamed response's head, and queues its body as the first piece; None for a
/// HEAD (the head alone) or a stream the client reset meanwhile.
fn open_stream(
    respond: &mut SendResponse<Bytes>,
    head: Response,
    id: u64,
    head_only: bool,
) -> Option<OpenStream> {
    // No Content-Length: the body is as long as the stream lasts.
    let send = respond
        .send_response(response_head(&head, true), head_only)
        .ok()?;
    if head_only {
        return None;
    }
    let mut stream = OpenStream {
        id,
        send,
        queued: VecDeque::new(),
        queued_len: 0,
        ending: false,
    };
    stream.queue(Bytes::from(head.body));
    Some(stream)
}

/// Queues a response on its stream; `h2` sends it as windows allow.
fn send(respond: &mut SendResponse<Bytes>, response: Response, head_only: bool) {
    let no_content = matches!(response.status, 100..=199 | 204 | 304);
    let head = response_head(&response, no_content);
    let empty = head_only || no_content || response.body.is_empty();
    let Ok(mut stream) = respond.send_response(head, empty) else {
        return; // the client reset the stream meanwhile
    };
    if !empty {
        let _ = stream.send_data(Bytes::from(response.body), true);
    }
}

fn response_head(response: &Response, no_content: bool) -> http::Response<()> {
    let mut head = http::Response::new(());
    *head.status_mut() =
        http::StatusCode::from_u16(response.status).unwrap_or(http::StatusCode::OK);
    let headers = head.headers_mut();
    let fixed = response.headers.iter().map(|(n, v)| (*n, v.as_str()));
    let dynamic = response
        .dynamic_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()));
    for (name, value) in fixed.chain(dynamic) {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        // A name or value HTTP cannot carry (a function's choice) is left out, as in HTTP/1.1.
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if !no_content {
        headers.insert(http::header::CONTENT_LENGTH, response.body.len().into());
    }
    head
}

/// A waker that raises a flag: the event loop is the only executor.
#[derive(Default)]
struct Flag(AtomicBool);

impl Flag {
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The transport as `h2` needs it: the bytes sniffed before the switch first, then the socket;
/// `WouldBlock` is `Pending` (the event loop's edge, not the waker, resumes it).
struct H2Io {
    io: Shared,
    prefix: Vec<u8>,
    prefix_pos: usize,
    state: Counters,
}

impl AsyncRead for H2Io {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix_pos < this.prefix.len() {
            let rest = &this.prefix[this.prefix_pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.prefix_pos += n;
            if this.prefix_pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.prefix_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        loop {
            match this.io.read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    this.state.read(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.io.write(buf) {
                Ok(n) => {
                    this.state.wrote(n);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    this.state.blocked();
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.io.flush() {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                this.state.blocked();
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io.shutdown_write();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use crate::transport::conn::Phase;
    use crate::transport::conn::{Conn, Handler, READ_CHUNK};
    use crate::transport::test_support::{socket_pair, LIMITS};
    use bytes::Bytes;
    use pg_rest_core::request::{Reply, Request};
    use pg_rest_core::response::Response;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// Answers `GET /big` with 10 MB, anything else with "METHOD target body".
    struct Echo;

    impl Handler for Echo {
        fn message(&mut self, text: &str) -> Option<String> {
            Some(text.to_string())
        }

        fn handle(&mut self, r: &Request) -> Reply {
            if r.target == "/deferred" {
                return Reply::Deferred { id: 9 };
            }
            if r.target == "/stream" {
                return Reply::Stream {
                    head: Response {
                        status: 200,
                        headers: vec![("Content-Type", "application/x-ndjson".to_string())],
                        body: b"first\n".to_vec(),
                        ..Default::default()
                    },
                    id: 7,
                };
            }
            let body = if r.target == "/big" {
                vec![b'x'; 10 << 20]
            } else {
                let mut b = format!("{} {} ", r.method, r.target).into_bytes();
                b.extend_from_slice(&r.body);
                b
            };
            Reply::Response(Response {
                status: 200,
                headers: vec![
                    ("Content-Type", "text/plain".to_string()),
                    ("Connection", "keep-alive".to_string()),
                ],
                body,
                ..Default::default()
            })
        }
    }

    /// Serves one connection with `Echo` until `client` (run on its own thread, over a
    /// tokio runtime as real clients are) returns, or the connection closes.
    fn serve<T: Send + 'static>(
        client: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
    ) -> (T, Phase) {
        serve_with(client, |_| {})
    }

    /// `serve`, calling `each` on the connection after every drive (a stream's producer).
    fn serve_with<T: Send + 'static>(
        client: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
        mut each: impl FnMut(&mut Conn),
    ) -> (T, Phase) {
        let (io, stream) = socket_pair();
        let client = std::thread::spawn(move || client(stream));
        let mut conn = Conn::over(io, Instant::now());
        let mut scratch = vec![0u8; READ_CHUNK];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client.is_finished() && Instant::now() < deadline {
            conn.drive(&mut Echo, &LIMITS, Instant::now(), &mut scratch);
            each(&mut conn);
            if conn.phase() == Phase::Closed {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        (client.join().expect("client thread"), conn.phase())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Sends `method path` with `body` on an open client and reads the whole answer.
    async fn fetch(
        client: &mut h2::client::SendRequest<Bytes>,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, Option<String>, Vec<u8>) {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://localhost{path}"))
            .body(())
            .expect("request");
        let mut ready = client.clone().ready().await.expect("ready");
        let (response, mut send) = ready.send_request(request, body.is_empty()).expect("send");
        if !body.is_empty() {
            send.send_data(Bytes::from(body), true).expect("data");
        }
        let response = response.await.expect("response");
        let status = response.status().as_u16();
        let length = response
            .headers()
            .get("content-length")
            .map(|v| v.to_str().expect("ascii").to_string());
        let mut stream = response.into_body();
        let mut got = Vec::new();
        while let Some(chunk) = stream.data().await {
            let chunk = chunk.expect("chunk");
            let _ = stream.flow_control().release_capacity(chunk.len());
            got.extend_from_slice(&chunk);
        }
        (status, length, got)
    }

    async fn connect(stream: std::net::TcpStream) -> h2::client::SendRequest<Bytes> {
        stream.set_nonblocking(true).expect("nonblocking");
        let io = tokio::net::TcpStream::from_std(stream).expect("tokio stream");
        let (client, connection) = h2::client::handshake(io).await.expect("handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    #[test]
    fn many_streams_on_one_connection_are_each_answered() {
        let (answers, _) = serve(|stream| {
            runtime().block_on(async move {
                let client = connect(stream).await;
                let mut tasks = Vec::new();
                for i in 0..40 {
                    let mut c = client.clone();
                    tasks.push(tokio::spawn(async move {
                        let body = if i % 2 == 0 {
                            Vec::new()
                        } else {
                            vec![b'a'; i]
                        };
                        (i, fetch(&mut c, "POST", &format!("/t?i={i}"), body).await)
                    }));
                }
                let mut answers = Vec::new();
                for t in tasks {
                    answers.push(t.await.expect("task"));
                }
                answers
            })
        });
        assert_eq!(answers.len(), 40);
        for (i, (status, length, body)) in answers {
            let mut expected = format!("POST /t?i={i} ").into_bytes();
            if i % 2 == 1 {
                expected.extend(vec![b'a'; i]);
            }
            assert_eq!(status, 200);
            assert_eq!(length, Some(expected.len().to_string()));
            assert_eq!(body, expected);
        }
    }

    #[test]
    fn a_deferred_answer_is_sent_when_it_comes_and_other_streams_go_on_meanwhile() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let other_answered = Arc::new(AtomicBool::new(false));
        let flag = other_answered.clone();
        let mut completed = false;
        let (answers, _) = serve_with(
            move |stream| {
                runtime().block_on(async move {
                    let client = connect(stream).await;
                    let mut c = client.clone();
                    let deferred = tokio::spawn(async move {
                        fetch(&mut c, "POST", "/deferred", Vec::new()).await
                    });
                    let mut c = client.clone();
                    let other = fetch(&mut c, "GET", "/other", Vec::new()).await;
                    flag.store(true, Ordering::SeqCst);
                    (other, deferred.await.expect("task"))
                })
            },
            |conn| {
                // Completed only after the other stream was answered: had the deferred one
                // held it, neither would ever be.
                if !completed && other_answered.load(Ordering::SeqCst) {
                    let done = Response {
                        status: 201,
                        body: b"later".to_vec(),
                        ..Default::default()
                    };
                    completed = conn.complete(9, done).requests == 1;
                }
            },
        );
        let (other, deferred) = answers;
        assert_eq!(other.2, b"GET /other ");
        assert_eq!((deferred.0, deferred.2), (201, b"later".to_vec()));
        assert!(completed);
    }

    #[test]
    fn a_stream_is_data_frames_as_pushed_then_its_end() {
        let mut step = 0;
        let (answer, _) = serve_with(
            |stream| {
                runtime().block_on(async move {
                    let mut client = connect(stream).await;
                    fetch(&mut client, "GET", "/stream", Vec::new()).await
                })
            },
            |conn| {
                // Once the stream is open: two pieces, then the end.
                step += match step {
                    0 if conn.push_stream(7, b"second\n") => 1,
                    1 if conn.push_stream(7, b"third\n") => 1,
                    2 if conn.end_stream(7) => 1,
                    _ => 0,
                };
            },
        );
        assert_eq!(answer.0, 200);
        assert_eq!(answer.1, None, "no Content-Length on a stream");
        assert_eq!(answer.2, b"first\nsecond\nthird\n");
    }

    #[test]
    fn a_stream_whose_client_stops_reading_is_reset_at_the_cap() {
        let mut pushed = 0usize;
        let mut refused = false;
        let (reset, _) = serve_with(
            |stream| {
                runtime().block_on(async move {
                    let client = connect(stream).await;
                    let request = http::Request::get("http://localhost/stream")
                        .body(())
                        .expect("request");
                    let mut ready = client.ready().await.expect("ready");
                    let (response, _) = ready.send_request(request, true).expect("send");
                    let mut body = response.await.expect("response").into_body();
                    // Never releases flow-control capacity: the server must stop buffering.
                    loop {
                        match body.data().await {
                            Some(Ok(_)) => continue,
                            Some(Err(e)) => return e.is_reset(),
                            None => return false,
                        }
                    }
                })
            },
            |conn| {
                if !refused {
                    if conn.push_stream(7, &[b'x'; 64 * 1024]) {
                        pushed += 64 * 1024;
                    } else if pushed > 0 {
                        refused = true;
                    }
                }
            },
        );
        assert!(reset, "the client sees the stream reset");
        assert!(refused && pushed <= crate::transport::http1::STREAM_BUFFER_CAP + (1 << 20));
    }

    #[test]
    fn a_large_response_follows_the_clients_flow_control() {
        let (answer, _) = serve(|stream| {
            runtime().block_on(async move {
                let mut client = connect(stream).await;
                fetch(&mut client, "GET", "/big", Vec::new()).await
            })
        });
        assert_eq!(answer.0, 200);
        assert_eq!(answer.2.len(), 10 << 20);
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let (answer, _) = serve(|stream| {
            runtime().block_on(async move {
                let mut client = connect(stream).await;
                let over = vec![b'z'; LIMITS.max_body_size + 1];
                fetch(&mut client, "POST", "/t", over).await
            })
        });
        assert_eq!(answer.0, 413);
    }

    #[test]
    fn garbage_after_the_preface_closes_the_connection() {
        let (eof, phase) = serve(|mut stream| {
            stream
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nthis is not a SETTINGS frame")
                .expect("write");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            // The server's GOAWAY, then EOF.
            let mut all = Vec::new();
            let _ = stream.read_to_end(&mut all);
            all.len()
        });
        assert!(eof > 0, "no GOAWAY before the close");
        assert_eq!(phase, Phase::Closed);
    }
}
