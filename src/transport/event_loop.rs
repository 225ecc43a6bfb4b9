//! The http worker's event loop: one thread, one mio poller over the listening sockets, the
//! client connections, the signal self-pipe and the postmaster-alive pipe. Requests run
//! inline (their SQL is the only blocking step, bounded by pg_rest.statement_timeout).

use crate::app::App;
use crate::stats::WorkerSlot;
use crate::transport::conn::{Conn, Phase, Traffic, READ_CHUNK};
use crate::transport::listener;
use crate::worker::config::Config;
use crate::worker::signals;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use slab::Slab;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

const WAKE: Token = Token(usize::MAX - 1);
const POSTMASTER: Token = Token(usize::MAX - 2);
/// Tokens below this are listeners; connection `k` is `Token(CONN_BASE + k)`.
const CONN_BASE: usize = 1 << 16;
/// How often deadlines are checked when no event arrives.
const TICK: Duration = Duration::from_millis(250);
/// How long a shutting-down worker waits for queued responses to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const EVENTS_CAPACITY: usize = 1024;
/// Connections beyond max_connections kept open at once to deliver their 503; more are closed
/// without a word (the 503 is politeness, not a resource to exhaust).
const MAX_REFUSED_LINGERING: usize = 64;

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Slab<Conn>,
    /// Connections being served (not counting refused ones lingering on their 503).
    open: usize,
    /// Refused connections still lingering on their 503.
    refused: usize,
    /// Connections the process's descriptor limit leaves room for.
    fd_budget: usize,
    /// `accept` ran out of descriptors or memory; retried on the tick.
    accept_paused: bool,
    /// Reused key list for the deadline sweep.
    conns_scratch: Vec<usize>,
    /// The one buffer every connection reads into (allocated and zeroed once).
    read_buf: Box<[u8]>,
    wake: OwnedFd,
    slot: &'static WorkerSlot,
}

