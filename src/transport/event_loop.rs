//! The http worker's event loop: one thread, one mio poller over the server's listening
//! sockets, the client connections, the signal self-pipe and the postmaster-alive pipe.
//!
//! Requests run inline: their SQL is the one blocking step, and while it runs this worker's
//! other connections wait (new connections go to a worker waiting in its poll, see
//! `listener`). It is bounded by `pg_rest.statement_timeout` (30 s by default) and the
//! server's `statement_timeout`, whichever is shorter.
//!
//! Besides epoll's edges the loop keeps a ready queue: a connection that used up its budget
//! for one wake-up (reads, requests) is queued and driven again after the other events, so a
//! fast sender or a deep pipeline cannot hold the loop, and no edge is needed to resume it.

use crate::app::App;
use crate::realtime::hub::Push;
use crate::stats::WorkerSlot;
use crate::transport::conn::{Conn, Phase, Traffic, READ_CHUNK};
use crate::transport::io::Transport;
use crate::transport::listener::{self, AcceptEnd};
use crate::transport::tls::{TlsMode, TlsStream};
use crate::transport::upstream::{self, POOL_SIZE};
use crate::worker::config::Config;
use crate::worker::signals;
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pg_rest_core::settings::MAX_READ_REPLICAS;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use slab::Slab;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

const WAKE: Token = Token(usize::MAX - 1);
const POSTMASTER: Token = Token(usize::MAX - 2);
/// The realtime feed (the socket from the realtime worker).
const FEED: Token = Token(usize::MAX - 3);
/// Tokens below this are listeners; connection `k` is `Token(CONN_BASE + k)`.
const CONN_BASE: usize = 1 << 16;
/// How often deadlines are checked when no event arrives.
const TICK: Duration = Duration::from_millis(250);
/// How often reads waiting for this standby's replay (read-your-writes) look again.
const REPLAY_CHECK: Duration = Duration::from_millis(1);
/// How long a shutting-down worker waits for queued responses to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const EVENTS_CAPACITY: usize = 1024;
/// Pools of links out of a worker: the primary's, and one per read replica.
const POOLS: usize = 1 + MAX_READ_REPLICAS;
/// How much longer than `pg_rest.request_timeout` a forwarded request may take before its
/// link is dropped (the primary's statement timeout normally ends it first).
const FORWARD_GRACE: Duration = Duration::from_secs(5);
/// Connections beyond max_connections kept open at once to deliver their 503; more are closed
/// without a word (the 503 is politeness, not a resource to exhaust).
const MAX_REFUSED_LINGERING: usize = 64;
/// Connections taken from the shared queue per readiness report; the level-triggered
/// registration reports the socket again while more wait.
const ACCEPTS_PER_WAKEUP: usize = 4;
/// Connections a worker may hold beyond an even share of the server's before it leaves new
/// ones to the others (see `EventLoop::over_share`).
const SHARE_SLACK: i64 = 2;

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// Listeners are deregistered while accepting is paused (else a level-triggered
    /// registration would report them at every poll).
    listening: bool,
    conns: Slab<Conn>,
    /// Connections to drive again without waiting for an edge (they used up their budget).
    ready: Vec<usize>,
    /// Connections holding responses until the WAL is flushed (group commit).
    awaiting: Vec<usize>,
    /// The ready queue being worked through (kept to reuse its allocation).
    ready_scratch: Vec<usize>,
    /// Accepted streams of one round (kept to reuse its allocation).
    accepted: Vec<TcpStream>,
    /// Connections being served (not counting refused ones lingering on their 503).
    open: usize,
    /// Refused connections still lingering on their 503.
    refused: usize,
    /// Connections the process's descriptor limit leaves room for.
    fd_budget: usize,
    /// `accept` ran out of descriptors or memory, or kept failing; retried on the tick.
    accept_paused: bool,
    /// Not listening because this worker holds more than its share of connections; listens
    /// again once it does not (or at the next tick, should the others not be accepting).
    share_paused: bool,
    /// Reused key list for the deadline sweep.
    conns_scratch: Vec<usize>,
    /// The one buffer every connection reads into (allocated and zeroed once).
    read_buf: Box<[u8]>,
    wake: OwnedFd,
    slot: &'static WorkerSlot,
    /// This worker's index (its statistics slot and subscription board).
    index: usize,
    /// Connections removed whose realtime subscriptions are still to be dropped (before the
    /// key is reused, see [`EventLoop::settle_removed`]).
    removed: Vec<usize>,
    /// Connections realtime pushed to this pass, to be driven (written).
    pushed: Vec<usize>,
    /// Inside [`EventLoop::realtime`] (whose drives must not start another).
    delivering: bool,
}

