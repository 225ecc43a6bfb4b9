//! The WebSocket side of a connection, after HTTP/1.1's 101: `tungstenite` decodes and
//! encodes frames (fragments, masking, ping/pong, the close handshake) over the non-blocking
//! transport; this layer answers text messages through the [`Handler`] and turns the
//! protocol's failures into their close codes: 1007 for text that is not UTF-8, 1009 for a
//! message over `pg_rest.max_body_size`, 1002 for a protocol violation, 1003 for binary
//! data, and 1008 for a client that does not read what it is sent (its buffer is bounded).

use crate::transport::conn::{Driven, Handler, Phase};
use crate::transport::io::{Counters, Shared};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocket as Socket, WebSocketConfig};
use tungstenite::Message;

/// Output one connection may have waiting for a client that does not read: then 1008.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Pushed frames (realtime events) one connection may hold beyond what the socket took:
/// past it the client is too slow, and is closed with 1008 (the close frame still fits).
pub const MAX_BACKLOG: usize = 4 * 1024 * 1024;
/// Messages one `drive` call may answer before the other connections get their turn.
const MESSAGES_PER_DRIVE: usize = 64;
/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub struct WebSocket {
    socket: Socket<WsIo>,
    counters: Counters,
    pub phase: Phase,
    pub last_active: Instant,
    /// When pg_rest sent its close frame.
    closing_since: Option<Instant>,
    /// Pushed frames not yet handed to tungstenite (it takes them while the socket does),
    /// and their bytes.
    backlog: VecDeque<String>,
    backlog_bytes: usize,
}

impl WebSocket {
    /// Takes over after the 101 was written; `leftover` is what the client sent after its
    /// handshake request (frames, possibly).
    pub fn new(io: Shared, leftover: Vec<u8>, max_message: usize, now: Instant) -> WebSocket {
        let counters = Counters::default();
        let config = WebSocketConfig::default()
            .write_buffer_size(0)
            .max_write_buffer_size(MAX_OUTPUT)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let transport = WsIo {
            io,
            counters: counters.clone(),
        };
        WebSocket {
            socket: Socket::from_partially_read(transport, leftover, Role::Server, Some(config)),
            counters,
            phase: Phase::Open,
            last_active: now,
            closing_since: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
        }
    }

