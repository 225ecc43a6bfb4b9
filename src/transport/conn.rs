//! One client connection: a state machine over a non-blocking socket (its states are
//! [`Phase`]). Bytes are read into `inbuf`, requests are decoded by the sans-io `http1` codec
//! and answered in order (so pipelining needs nothing special), responses are appended to
//! `outbuf` and flushed as the socket accepts them. One `drive` call does a bounded amount of
//! work (reads and requests, see [`Budget`]); when it stops for the budget it sets `yielded`
//! and the event loop drives it again from its ready queue.

use crate::app::App;
use mio::net::TcpStream;
use mio::Interest;
use pg_rest_core::error::ApiError;
use pg_rest_core::http1::{self, DecodeProgress, Decoded, Limits};
use pg_rest_core::response::{error_response, Response};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// Bytes read per `read` call: the size of the event loop's shared read buffer.
pub const READ_CHUNK: usize = 16 * 1024;
/// Stop answering pipelined requests while this much output waits for a slow reader.
const OUT_HIGH_WATER: usize = 256 * 1024;
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

/// What one `drive` call moved, for the worker's counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests: u64,
    pub errors: u64,
}

pub struct Conn {
    pub stream: TcpStream,
    pub phase: Phase,
    /// Accepted beyond max_connections: answered 503 and not counted as open.
    pub refused: bool,
    inbuf: Vec<u8>,
    /// Bytes of `inbuf` already answered; compacted once per `answer`, not per request, so a
    /// deep pipeline costs one move instead of one per request.
    in_pos: usize,
    /// What the codec learnt of the request being received (head scanned, chunks validated).
    decode_progress: DecodeProgress,
    outbuf: Vec<u8>,
    out_pos: usize,
    /// The peer closed its write side.
    read_eof: bool,
    /// When the first byte of the request being received arrived.
    request_started: Option<Instant>,
    continue_sent: bool,
    pub last_active: Instant,
    /// The interest currently registered with the poller.
    pub interest: Interest,
    /// The last `drive` stopped for its budget: drive again without waiting for an edge.
    pub yielded: bool,
    /// In the event loop's ready queue.
    pub queued: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            phase: Phase::Open,
            refused: false,
            inbuf: Vec::new(),
            in_pos: 0,
            decode_progress: DecodeProgress::default(),
            outbuf: Vec::new(),
            out_pos: 0,
            read_eof: false,
            request_started: None,
            continue_sent: false,
            last_active: now,
            interest: Interest::READABLE,
            yielded: false,
            queued: false,
        }
    }

    /// A connection beyond `pg_rest.max_connections`: one polite 503, then close.
    pub fn refuse(&mut self) {
        let err = ApiError::too_many_connections();
        self.queue(&error_response(&err), false, false);
        self.phase = Phase::CloseAfterFlush;
        self.refused = true;
    }

    /// Makes the progress the socket and the budget allow: read, answer, write, until nothing
    /// moves or the budget is spent (then `yielded` is set). `scratch` is the event loop's
    /// read buffer, shared by all connections.
    pub fn drive(
        &mut self,
        app: &mut App,
        limits: &Limits,
        now: Instant,
        scratch: &mut [u8],
    ) -> Traffic {
        let mut traffic = Traffic::default();
        let mut budget = Budget::per_drive();
        self.yielded = false;
        loop {
            let mut progressed = self.read(limits, now, scratch, &mut traffic, &mut budget);
            progressed |= self.answer(app, limits, now, &mut traffic, &mut budget);
            progressed |= self.flush(now, &mut traffic);
            self.advance_phase(now);
            if self.phase == Phase::Closed {
                return traffic;
            }
            if budget.spent() {
                self.yielded = true;
                return traffic;
            }
            if !progressed {
                return traffic;
            }
        }
    }

    /// The poller interest this state needs.
    pub fn wanted_interest(&self) -> Interest {
        if self.out_pos < self.outbuf.len() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
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
                } else if self.unread().is_empty() && quiet_for >= idle {
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
        self.unread().is_empty() && self.pending_output() == 0 && self.request_started.is_none()
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
            match self.stream.read(chunk) {
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
        app: &mut App,
        limits: &Limits,
        now: Instant,
        traffic: &mut Traffic,
        budget: &mut Budget,
    ) -> bool {
        let mut progressed = false;
        while self.phase == Phase::Open
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
                Ok(Decoded::Request { request, consumed }) => {
                    budget.requests -= 1;
                    self.in_pos += consumed;
                    self.request_started = None;
                    self.continue_sent = false;
                    let mut response = app.handle(&request);
                    traffic.requests += 1;
                    if response.status >= 400 {
                        traffic.errors += 1;
                    }
                    if request.keep_alive && request.minor_version == 0 {
                        // HTTP/1.0 clients keep the connection only when told so.
                        response
                            .headers
                            .push(("Connection", "keep-alive".to_string()));
                    }
                    self.queue(&response, request.method == "HEAD", request.keep_alive);
                    if !request.keep_alive {
                        self.phase = Phase::CloseAfterFlush;
                    }
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
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .chain(
                response
                    .dynamic_headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            .collect();
        http1::encode_response_with_reason(
            &mut self.outbuf,
            response.status,
            response.reason.as_deref(),
            &headers,
            &response.body,
            head_only,
            keep_alive,
        );
    }

    fn flush(&mut self, now: Instant, traffic: &mut Traffic) -> bool {
        let mut progressed = false;
        while self.out_pos < self.outbuf.len() && self.phase != Phase::Closed {
            match self.stream.write(&self.outbuf[self.out_pos..]) {
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
                let _ = self.stream.shutdown(Shutdown::Write);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection over loopback TCP, its peer, and the peer's writer thread's data.
    fn pair() -> io::Result<(Conn, std::net::TcpStream)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        server.set_nonblocking(true)?;
        Ok((
            Conn::new(TcpStream::from_std(server), Instant::now()),
            client,
        ))
    }

    #[test]
    fn one_drive_reads_at_most_its_budget_even_when_discarding() -> io::Result<()> {
        let limits = Limits {
            max_header_size: 1 << 20,
            max_body_size: 10 << 20,
        };
        let (mut conn, mut client) = pair()?;
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
