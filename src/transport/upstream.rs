//! The worker's connections to its primary, for the transactions a standby forwards
//! (docs/replicas.md): a few non-blocking sockets (TCP or UNIX) in the worker's own mio loop,
//! each speaking the protocol through [`pgwire::Client`]. Nothing here blocks: a connect
//! completes on a WRITABLE edge, reads stop at `WouldBlock`. Jobs wait in a queue for an idle
//! link (links are opened as jobs need them, up to [`POOL_SIZE`]); a link that breaks fails
//! its job, and a failed connect or login backs off, during which jobs are refused at once
//! (the client gets a 503 naming the cause) instead of waiting.
//!
//! `T` is the caller's tag for a job (the request's continuation), handed back with the job's
//! result.

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use pg_rest_core::conninfo::{Conninfo, Endpoint};
use pg_rest_core::pgwire::{Client, DbError, Event, Params, Query, Row};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Pool `p`'s link `i` polls as `Token(TOKEN_BASE + p * POOL_SIZE + i)`; below the event
/// loop's fixed tokens, far above its connections'.
pub const TOKEN_BASE: usize = 1 << 40;
/// Connections per worker to the primary: forwarded requests are writes, a fraction of the
/// traffic, and each link carries one transaction at a time.
pub const POOL_SIZE: usize = 4;
/// How long a connect and login may take, and a job may wait for a link.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Back-off after a failed connect or login: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 16 * 1024;

/// Where the primary is and who logs in, resolved once per (re)load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    address: Address,
    params: Params,
    /// The endpoint as the log and error messages name it.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Target {
    /// The target a connection string names; the error says why it cannot be used. A host
    /// name is resolved here, at load, not in the loop (a changed address needs a reload).
    pub fn from_conninfo(info: &Conninfo, pgpass: Option<&str>) -> Result<Target, String> {
        info.check_supported()?;
        let (address, name) = match info.endpoint()? {
            Endpoint::Unix(path) => {
                let name = path.display().to_string();
                (Address::Unix(path), name)
            }
            Endpoint::Tcp { host, port } => {
                let addr = (host.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{host} has no address"))?;
                (Address::Tcp(addr), format!("{host}:{port}"))
            }
        };
        Ok(Target {
            address,
            params: info.params("pg_rest", pgpass),
            name,
        })
    }
}

/// Why a job has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The primary ran it and raised this error (the transaction is rolled back).
    Db(DbError),
    /// It could not be run, or its outcome is unknown (the link broke under it): why.
    Unavailable(String),
}

/// A job's end: its tag, and every statement's rows or why not. `open`: the link whose
/// transaction the job left open (`open` job), to be ended through [`Upstream::resume`].
pub struct Finished<T> {
    pub tag: T,
    pub result: Result<Vec<Vec<Row>>, Failure>,
    pub open: Option<usize>,
}

struct Job<T> {
    run: Vec<Query>,
    /// May leave its transaction open (`Client::run_open`).
    open: bool,
    tag: T,
    since: Instant,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn connect(address: &Address) -> io::Result<Socket> {
        Ok(match address {
            Address::Tcp(addr) => {
                let s = TcpStream::connect(*addr)?;
                let _ = s.set_nodelay(true);
                Socket::Tcp(s)
            }
            Address::Unix(path) => Socket::Unix(UnixStream::connect(path)?),
        })
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Socket::Tcp(s) => s,
            Socket::Unix(s) => s,
        }
    }

    /// Whether a connect in progress is done: Ok(false) while it is still under way.
    fn connected(&self) -> io::Result<bool> {
        let (error, peer) = match self {
            Socket::Tcp(s) => (s.take_error()?, s.peer_addr().map(drop)),
            Socket::Unix(s) => (s.take_error()?, s.peer_addr().map(drop)),
        };
        if let Some(e) = error {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }
}

struct Link<T> {
    socket: Socket,
    client: Client,
    connected: bool,
    /// Logged in: runs may be sent.
    ready: bool,
    job: Option<Job<T>>,
    /// Its transaction was left open by an open job: only that job's `resume` may use it.
    held: bool,
    opened: Instant,
    /// The pool's target generation it was opened for.
    generation: u64,
}

