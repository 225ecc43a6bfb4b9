//! The HTTP/1.1 side of a connection: a state machine over a non-blocking transport (its
//! states are [`Phase`]). Bytes are read into `inbuf`, requests are decoded by the sans-io `http1` codec
//! and answered in order (so pipelining needs nothing special), responses are appended to
//! `outbuf` and flushed as the socket accepts them. One `drive` call does a bounded amount of
//! work (reads and requests, see [`Budget`]); when it stops for the budget it says so
//! (`Driven::yielded`) and the event loop drives it again from its ready queue.
//!
//! A connection that opens with HTTP/2's preface (prior knowledge, `h2c`) is handed over
//! before anything is decoded as HTTP/1.1: see [`Driven::switch`].

use crate::transport::conn::{Driven, Handler, Phase, Switch, Traffic};
use crate::transport::io::Shared;
use pg_rest_core::error::ApiError;
use pg_rest_core::http1::{self, DecodeProgress, Decoded, Framing, Limits};
use pg_rest_core::request::Reply;
use pg_rest_core::response::{error_response, Response};
use pg_rest_core::stream;
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

/// What every HTTP/2 connection sends first (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Stop answering pipelined requests while this much output waits for a slow reader.
const OUT_HIGH_WATER: usize = 256 * 1024;
/// A streamed response's output may wait for the client up to this much; a piece beyond it
/// closes the connection (a client that stopped reading gets no unbounded buffer).
pub const STREAM_BUFFER_CAP: usize = 4 << 20;
/// After the last response of a closing connection, unread client bytes are drained for this
/// long before the socket closes, so the client reads the response instead of a reset.
const LINGER: Duration = Duration::from_secs(2);
/// Buffers that grew beyond this for one large message are freed once empty, so thousands of
/// idle keep-alive connections do not each keep their peak size.
const SHRINK_ABOVE: usize = 64 * 1024;
/// Reads of `READ_CHUNK` bytes one `drive` call may make (256 kB), on open and closing
/// connections alike, so one fast sender cannot hold the event loop.
const READS_PER_DRIVE: usize = 16;
/// Requests one `drive` call may answer before the other connections get their turn.
const REQUESTS_PER_DRIVE: usize = 64;

/// What one `drive` call may still do.
struct Budget {
    reads: usize,
    requests: usize,
}

impl Budget {
    fn per_drive() -> Budget {
        Budget {
            reads: READS_PER_DRIVE,
            requests: REQUESTS_PER_DRIVE,
        }
    }

    fn spent(&self) -> bool {
        self.reads == 0 || self.requests == 0
    }
}

/// Whether a fresh connection speaks HTTP/2.
enum Sniff {
    Http1,
    Http2,
    /// A prefix of the preface so far.
    Undecided,
}

/// The request whose answer is deferred: what queuing it needs.
struct Deferred {
    id: u64,
    head_only: bool,
    framing: Framing,
}

pub struct Http1 {
    io: Shared,
    pub phase: Phase,
    /// Nothing answered yet: the first bytes may still be HTTP/2's preface.
    fresh: bool,
    /// A 101 is queued: nothing more is decoded as HTTP/1.1; WebSocket takes over once
    /// it is written.
    upgrading: bool,
    inbuf: Vec<u8>,
    /// Bytes of `inbuf` already answered; compacted once per `answer`, not per request, so a
    /// deep pipeline costs one move instead of one per request.
    in_pos: usize,
    /// What the codec learnt of the request being received (head scanned, chunks validated).
    decode_progress: DecodeProgress,
    outbuf: Vec<u8>,
    out_pos: usize,
    /// Responses in `outbuf` that wait for a WAL flush (`Reply::Pending`), in order: where
    /// each starts and the position it waits for. Nothing from the first on is written
    /// until it is released, so later pipelined answers stay behind it.
    held: VecDeque<(usize, u64)>,
    /// A streamed response is open (`Reply::Stream`, its id): pieces are chunks of it, and
    /// no other request is answered until it ends.
    stream: Option<u64>,
    /// The streamed request asked to close: close once the stream ends.
    close_after_stream: bool,
    /// An answer comes later (`Reply::Deferred`): no other request is answered until it does.
    deferred: Option<Deferred>,
    /// The peer closed its write side.
    read_eof: bool,
    /// When the first byte of the request being received arrived.
    request_started: Option<Instant>,
    continue_sent: bool,
    pub last_active: Instant,
}