impl EventLoop {
    pub fn new(wake: OwnedFd, index: usize) -> io::Result<EventLoop> {
        let slot = crate::stats::slot(index);
        // A predecessor's subscriptions (it died) are not this worker's.
        crate::realtime::board::write(index, "");
        let poll = Poll::new()?;
        let listeners: Vec<TcpListener> =
            listener::inherited()?.into_iter().map(|(_, l)| l).collect();
        for (i, l) in listeners.iter().enumerate() {
            listener::register_exclusive(&poll, l, Token(i))?;
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
            listening: true,
            conns: Slab::new(),
            ready: Vec::new(),
            awaiting: Vec::new(),
            ready_scratch: Vec::new(),
            accepted: Vec::new(),
            open: 0,
            refused: 0,
            fd_budget: listener::raise_fd_limit(),
            accept_paused: false,
            share_paused: false,
            conns_scratch: Vec::new(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            wake,
            slot,
            index,
            removed: Vec::new(),
            pushed: Vec::new(),
            delivering: false,
        })
    }

    /// Serves until SIGTERM (then drains) or postmaster death (then exits at once).
    pub fn run(mut self, mut app: App) {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let mut last_tick = Instant::now();
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            let timeout = if !self.ready.is_empty() || !self.awaiting.is_empty() {
                Duration::ZERO
            } else if app.is_waiting() {
                REPLAY_CHECK
            } else {
                TICK
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
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
                    FEED => deliver_feed(&mut app),
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
                    Token(t)
                        if (upstream::TOKEN_BASE..upstream::TOKEN_BASE + POOLS * POOL_SIZE)
                            .contains(&t) =>
                    {
                        app.upstream_ready(Token(t), self.poll.registry());
                    }
                    Token(t) => {
                        if event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.conns.get_mut(t - CONN_BASE) {
                                conn.peer_closing();
                            }
                        }
                        self.drive(t - CONN_BASE, &mut app, now)
                    }
                }
            }
            self.drive_ready(&mut app);
            self.group_flush(&mut app);
            self.forwarding(&mut app);
            self.realtime(&mut app);
            if self.share_paused && !self.over_share() {
                self.share_paused = false;
                self.accept_paused = false;
                self.listen();
            }
            signals::absorb_interrupts();
            let now = Instant::now();
            if signals::take_sighup() {
                crate::worker::config::reload_config_file();
                app.reload(Config::reload(app.config()), self.poll.registry());
            }
            if signals::terminating() && shutdown_deadline.is_none() {
                shutdown_deadline = Some(now + SHUTDOWN_GRACE);
                self.stop_listening();
                self.shut_down_conns(&mut app, now);
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

    /// Realtime's part of a pass (and of a drive that served requests): what the feed
    /// brought is delivered, a new feed is polled, and what was pushed to connections is
    /// written. Not re-entered from the drives it makes.
    fn realtime(&mut self, app: &mut App) {
        let nested = std::mem::replace(&mut self.delivering, true);
        self.realtime_pass(app);
        self.delivering = nested;
    }

    fn realtime_pass(&mut self, app: &mut App) {
        self.settle_removed(app);
        // Reads are non-blocking: what arrived (or was read ahead by a subscription) goes out.
        if app.hub.has_feed() {
            deliver_feed(app);
        }
        if let Some(fd) = app.hub.unregistered_feed() {
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut SourceFd(&fd), FEED, Interest::READABLE)
            {
                quiet_log!("pg_rest http worker: cannot poll the realtime feed: {e}");
            }
        }
        let now = Instant::now();
        for (key, sub, push) in app.take_pushes() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            match push {
                Push::Frame(text) => {
                    if !conn.push_message(text, now) {
                        app.hub.note_dropped(sub);
                    }
                }
                Push::Piece { stream, bytes } => {
                    if !conn.push_stream(stream, &bytes) {
                        app.hub.note_dropped(sub);
                        app.hub.drop_stream(key, stream);
                    }
                }
                Push::End { stream } => {
                    conn.end_stream(stream);
                }
            }
            self.pushed.push(key);
        }
        let mut pushed = std::mem::take(&mut self.pushed);
        pushed.sort_unstable();
        pushed.dedup();
        for key in pushed.drain(..) {
            self.drive(key, app, now);
        }
        self.pushed = pushed;
        self.settle_removed(app);
    }

    /// Drops the realtime subscriptions of removed connections; before a new connection may
    /// take a removed one's key.
    fn settle_removed(&mut self, app: &mut App) {
        for key in self.removed.drain(..) {
            app.forget_conn(key);
        }
    }

    /// Periodic work: deadlines, a paused accept, and the statistics PostgreSQL expects a
    /// background worker to flush itself (rate-limited by PostgreSQL to once a second).
    fn tick(&mut self, app: &mut App, now: Instant, accepting: bool) {
        self.check_timeouts(app, now);
        let limit = app.config().request_timeout + FORWARD_GRACE;
        app.tick_upstreams(self.poll.registry(), limit);
        app.hub.expire(crate::app::unix_now());
        if let Some(text) = app.hub.board_text() {
            crate::realtime::board::write(self.index, &text);
        }
        if accepting && std::mem::take(&mut self.accept_paused) {
            self.listen();
        }
        crate::execute::guarded_void(|| unsafe {
            pg_sys::pgstat_report_stat(false);
        });
    }

    /// Takes a few connections from the shared queue and serves what they already sent.
    fn accept(&mut self, listener: usize, app: &mut App, now: Instant) {
        let Some(l) = self.listeners.get(listener) else {
            return;
        };
        let mut accepted = std::mem::take(&mut self.accepted);
        if let AcceptEnd::Pause(e) = listener::accept_some(l, ACCEPTS_PER_WAKEUP, &mut accepted) {
            quiet_log!("pg_rest http worker: accept paused until the next tick: {e}");
            self.pause_listening();
        }
        let took_some = !accepted.is_empty();
        for stream in accepted.drain(..) {
            self.open_conn(stream, app, now);
        }
        self.accepted = accepted;
        if took_some && self.over_share() {
            self.share_paused = true;
            self.pause_listening();
        }
    }

    /// Whether this worker holds more than an even share of the server's open connections
    /// (plus `SHARE_SLACK`). An `EPOLLEXCLUSIVE` wake-up goes to the first worker waiting in
    /// its poll, in registration order, so without this an idle first worker would take every
    /// connection of a burst; a worker over its share stops listening and the wake-ups go to
    /// the others. A busy worker is not woken at all, share or not.
    fn over_share(&self) -> bool {
        let (total, live) = crate::stats::open_connections();
        over_share(self.open as i64, total, live)
    }

    fn open_conn(&mut self, stream: TcpStream, app: &mut App, now: Instant) {
        self.settle_removed(app);
        let _ = stream.set_nodelay(true);
        let over = self.open >= self.max_open(app);
        let transport = match app.config().tls.mode() {
            TlsMode::Plain => Transport::Plain(stream),
            // Over TLS a polite 503 costs a handshake: a refused client is just closed.
            TlsMode::Tls(_) if over => return,
            TlsMode::Tls(config) => match TlsStream::new(config, stream) {
                Ok(tls) => Transport::tls(tls),
                Err(_) => return,
            },
            // TLS is asked for but no certificate could be loaded: never serve it plain.
            TlsMode::Unavailable => return,
        };
        let mut conn = Conn::new(transport, now);
        if over {
            if self.refused >= MAX_REFUSED_LINGERING {
                return; // dropping the stream closes it
            }
            conn.refuse();
            self.refused += 1;
        } else {
            self.open += 1;
            WorkerSlot::add(&self.slot.connections, 1);
        }
        let key = self.conns.insert(conn);
        let registered = match self.conns.get_mut(key) {
            Some(c) => self.poll.registry().register(
                &mut SourceFd(&c.raw_fd()),
                Token(CONN_BASE + key),
                c.interest,
            ),
            None => return,
        };
        if registered.is_err() {
            self.remove(key);
            return;
        }
        self.drive(key, app, now);
    }

    /// Stops the listeners from being reported until [`Self::listen`] (on the tick).
    fn pause_listening(&mut self) {
        self.accept_paused = true;
        if std::mem::take(&mut self.listening) {
            for l in &self.listeners {
                listener::deregister(&self.poll, l);
            }
        }
    }

    fn listen(&mut self) {
        if self.listening {
            return;
        }
        self.listening = true;
        for (i, l) in self.listeners.iter().enumerate() {
            if let Err(e) = listener::register_exclusive(&self.poll, l, Token(i)) {
                quiet_log!("pg_rest http worker: cannot poll its listening socket: {e}");
            }
        }
    }

    /// Drives the connections that used up their budget, once each, in queue order.
    fn drive_ready(&mut self, app: &mut App) {
        let mut queued =
            std::mem::replace(&mut self.ready, std::mem::take(&mut self.ready_scratch));
        for key in queued.drain(..) {
            let still_queued = self
                .conns
                .get_mut(key)
                .is_some_and(|c| std::mem::take(&mut c.queued));
            if still_queued {
                self.drive(key, app, Instant::now());
            }
        }
        self.ready_scratch = queued;
    }

    /// Group commit: one WAL flush for every commit of this pass whose response waits for it
    /// (`Reply::Pending`), then those responses go out. A failed flush (an ERROR: the WAL
    /// could not be written) leaves their durability unknown: the connections are closed
    /// without an answer rather than told "committed".
    fn group_flush(&mut self, app: &mut App) {
        if self.awaiting.is_empty() {
            return;
        }
        let mut keys = std::mem::take(&mut self.awaiting);
        let target = keys
            .iter()
            .filter_map(|&k| self.conns.get(k).and_then(Conn::awaits_flush))
            .max();
        let flushed = match target {
            Some(lsn) => crate::execute::flush_wal(lsn),
            None => Some(0),
        };
        let now = Instant::now();
        for &key in &keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.awaiting = false;
            match flushed {
                Some(lsn) => {
                    conn.release(lsn);
                    self.drive(key, app, now);
                }
                None => {
                    conn.close();
                    self.update(key);
                }
            }
        }
        // The list's allocation back, with what the drives above queued meanwhile.
        keys.clear();
        keys.append(&mut self.awaiting);
        self.awaiting = keys;
    }

    /// Forwarded requests (a standby's writes): runs queued this pass go to the primary, and
    /// the answers that came back go to their connections, whose next requests may forward
    /// again. A bug in building an answer (a panic) is logged; the worker goes on.
    fn forwarding(&mut self, app: &mut App) {
        loop {
            let now = Instant::now();
            app.pump_upstreams(self.poll.registry());
            let answers = PgTryBuilder::new(AssertUnwindSafe(|| app.forwarded()))
                .catch_others(|e| {
                    quiet_log!(
                        "pg_rest http worker: forwarded answers lost to an internal error: {e:?}"
                    );
                    Vec::new()
                })
                .execute();
            if answers.is_empty() {
                return;
            }
            for (key, id, response) in answers {
                if let Some(conn) = self.conns.get_mut(key) {
                    let traffic = conn.complete(id, response);
                    self.count(traffic);
                    self.drive(key, app, now);
                }
            }
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
        app.set_conn(key);
        let scratch = &mut self.read_buf;
        let driven = PgTryBuilder::new(AssertUnwindSafe(|| {
            Some(conn.drive(app, &limits, now, scratch))
        }))
        .catch_others(|e| {
            quiet_log!("pg_rest http worker: connection dropped after an internal error: {e:?}");
            None
        })
        .execute();
        let served = driven.is_some_and(|t| t.requests > 0);
        match driven {
            Some(traffic) => self.count(traffic),
            None => conn.close(),
        }
        self.update(key);
        // A request may have run for a while: what the realtime feed brought meanwhile goes
        // out now, not after the rest of the pass (more requests, perhaps as long).
        if served && app.hub.has_feed() && !self.delivering {
            self.realtime(app);
        }
    }

    /// Re-registers interest after a state change, queues a connection that has more to do,
    /// or drops a finished one.
    fn update(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase() == Phase::Closed {
            self.remove(key);
            return;
        }
        if conn.yielded && !conn.queued {
            conn.queued = true;
            self.ready.push(key);
        }
        if !conn.awaiting && conn.awaits_flush().is_some() {
            conn.awaiting = true;
            self.awaiting.push(key);
        }
        let wanted = conn.wanted_interest();
        if wanted != conn.interest {
            conn.interest = wanted;
            if self
                .poll
                .registry()
                .reregister(
                    &mut SourceFd(&conn.raw_fd()),
                    Token(CONN_BASE + key),
                    wanted,
                )
                .is_err()
            {
                self.remove(key);
            }
        }
    }

    fn remove(&mut self, key: usize) {
        let conn = self.conns.remove(key);
        self.removed.push(key);
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&conn.raw_fd()));
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

    /// At shutdown: connections still queued stay for the other workers.
    fn stop_listening(&mut self) {
        self.pause_listening();
        self.listeners.clear();
    }

    /// At shutdown: each connection is told (HTTP/2's GOAWAY) and driven once to say it.
    fn shut_down_conns(&mut self, app: &mut App, now: Instant) {
        self.conns_scratch.clear();
        self.conns_scratch.extend(self.conns.iter().map(|(k, _)| k));
        for i in 0..self.conns_scratch.len() {
            let key = self.conns_scratch[i];
            if let Some(conn) = self.conns.get_mut(key) {
                conn.shut_down(now);
                self.drive(key, app, now);
            }
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

/// Delivers what the realtime feed brought. Its SQL runs in request boundaries of its own; a
/// bug (a panic, an ERROR outside them) is logged and the worker goes on, as for a
/// connection.
fn deliver_feed(app: &mut App) {
    PgTryBuilder::new(AssertUnwindSafe(|| app.process_feed()))
        .catch_others(|e| quiet_log!("pg_rest http worker: realtime delivery failed: {e:?}"))
        .execute();
}

/// `own` connections against `total` over `live` workers: more than the even share, rounded
/// up, plus `SHARE_SLACK`.
fn over_share(own: i64, total: i64, live: i64) -> bool {
    live > 1 && own > (total + live - 1) / live + SHARE_SLACK
}

#[cfg(test)]
mod tests {
    use super::over_share;

    #[test]
    fn a_worker_leaves_new_connections_to_the_others_beyond_its_share() {
        // Alone: never over.
        assert!(!over_share(500, 500, 1));
        // Two workers, all connections here: over once past twice the slack.
        assert!(!over_share(5, 5, 2));
        assert!(over_share(6, 6, 2));
        // Even enough.
        assert!(!over_share(27, 50, 2));
        assert!(over_share(28, 50, 2));
    }
}