impl<T> Link<T> {
    fn idle(&self) -> bool {
        self.ready && self.job.is_none() && !self.held && self.client.is_idle()
    }
}

/// The pool: links, the jobs waiting for one, and the back-off state.
pub struct Upstream<T> {
    target: Result<Target, String>,
    links: Vec<Option<Link<T>>>,
    queue: VecDeque<Job<T>>,
    /// After a failed connect or login: no new try before this, jobs refused meanwhile.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The last connect or login failure, for the 503 while backing off.
    last_failure: String,
    finished: Vec<Finished<T>>,
    buf: Vec<u8>,
    /// Bumped by each change of target.
    generation: u64,
    /// Its first link's token.
    token_base: usize,
}

impl<T> Upstream<T> {
    /// Pool `index`, for `target` (or, when there is none, the reason every job is refused).
    pub fn new(index: usize, target: Result<Target, String>) -> Upstream<T> {
        Upstream {
            target,
            links: (0..POOL_SIZE).map(|_| None).collect(),
            queue: VecDeque::new(),
            retry_at: None,
            backoff: BACKOFF_FIRST,
            last_failure: String::new(),
            finished: Vec::new(),
            buf: vec![0; READ_CHUNK],
            generation: 0,
            token_base: TOKEN_BASE + index * POOL_SIZE,
        }
    }

    /// Takes a reloaded target. When it changed, idle links close now and busy ones once
    /// their job ends; the back-off starts over.
    pub fn retarget(&mut self, target: Result<Target, String>, registry: &Registry) {
        if target == self.target {
            return;
        }
        self.target = target;
        self.generation += 1;
        self.retry_at = None;
        self.backoff = BACKOFF_FIRST;
        for i in 0..POOL_SIZE {
            if self.links[i].as_ref().is_some_and(Link::idle) {
                self.close(i, registry);
            }
        }
    }

    /// Why a job would be refused right now (no target, or backing off after a failure).
    pub fn unavailable(&self, now: Instant) -> Option<String> {
        match &self.target {
            Err(why) => Some(why.clone()),
            Ok(_) if self.retry_at.is_some_and(|t| now < t) => Some(self.last_failure.clone()),
            Ok(_) => None,
        }
    }

    /// Queues a job (started by the next [`Upstream::pump`]).
    pub fn submit(&mut self, run: Vec<Query>, open: bool, tag: T, now: Instant) {
        self.queue.push_back(Job {
            run,
            open,
            tag,
            since: now,
        });
    }

    /// Ends the transaction an open job left on link `link` with `run` (written by the next
    /// [`Upstream::pump`]); the result comes as any job's. The tag back when the link is gone
    /// (its transaction went with it).
    pub fn resume(&mut self, link: usize, run: Vec<Query>, tag: T, now: Instant) -> Result<(), T> {
        let Some(l) = self.links.get_mut(link).and_then(Option::as_mut) else {
            return Err(tag);
        };
        if !l.held || !l.client.in_transaction() || !l.client.run(&run) {
            return Err(tag);
        }
        l.held = false;
        l.job = Some(Job {
            run: Vec::new(),
            open: false,
            tag,
            since: now,
        });
        Ok(())
    }

    /// Jobs that ended since the last call.
    pub fn take_finished(&mut self) -> Vec<Finished<T>> {
        std::mem::take(&mut self.finished)
    }

    /// Whether anything is in flight or waiting.
    pub fn busy(&self) -> bool {
        !self.queue.is_empty() || self.links.iter().flatten().any(|l| l.job.is_some())
    }

    /// The pool's index (its tokens' block).
    pub fn index(&self) -> usize {
        (self.token_base - TOKEN_BASE) / POOL_SIZE
    }

    /// Closes every link (the pool is dropped after a reload): their jobs fail.
    pub fn close_all(&mut self, registry: &Registry) {
        for i in 0..POOL_SIZE {
            if let Some(link) = self.close(i, registry) {
                if let Some(job) = link.job {
                    self.refuse(job, "the connection was closed by a reload".into());
                }
            }
        }
    }

