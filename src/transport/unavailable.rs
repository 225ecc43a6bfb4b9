//! Answers for connections that no http worker can serve. The listening sockets are open
//! from server start (`listener`), so while the supervisor starts no worker — the database
//! does not exist yet, or cannot be served — clients would wait in the accept queue until
//! they time out. The supervisor instead answers each one, once per tick, with a 503 that
//! says why, then closes it.

use mio::net::{TcpListener, TcpStream};
use pg_rest_core::error::ApiError;
use pg_rest_core::http1;
use pg_rest_core::response::error_response;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// Connections answered per tick; more wait for the next one.
const ANSWERS_PER_TICK: usize = 64;
/// How long an answered connection is drained before it closes, so the client reads the
/// answer instead of a reset caused by its own unread request bytes.
const LINGER: Duration = Duration::from_secs(1);
/// Answered connections kept draining at most; beyond, the oldest is closed.
const MAX_LINGERING: usize = 256;

/// The supervisor's stand-in for the http workers.
#[derive(Default)]
pub struct Unavailable {
    listeners: Option<Vec<TcpListener>>,
    lingering: Vec<(TcpStream, Instant)>,
}

impl Unavailable {
    /// Answers every waiting connection with a 503 carrying `why`; drains earlier ones.
    pub fn answer(&mut self, why: &str) {
        let listeners = self.listeners.get_or_insert_with(|| {
            crate::transport::listener::inherited()
                .map(|l| l.into_iter().map(|(_, l)| l).collect())
                .unwrap_or_default()
        });
        let mut response = Vec::new();
        let error = error_response(&ApiError::database_unavailable(why));
        let headers: Vec<(&str, &str)> = error
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        http1::encode_response(&mut response, 503, &headers, &error.body, false, false);
        let now = Instant::now();
        let mut accepted = Vec::new();
        for l in listeners.iter() {
            let _ = crate::transport::listener::accept_some(l, ANSWERS_PER_TICK, &mut accepted);
        }
        for mut stream in accepted {
            discard_input(&mut stream);
            // A fresh socket's send buffer holds this small answer whole.
            if stream.write_all(&response).is_ok() && stream.shutdown(Shutdown::Write).is_ok() {
                self.lingering.push((stream, now + LINGER));
            }
        }
        self.drain(now);
    }

    /// Drains and closes answered connections (also once workers serve again).
    pub fn drain(&mut self, now: Instant) {
        self.lingering
            .retain_mut(|(stream, until)| !discard_input(stream) && now < *until);
        if self.lingering.len() > MAX_LINGERING {
            let excess = self.lingering.len() - MAX_LINGERING;
            self.lingering.drain(..excess);
        }
    }
}

/// Reads and drops what the client sent; true once it closed its side (or the socket failed).
fn discard_input(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}