impl EventLoop {
    pub fn new(config: &Config, wake: OwnedFd, slot: &'static WorkerSlot) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let mut listeners = listener::bind_all(&config.listen_addresses, config.port)?;
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(l, Token(i), Interest::READABLE)?;
        }
        poll.registry()
            .register(&mut SourceFd(&wake.as_raw_fd()), WAKE, Interest::READABLE)?;
        // SAFETY: PostgreSQL's postmaster-alive pipe: readable (EOF) once the postmaster dies.
        let pm_fd = unsafe { pg_sys::postmaster_alive_fds[pg_sys::POSTMASTER_FD_WATCH as usize] };
        poll.registry()
            .register(&mut SourceFd(&pm_fd), POSTMASTER, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            listeners,
            conns: Slab::new(),
            open: 0,
            refused: 0,
            fd_budget: listener::raise_fd_limit(),
            accept_paused: false,
            conns_scratch: Vec::new(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            wake,
            slot,
        })
    }

    /// Serves until SIGTERM (then drains) or postmaster death (then exits at once).
    pub fn run(mut self, mut app: App) {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let mut last_tick = Instant::now();
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    quiet_log!("pg_rest http worker: poll failed: {e}");
                    return;
                }
            }
            for event in events.iter() {
                // Per event: a request before this one may have run its SQL for a while.
                let now = Instant::now();
                match event.token() {
                    WAKE => signals::drain(&self.wake),
                    POSTMASTER => {
                        // The postmaster is gone: no one to answer to; exit without cleanup.
                        // SAFETY: ends the process.
                        unsafe { pg_sys::proc_exit(1) }
                    }
                    Token(i) if i < CONN_BASE => {
                        if shutdown_deadline.is_none() {
                            self.accept(i, &mut app, now);
                        }
                    }
                    Token(t) => self.drive(t - CONN_BASE, &mut app, now),
                }
            }
            signals::absorb_interrupts();
            let now = Instant::now();
            if signals::take_sighup() {
                crate::worker::config::reload_config_file();
                app.reload(Config::load());
            }
            if signals::terminating() && shutdown_deadline.is_none() {
                shutdown_deadline = Some(now + SHUTDOWN_GRACE);
                self.stop_listening();
            }
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.tick(&mut app, now, shutdown_deadline.is_none());
            }
            if let Some(deadline) = shutdown_deadline {
                self.close_quiet();
                if self.conns.is_empty() || now >= deadline {
                    return;
                }
            }
        }
    }

    /// Periodic work: deadlines, a paused accept, and the statistics PostgreSQL expects a
    /// background worker to flush itself (rate-limited by PostgreSQL to once a second).
    fn tick(&mut self, app: &mut App, now: Instant, accepting: bool) {
        self.check_timeouts(app, now);
        if accepting && std::mem::take(&mut self.accept_paused) {
            for i in 0..self.listeners.len() {
                self.accept(i, app, now);
            }
        }
        crate::execute::guarded_void(|| unsafe {
            pg_sys::pgstat_report_stat(false);
        });
    }

    fn accept(&mut self, listener: usize, app: &mut App, now: Instant) {
        loop {
            let stream = match self.listeners[listener].accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_resources(&e) => {
                    // The backlog stays; edge-triggered, so retry on the tick, not an event.
                    if !self.accept_paused {
                        quiet_log!("pg_rest http worker: accept paused: {e}");
                    }
                    self.accept_paused = true;
                    return;
                }
                // Interrupted, or a connection that died in the backlog: take the next one.
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            let mut conn = Conn::new(stream, now);
            if self.open >= self.max_open(app) {
                if self.refused >= MAX_REFUSED_LINGERING {
                    continue; // dropping the stream closes it
                }
                conn.refuse();
                self.refused += 1;
            } else {
                self.open += 1;
                WorkerSlot::add(&self.slot.connections, 1);
            }
            let key = self.conns.insert(conn);
            let registered = match self.conns.get_mut(key) {
                Some(c) => {
                    self.poll
                        .registry()
                        .register(&mut c.stream, Token(CONN_BASE + key), c.interest)
                }
                None => continue,
            };
            if registered.is_err() {
                self.remove(key);
                continue;
            }
            self.drive(key, app, now);
        }
    }

    /// `pg_rest.max_connections`, bounded by the file descriptors this process may open.
    fn max_open(&self, app: &App) -> usize {
        app.config().max_connections.min(self.fd_budget)
    }

    /// Lets one connection make progress. A panic or ERROR outside a request's transaction (a
    /// bug) closes that connection only; the worker and its other clients go on.
    fn drive(&mut self, key: usize, app: &mut App, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let limits = app.config().limits;
        let scratch = &mut self.read_buf;
        let driven = PgTryBuilder::new(AssertUnwindSafe(|| {
            Some(conn.drive(app, &limits, now, scratch))
        }))
        .catch_others(|e| {
            quiet_log!("pg_rest http worker: connection dropped after an internal error: {e:?}");
            None
        })
        .execute();
        match driven {
            Some(traffic) => self.count(traffic),
            None => conn.phase = Phase::Closed,
        }
        self.update(key);
    }

    /// Re-registers interest after a state change, or drops a finished connection.
    fn update(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase == Phase::Closed {
            self.remove(key);
            return;
        }
        let wanted = conn.wanted_interest();
        if wanted != conn.interest {
            conn.interest = wanted;
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(CONN_BASE + key), wanted)
                .is_err()
            {
                self.remove(key);
            }
        }
    }

    fn remove(&mut self, key: usize) {
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if conn.refused {
            self.refused -= 1;
        } else {
            self.open -= 1;
            WorkerSlot::add(&self.slot.connections, -1);
        }
    }

    fn count(&self, t: Traffic) {
        if t.requests > 0 {
            WorkerSlot::add(&self.slot.requests, t.requests as i64);
            WorkerSlot::add(&self.slot.errors, t.errors as i64);
        }
        if t.bytes_in > 0 {
            WorkerSlot::add(&self.slot.bytes_in, t.bytes_in as i64);
        }
        if t.bytes_out > 0 {
            WorkerSlot::add(&self.slot.bytes_out, t.bytes_out as i64);
        }
    }

    fn check_timeouts(&mut self, app: &App, now: Instant) {
        self.conns_scratch.clear();
        self.conns_scratch.extend(self.conns.iter().map(|(k, _)| k));
        let config = app.config();
        for i in 0..self.conns_scratch.len() {
            let key = self.conns_scratch[i];
            if let Some(conn) = self.conns.get_mut(key) {
                let traffic = conn.check_timeouts(now, config.idle_timeout, config.request_timeout);
                self.count(traffic);
                self.update(key);
            }
        }
    }

    fn stop_listening(&mut self) {
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
    }

    /// At shutdown: connections with nothing in flight close now; the rest finish writing.
    fn close_quiet(&mut self) {
        let quiet: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_quiet())
            .map(|(k, _)| k)
            .collect();
        for key in quiet {
            self.remove(key);
        }
    }
}

/// Accept errors that mean "no room now" rather than "this connection failed".
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