impl Http1 {
    pub fn new(io: Shared, now: Instant) -> Http1 {
        Http1 {
            io,
            phase: Phase::Open,
            fresh: true,
            upgrading: false,
            inbuf: Vec::new(),
            in_pos: 0,
            decode_progress: DecodeProgress::default(),
            outbuf: Vec::new(),
            out_pos: 0,
            held: VecDeque::new(),
            stream: None,
            close_after_stream: false,
            deferred: None,
            read_eof: false,
            request_started: None,
            continue_sent: false,
            last_active: now,
        }
    }

    /// A connection beyond `pg_rest.max_connections`: one polite 503, then close.
    pub fn refuse(&mut self) {
        let err = ApiError::too_many_connections();
        self.queue(&error_response(&err), false, false);
        self.phase = Phase::CloseAfterFlush;
    }

    /// Makes the progress the socket and the budget allow: read, answer, write, until nothing
    /// moves or the budget is spent. `scratch` is the event loop's read buffer, shared by
    /// all connections.
    pub fn drive(
        &mut self,
        app: &mut impl Handler,
        limits: &Limits,
        now: Instant,
        scratch: &mut [u8],
    ) -> Driven {
        let mut driven = Driven::default();
        let traffic = &mut driven.traffic;
        let mut budget = Budget::per_drive();
        loop {
            let mut progressed = self.read(limits, now, scratch, traffic, &mut budget);
            if self.fresh && self.phase == Phase::Open {
                match self.sniff_h2() {
                    Sniff::Http2 => {
                        driven.switch = Some(Switch::Http2(std::mem::take(&mut self.inbuf)));
                        return driven;
                    }
                    Sniff::Undecided => return driven,
                    Sniff::Http1 => self.fresh = false,
                }
            }
            progressed |= self.answer(app, limits, now, traffic, &mut budget);
            progressed |= self.flush(now, traffic);
            if self.upgrading && self.phase == Phase::Open && !self.wants_write() {
                self.compact();
                driven.switch = Some(Switch::WebSocket(std::mem::take(&mut self.inbuf)));
                return driven;
            }
            self.advance_phase(now);
            if self.phase == Phase::Closed {
                return driven;
            }
            if budget.spent() {
                driven.yielded = true;
                return driven;
            }
            if !progressed {
                return driven;
            }
        }
    }

    /// Tells HTTP/2's preface from an HTTP/1.1 request by the first bytes.
    fn sniff_h2(&self) -> Sniff {
        let got = self.unread();
        let n = got.len().min(H2_PREFACE.len());
        if got[..n] != H2_PREFACE[..n] {
            Sniff::Http1
        } else if n == H2_PREFACE.len() {
            Sniff::Http2
        } else if self.read_eof {
            // Ended within the preface: let HTTP/1.1 answer (or close) as for any fragment.
            Sniff::Http1
        } else {
            Sniff::Undecided
        }
    }