    /// Whether `token` is one of this pool's links'.
    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_base + POOL_SIZE).contains(&token.0)
    }

    /// Links open now.
    pub fn links_open(&self) -> usize {
        self.links.iter().flatten().count()
    }

    /// Starts waiting jobs on idle links, opens links for the rest, and writes what the links
    /// have to send.
    pub fn pump(&mut self, registry: &Registry, now: Instant) {
        for i in 0..POOL_SIZE {
            if self.queue.is_empty() {
                break;
            }
            if self.links[i].as_ref().is_some_and(Link::idle) {
                if let Some(job) = self.queue.pop_front() {
                    self.start(i, job);
                }
            }
        }
        if !self.queue.is_empty() {
            self.open_links(registry, now);
        }
        for i in 0..POOL_SIZE {
            self.write(i, registry);
        }
    }

    /// A link's socket is ready: reads what arrived and acts on it.
    pub fn ready(&mut self, token: Token, registry: &Registry, now: Instant) {
        let i = token.0.wrapping_sub(self.token_base);
        if !self.connected(i, registry) {
            return;
        }
        loop {
            let Some(link) = self.links[i].as_mut() else {
                return;
            };
            match link.socket.read(&mut self.buf) {
                Ok(0) => {
                    return self.fail_link(i, registry, "the primary closed the connection".into())
                }
                Ok(n) => {
                    let events = link.client.received(&self.buf[..n]);
                    for event in events {
                        self.on_event(i, event, registry);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail_link(i, registry, format!("reading failed: {e}")),
            }
        }
        self.pump(registry, now);
    }

    /// Deadlines: a connect or login that takes too long, a job waiting too long for a link,
    /// a job running longer than `limit` (its link is dropped: the primary may be cut off).
    pub fn tick(&mut self, registry: &Registry, now: Instant, limit: Duration) {
        for i in 0..POOL_SIZE {
            let Some(link) = self.links[i].as_ref() else {
                continue;
            };
            if !link.ready && now.duration_since(link.opened) >= CONNECT_TIMEOUT {
                self.fail_link(i, registry, "connecting timed out".into());
            } else if link
                .job
                .as_ref()
                .is_some_and(|j| now.duration_since(j.since) >= limit)
            {
                self.fail_link(i, registry, "no answer in time".into());
            }
        }
        while self
            .queue
            .front()
            .is_some_and(|j| now.duration_since(j.since) >= CONNECT_TIMEOUT)
        {
            if let Some(job) = self.queue.pop_front() {
                self.refuse(job, "no connection became free in time".into());
            }
        }
    }

    fn start(&mut self, i: usize, job: Job<T>) {
        let Some(link) = self.links[i].as_mut() else {
            return self.queue.push_front(job);
        };
        let queued = if job.open {
            link.client.run_open(&job.run)
        } else {
            link.client.run(&job.run)
        };
        if queued {
            link.job = Some(job);
        } else {
            // A statement that cannot be sent: a NUL byte, which PostgreSQL text cannot hold.
            self.finished.push(Finished {
                tag: job.tag,
                result: Err(Failure::Db(DbError {
                    code: "22021".into(),
                    message: "invalid byte sequence for encoding \"UTF8\": 0x00".into(),
                    ..Default::default()
                })),
                open: None,
            });
        }
    }

    /// Opens links for the waiting jobs (one per job not covered by a link still logging
    /// in), unless backing off.
    fn open_links(&mut self, registry: &Registry, now: Instant) {
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        let Ok(target) = &self.target else {
            return;
        };
        let starting = self.links.iter().flatten().filter(|l| !l.ready).count();
        let mut wanted = self.queue.len().saturating_sub(starting);
        for i in 0..POOL_SIZE {
            if wanted == 0 {
                break;
            }
            if self.links[i].is_some() {
                continue;
            }
            let opened = Socket::connect(&target.address).and_then(|mut socket| {
                let token = Token(self.token_base + i);
                registry.register(
                    socket.source(),
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(socket)
            });
            match opened {
                Ok(socket) => {
                    self.links[i] = Some(Link {
                        socket,
                        client: Client::new(&target.params),
                        connected: false,
                        ready: false,
                        job: None,
                        held: false,
                        opened: now,
                        generation: self.generation,
                    });
                    wanted -= 1;
                }
                Err(e) => {
                    let why = format!("cannot connect to {}: {e}", target.name);
                    return self.back_off(why, now);
                }
            }
        }
    }

    fn on_event(&mut self, i: usize, event: Event, registry: &Registry) {
        let Some(link) = self.links[i].as_mut() else {
            return;
        };
        match event {
            Event::Ready => {
                link.ready = true;
                self.retry_at = None;
                self.backoff = BACKOFF_FIRST;
            }
            Event::Done(result) => {
                let open = link.client.in_transaction();
                link.held = open;
                if let Some(job) = link.job.take() {
                    self.finished.push(Finished {
                        tag: job.tag,
                        result: result.map_err(Failure::Db),
                        open: open.then_some(i),
                    });
                }
                // A retargeted pool's old link goes once it has no transaction.
                if !open && !self.serves_target(i) {
                    self.close(i, registry);
                }
            }
            Event::Broken(why) => self.fail_link(i, registry, why),
        }
    }

    /// Whether link `i` was opened for the current target (not one a reload replaced).
    fn serves_target(&self, i: usize) -> bool {
        self.links[i]
            .as_ref()
            .is_some_and(|l| l.generation == self.generation)
    }

    /// Whether link `i` exists and its connect has completed; a failed connect drops it.
    fn connected(&mut self, i: usize, registry: &Registry) -> bool {
        let Some(link) = self.links.get_mut(i).and_then(Option::as_mut) else {
            return false;
        };
        if link.connected {
            return true;
        }
        match link.socket.connected() {
            Ok(done) => link.connected = done,
            Err(e) => self.fail_link(i, registry, format!("cannot connect: {e}")),
        }
        self.links[i].as_ref().is_some_and(|l| l.connected)
    }

    /// Writes what link `i` has queued, as far as the socket takes it.
    fn write(&mut self, i: usize, registry: &Registry) {
        if !self.connected(i, registry) {
            return;
        }
        let Some(link) = self.links[i].as_mut() else {
            return;
        };
        while !link.client.output().is_empty() {
            match link.socket.write(link.client.output()) {
                Ok(n) => link.client.wrote(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail_link(i, registry, format!("writing failed: {e}")),
            }
        }
    }

    /// Drops link `i`; its job fails. A link that broke before it was logged in starts the
    /// back-off (the primary is down, or refuses the login).
    fn fail_link(&mut self, i: usize, registry: &Registry, why: String) {
        let Some(link) = self.close(i, registry) else {
            return;
        };
        let name = self
            .target
            .as_ref()
            .map_or("the primary", |t| t.name.as_str());
        let why = format!("{name}: {why}");
        if let Some(job) = link.job {
            let why = if link.ready {
                format!(
                    "the connection to the primary ({why}) was lost while it ran the request, \
                     which may or may not have committed"
                )
            } else {
                why.clone()
            };
            self.refuse(job, why);
        }
        if !link.ready {
            self.back_off(why, Instant::now());
        }
    }

    /// After a failed connect or login: no try before the back-off passes, the waiting jobs
    /// are refused, and the wait doubles for the next failure.
    fn back_off(&mut self, why: String, now: Instant) {
        if self.retry_at.is_none() {
            crate::quiet_log!(
                "pg_rest: cannot forward requests to the primary: {why}; retrying with back-off"
            );
        }
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_LAST);
        self.last_failure = why.clone();
        while let Some(job) = self.queue.pop_front() {
            self.refuse(job, why.clone());
        }
    }

    fn refuse(&mut self, job: Job<T>, why: String) {
        self.finished.push(Finished {
            tag: job.tag,
            result: Err(Failure::Unavailable(why)),
            open: None,
        });
    }

    fn close(&mut self, i: usize, registry: &Registry) -> Option<Link<T>> {
        let mut link = self.links[i].take()?;
        let _ = registry.deregister(link.socket.source());
        Some(link)
    }
}