    /// Reads and answers messages, then writes, until the socket or the budget stops it.
    pub fn drive(&mut self, app: &mut impl Handler, now: Instant) -> Driven {
        let mut driven = Driven::default();
        let mut budget = MESSAGES_PER_DRIVE;
        while self.phase != Phase::Closed {
            if budget == 0 {
                driven.yielded = true;
                break;
            }
            budget -= 1;
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    driven.traffic.requests += 1;
                    if let Some(reply) = app.message(text.as_str()) {
                        if let Err(e) = self.socket.write(Message::text(reply)) {
                            self.fail(e, now);
                        }
                    }
                }
                Ok(Message::Binary(_)) => {
                    driven.traffic.requests += 1;
                    driven.traffic.errors += 1;
                    self.close(
                        CloseCode::Unsupported,
                        "binary messages are not supported",
                        now,
                    );
                }
                // Pings are answered by tungstenite at the next write or flush; a client's
                // close frame is answered the same way.
                Ok(_) => {}
                Err(e) => {
                    let stop =
                        matches!(&e, WsError::Io(e) if e.kind() == io::ErrorKind::WouldBlock);
                    if !stop && self.closing_since.is_some() {
                        // After pg_rest's close frame a failing read ends the connection:
                        // tungstenite keeps a header it cannot parse (an unknown opcode) in
                        // its buffer and fails on it at every read, which would spin the
                        // worker until CLOSE_WAIT.
                        self.phase = Phase::Closed;
                    } else {
                        self.fail(e, now);
                    }
                    if stop {
                        break;
                    }
                }
            }
        }
        if self.phase != Phase::Closed {
            if let Err(e) = self.socket.flush() {
                self.fail(e, now);
            }
            self.pump(now);
        }
        let (bytes_in, bytes_out) = self.counters.take_counts();
        driven.traffic.bytes_in += bytes_in;
        driven.traffic.bytes_out += bytes_out;
        if bytes_in + bytes_out > 0 {
            self.last_active = now;
        }
        driven
    }

    /// Queues a text frame the application pushes (a realtime event); what the socket does
    /// not take now waits in the backlog. False when the connection is closing, or when the
    /// backlog passes [`MAX_BACKLOG`]: a client that does not read is closed with 1008, and
    /// memory stays bounded.
    pub fn push(&mut self, text: String, now: Instant) -> bool {
        if self.phase != Phase::Open || self.closing_since.is_some() {
            return false;
        }
        self.backlog_bytes += text.len();
        self.backlog.push_back(text);
        if self.backlog_bytes > MAX_BACKLOG {
            self.backlog.clear();
            self.backlog_bytes = 0;
            self.close(CloseCode::Policy, "client does not read its messages", now);
            return false;
        }
        self.pump(now);
        true
    }

    /// Hands backlog frames to tungstenite while the socket takes them.
    fn pump(&mut self, now: Instant) {
        while !self.counters.write_blocked() && self.closing_since.is_none() {
            let Some(text) = self.backlog.pop_front() else {
                break;
            };
            self.backlog_bytes -= text.len();
            // Taken by tungstenite even when the socket is full (then it waits in its
            // buffer, and the next WRITABLE edge writes it).
            if let Err(e) = self.socket.write(Message::text(text)) {
                self.fail(e, now);
            }
        }
    }

    /// Frames wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.counters.write_blocked() || !self.backlog.is_empty()
    }

    /// Nothing is in flight on a WebSocket between messages.
    pub fn is_quiet(&self) -> bool {
        !self.wants_write()
    }

    /// Server shutdown: close 1001 (going away).
    pub fn shut_down(&mut self, now: Instant) {
        self.close(CloseCode::Away, "server shutting down", now);
    }

    /// Idle clients are closed like HTTP ones (a client that pings stays); a close handshake
    /// the client does not finish ends after `CLOSE_WAIT`.
    pub fn check_timeouts(&mut self, now: Instant, idle: Duration) {
        match self.closing_since {
            Some(t) if now.duration_since(t) >= CLOSE_WAIT => self.phase = Phase::Closed,
            None if now.duration_since(self.last_active) >= idle => {
                self.close(CloseCode::Away, "idle timeout", now)
            }
            _ => {}
        }
    }

    /// Maps a failed read or write to what the connection does next (a `WouldBlock` is
    /// nothing: the next edge resumes it).
    fn fail(&mut self, e: WsError, now: Instant) {
        match e {
            WsError::Io(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            WsError::Utf8(_) => self.close(CloseCode::Invalid, "text is not UTF-8", now),
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
                self.close(CloseCode::Size, "message over pg_rest.max_body_size", now)
            }
            WsError::Protocol(ProtocolError::InvalidCloseSequence) => self.phase = Phase::Closed,
            WsError::Protocol(_) | WsError::Capacity(_) => {
                self.close(CloseCode::Protocol, "protocol error", now)
            }
            // The client does not read: its output reached the bound. The close frame may
            // not fit either; then the connection is simply dropped.
            WsError::WriteBufferFull(_) => {
                self.close(CloseCode::Policy, "client does not read its messages", now);
                if self.counters.write_blocked() {
                    self.phase = Phase::Closed;
                }
            }
            _ => self.phase = Phase::Closed,
        }
    }

    fn close(&mut self, code: CloseCode, reason: &str, now: Instant) {
        if self.closing_since.is_some() {
            return;
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        match self.socket.close(Some(frame)) {
            Ok(()) => self.closing_since = Some(now),
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.closing_since = Some(now)
            }
            Err(_) => self.phase = Phase::Closed,
        }
    }
}

/// The transport as `tungstenite` needs it, counting what moves.
struct WsIo {
    io: Shared,
    counters: Counters,
}

impl Read for WsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io.read(buf)?;
        self.counters.read(n);
        Ok(n)
    }
}

impl Write for WsIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.io.write(buf) {
            Ok(n) => {
                self.counters.wrote(n);
                Ok(n)
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.counters.blocked();
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}