    /// Output waits for the socket to accept it.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.sendable_end()
    }

    /// The WAL position the held responses wait for (the last, so the highest), if any.
    pub fn awaits_flush(&self) -> Option<u64> {
        self.held.back().map(|&(_, lsn)| lsn)
    }

    /// The WAL is flushed up to `flushed`: the responses waiting for that may go.
    pub fn release(&mut self, flushed: u64) {
        while self.held.front().is_some_and(|&(_, lsn)| lsn <= flushed) {
            self.held.pop_front();
        }
    }

    /// Output up to the first held response may be written.
    fn sendable_end(&self) -> usize {
        self.held.front().map_or(self.outbuf.len(), |&(at, _)| at)
    }

    /// Applies idle, request and linger deadlines.
    pub fn check_timeouts(&mut self, now: Instant, idle: Duration, request: Duration) -> Traffic {
        let mut traffic = Traffic::default();
        match self.phase {
            Phase::Lingering(until) if now >= until => self.phase = Phase::Closed,
            Phase::Open => {
                let quiet_for = now.duration_since(self.last_active);
                if self.pending_output() > 0 {
                    // Not reading its responses (nothing moved either way for that long).
                    if quiet_for >= idle {
                        self.phase = Phase::Closed;
                    }
                } else if let Some(started) = self.request_started {
                    if now.duration_since(started) >= request {
                        self.fail(ApiError::request_timeout());
                        traffic.requests += 1;
                        traffic.errors += 1;
                        self.flush(now, &mut traffic);
                        self.advance_phase(now);
                    }
                } else if self.unread().is_empty()
                    && self.stream.is_none()
                    && self.deferred.is_none()
                    && quiet_for >= idle
                {
                    // An open stream is not idle: its producer decides when it has news.
                    self.phase = Phase::Closed;
                }
            }
            // A client that stopped reading its responses is dropped like an idle one.
            Phase::CloseAfterFlush if now.duration_since(self.last_active) >= idle => {
                self.phase = Phase::Closed
            }
            _ => {}
        }
        traffic
    }

    /// Nothing buffered either way: safe to close at shutdown.
    pub fn is_quiet(&self) -> bool {
        self.unread().is_empty()
            && self.pending_output() == 0
            && self.request_started.is_none()
            && self.deferred.is_none()
    }

    /// Received bytes not yet answered.
    fn unread(&self) -> &[u8] {
        &self.inbuf[self.in_pos..]
    }

    /// Drops answered bytes, and memory a burst left behind.
    fn compact(&mut self) {
        self.inbuf.drain(..self.in_pos);
        self.in_pos = 0;
        if self.inbuf.is_empty() && self.inbuf.capacity() > SHRINK_ABOVE {
            self.inbuf = Vec::new();
        }
    }

    fn pending_output(&self) -> usize {
        self.outbuf.len() - self.out_pos
    }

    fn read(
        &mut self,
        limits: &Limits,
        now: Instant,
        chunk: &mut [u8],
        traffic: &mut Traffic,
        budget: &mut Budget,
    ) -> bool {
        if self.read_eof || self.phase == Phase::Closed {
            return false;
        }
        // Only an open connection keeps what it reads; a closing one discards it.
        let keep = self.phase == Phase::Open;
        // Bound what one connection may buffer: the largest request the codec accepts (head,
        // body and as much chunk framing again); more waits in the kernel until answers drain
        // it (pipelining backpressure).
        let cap = 2 * (limits.max_header_size + limits.max_body_size) + chunk.len();
        let mut progressed = false;
        loop {
            if keep && (self.unread().len() >= cap || self.pending_output() >= OUT_HIGH_WATER) {
                return progressed;
            }
            if budget.reads == 0 {
                return progressed;
            }
            budget.reads -= 1;
            match self.io.read(chunk) {
                Ok(0) => {
                    self.read_eof = true;
                    return true;
                }
                Ok(n) => {
                    progressed = true;
                    traffic.bytes_in += n as u64;
                    self.last_active = now;
                    if keep {
                        self.inbuf.extend_from_slice(&chunk[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return progressed,
                Err(_) => {
                    self.phase = Phase::Closed;
                    return true;
                }
            }
        }
    }

    /// Answers every complete request in `inbuf`, in order.
    fn answer(
        &mut self,
        app: &mut impl Handler,
        limits: &Limits,
        now: Instant,
        traffic: &mut Traffic,
        budget: &mut Budget,
    ) -> bool {
        let mut progressed = false;
        while self.phase == Phase::Open
            && !self.upgrading
            && self.stream.is_none()
            && self.deferred.is_none()
            && self.pending_output() < OUT_HIGH_WATER
            && budget.requests > 0
        {
            let decoded = http1::decode_resuming(
                &self.inbuf[self.in_pos..],
                limits,
                &mut self.decode_progress,
            );
            if !matches!(decoded, Ok(Decoded::Incomplete { .. })) {
                self.decode_progress = DecodeProgress::default();
            }
            match decoded {
                Ok(Decoded::Request {
                    request,
                    framing,
                    consumed,
                }) => {
                    budget.requests -= 1;
                    self.in_pos += consumed;
                    self.request_started = None;
                    self.continue_sent = false;
                    let head_only = request.method == "HEAD";
                    let response = match app.handle(&request) {
                        Reply::Stream { head, id } => {
                            traffic.requests += 1;
                            self.open_stream(&head, id, head_only, framing.keep_alive);
                            progressed = true;
                            continue;
                        }
                        Reply::Deferred { id } => {
                            self.deferred = Some(Deferred {
                                id,
                                head_only,
                                framing,
                            });
                            progressed = true;
                            continue;
                        }
                        Reply::Response(r) => r,
                        Reply::Upgrade(r) => {
                            self.upgrading = true;
                            r
                        }
                        Reply::Pending {
                            response,
                            flush_lsn,
                        } => {
                            self.held.push_back((self.outbuf.len(), flush_lsn));
                            response
                        }
                    };
                    self.queue_answer(response, head_only, framing, traffic);
                    progressed = true;
                }
                Ok(Decoded::Incomplete { send_continue, .. }) => {
                    if self.unread().is_empty() {
                        self.request_started = None;
                    } else {
                        self.request_started.get_or_insert(now);
                    }
                    if send_continue && !self.continue_sent {
                        self.outbuf.extend_from_slice(http1::CONTINUE_RESPONSE);
                        self.continue_sent = true;
                        progressed = true;
                    }
                    if self.read_eof {
                        // The client will send nothing more: close once answers are out.
                        self.phase = Phase::CloseAfterFlush;
                        progressed = true;
                    }
                    break;
                }
                Err(e) => {
                    traffic.requests += 1;
                    traffic.errors += 1;
                    self.fail(ApiError::protocol(e.status(), e.message()));
                    progressed = true;
                }
            }
        }
        self.compact();
        progressed
    }

    /// Answers a protocol error and closes: the byte stream can no longer be trusted.
    fn fail(&mut self, err: ApiError) {
        self.queue(&error_response(&err), false, false);
        self.inbuf.clear();
        self.in_pos = 0;
        self.decode_progress = DecodeProgress::default();
        self.request_started = None;
        self.phase = Phase::CloseAfterFlush;
    }

    fn queue(&mut self, response: &Response, head_only: bool, keep_alive: bool) {
        http1::encode_response_with_reason(
            &mut self.outbuf,
            response.status,
            response.reason.as_deref(),
            &header_list(response),
            &response.body,
            head_only,
            keep_alive,
        );
    }

    /// Starts a streamed response: the head, and its body as the first chunk. A HEAD gets
    /// the head alone, and no stream.
    /// Queues a request's answer with the framing its request asked for.
    fn queue_answer(
        &mut self,
        mut response: Response,
        head_only: bool,
        framing: Framing,
        traffic: &mut Traffic,
    ) {
        traffic.requests += 1;
        if response.status >= 400 {
            traffic.errors += 1;
        }
        if framing.keep_alive && framing.minor_version == 0 {
            // HTTP/1.0 clients keep the connection only when told so.
            response
                .headers
                .push(("Connection", "keep-alive".to_string()));
        }
        self.queue(&response, head_only, framing.keep_alive);
        if !framing.keep_alive {
            self.phase = Phase::CloseAfterFlush;
        }
    }

    /// The deferred answer `id` (`Reply::Deferred`) has come: it is queued, and the requests
    /// behind it are answered again. False when the connection awaits no such answer.
    pub fn complete(&mut self, id: u64, response: Response, traffic: &mut Traffic) -> bool {
        match self.deferred.take_if(|d| d.id == id) {
            Some(d) => {
                self.queue_answer(response, d.head_only, d.framing, traffic);
                true
            }
            None => false,
        }
    }

    fn open_stream(&mut self, head: &Response, id: u64, head_only: bool, keep_alive: bool) {
        http1::encode_stream_head(
            &mut self.outbuf,
            head.status,
            &header_list(head),
            keep_alive,
        );
        if head_only {
            if !keep_alive {
                self.phase = Phase::CloseAfterFlush;
            }
            return;
        }
        stream::chunk(&mut self.outbuf, &head.body);
        self.stream = Some(id);
        self.close_after_stream = !keep_alive;
    }

    /// Queues a piece of the open stream `id` as a chunk; false when there is no such stream
    /// (it ended, or the connection is closing), or when the piece would pass
    /// [`STREAM_BUFFER_CAP`]: the connection is then dropped.
    pub fn push_stream(&mut self, id: u64, piece: &[u8]) -> bool {
        if self.stream != Some(id) || self.phase != Phase::Open {
            return false;
        }
        if self.pending_output() + piece.len() > STREAM_BUFFER_CAP {
            self.phase = Phase::Closed;
            return false;
        }
        stream::chunk(&mut self.outbuf, piece);
        true
    }

    /// Ends the open stream `id` (the last chunk); later requests are answered again.
    pub fn end_stream(&mut self, id: u64) -> bool {
        if self.stream != Some(id) {
            return false;
        }
        stream::last_chunk(&mut self.outbuf);
        self.stream = None;
        if std::mem::take(&mut self.close_after_stream) {
            self.phase = Phase::CloseAfterFlush;
        }
        true
    }

    fn flush(&mut self, now: Instant, traffic: &mut Traffic) -> bool {
        let mut progressed = false;
        let end = self.sendable_end();
        while self.out_pos < end && self.phase != Phase::Closed {
            match self.io.write(&self.outbuf[self.out_pos..end]) {
                Ok(0) => {
                    self.phase = Phase::Closed;
                    return true;
                }
                Ok(n) => {
                    self.out_pos += n;
                    traffic.bytes_out += n as u64;
                    self.last_active = now;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.phase = Phase::Closed;
                    return true;
                }
            }
        }
        if self.out_pos == self.outbuf.len() {
            self.out_pos = 0;
            if self.outbuf.capacity() > SHRINK_ABOVE {
                self.outbuf = Vec::new();
            } else {
                self.outbuf.clear();
            }
        }
        progressed
    }

    fn advance_phase(&mut self, now: Instant) {
        match self.phase {
            Phase::Open if self.read_eof && self.is_quiet() => self.phase = Phase::Closed,
            Phase::CloseAfterFlush if self.pending_output() == 0 => {
                self.io.shutdown_write();
                self.phase = if self.read_eof {
                    Phase::Closed
                } else {
                    Phase::Lingering(now + LINGER)
                };
            }
            Phase::Lingering(_) if self.read_eof => self.phase = Phase::Closed,
            _ => {}
        }
    }
}

/// A response's headers as the codec takes them: the fixed ones, then those named at run time.
fn header_list(response: &Response) -> Vec<(&str, &str)> {
    response
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(
            response
                .dynamic_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::conn::READ_CHUNK;
    use crate::transport::test_support::socket_pair;
    use std::io::Write;

    /// A connection over loopback TCP, its peer, and the peer's writer thread's data.
    fn pair() -> io::Result<(Http1, std::net::TcpStream)> {
        let (io, client) = socket_pair();
        Ok((Http1::new(io, Instant::now()), client))
    }

    #[test]
    fn a_short_read_ends_the_reads_of_a_drive() -> io::Result<()> {
        let limits = Limits {
            max_header_size: 1 << 20,
            max_body_size: 1 << 20,
        };
        let (mut conn, mut client) = pair()?;
        let now = Instant::now();
        let mut scratch = vec![0u8; READ_CHUNK];
        let mut read = |conn: &mut Http1| {
            let mut traffic = Traffic::default();
            conn.read(
                &limits,
                now,
                &mut scratch,
                &mut traffic,
                &mut Budget::per_drive(),
            );
            traffic.bytes_in
        };
        client.write_all(b"GET / HTTP/1.1\r\n")?;
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(read(&mut conn), 16);
        // More arrives within the same drive: not read (its edge drives the next one).
        client.write_all(b"Host: x\r\n\r\n")?;
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(read(&mut conn), 0);
        conn.io.begin_drive();
        assert_eq!(read(&mut conn), 11);
        // Once the peer is seen closing, reads go on until the socket says WouldBlock (or
        // EOF): the FIN behind the last bytes brings no edge of its own.
        conn.io.peer_closing();
        client.write_all(b"x")?;
        client.shutdown(std::net::Shutdown::Write)?;
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(read(&mut conn), 1);
        assert!(conn.read_eof);
        Ok(())
    }

    #[test]
    fn one_drive_reads_at_most_its_budget_even_when_discarding() -> io::Result<()> {
        let limits = Limits {
            max_header_size: 1 << 20,
            max_body_size: 10 << 20,
        };
        let (mut conn, mut client) = pair()?;
        // The budget is under test, not the early stop of a short read.
        conn.io.peer_closing();
        let now = Instant::now();
        let writer = std::thread::spawn(move || {
            let _ = client.write_all(&vec![b'x'; 4 << 20]);
            client
        });
        let mut scratch = vec![0u8; READ_CHUNK];
        for phase in [Phase::Open, Phase::Lingering(now + Duration::from_secs(60))] {
            conn.phase = phase;
            // Let the kernel buffers fill up behind the writer.
            std::thread::sleep(Duration::from_millis(100));
            let mut budget = Budget::per_drive();
            let mut traffic = Traffic::default();
            assert!(conn.read(&limits, now, &mut scratch, &mut traffic, &mut budget));
            assert_eq!(budget.reads, 0, "{phase:?}: stopped before its budget");
            assert!(traffic.bytes_in > 0);
            assert!(traffic.bytes_in <= (READS_PER_DRIVE * READ_CHUNK) as u64);
        }
        // Let the writer finish: discard the rest.
        conn.phase = Phase::Lingering(now + Duration::from_secs(60));
        let start = Instant::now();
        while !writer.is_finished() && start.elapsed() < Duration::from_secs(10) {
            let mut budget = Budget::per_drive();
            conn.read(
                &limits,
                now,
                &mut scratch,
                &mut Traffic::default(),
                &mut budget,
            );
        }
        drop(writer.join());
        Ok(())
    }
}
