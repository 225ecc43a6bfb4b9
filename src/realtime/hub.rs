//! An http worker's side of realtime: its connection to the realtime worker (the feed), its
//! subscriptions, and what is to be pushed to which client connection. The SQL it needs
//! (subscription checks, visibility per group) is the application's (`app::realtime`).

use pg_rest_core::auth::Authenticated;
use pg_rest_core::plan::Node;
use pg_rest_core::realtime::event::Event;
use pg_rest_core::realtime::feed::{self, Down, Up};
use pg_rest_core::realtime::Events;
use pg_rest_core::schema_cache::QualifiedName;
use pg_rest_core::stream::Format;
use slab::Slab;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// How long a subscription request waits for the realtime worker's answer.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Feed bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// The local stream socket to the realtime worker.
pub struct Feed {
    stream: UnixStream,
    lines: feed::Lines,
    output: Vec<u8>,
    /// What each `read` fills (allocated once: the feed is read after every request).
    scratch: Box<[u8]>,
    /// Registered with the event loop's poller.
    pub registered: bool,
}

impl Feed {
    fn connect() -> io::Result<Feed> {
        let stream = UnixStream::connect(super::SOCKET)?;
        stream.set_nonblocking(true)?;
        Ok(Feed {
            stream,
            lines: feed::Lines::default(),
            output: Vec::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            registered: false,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Sends one request and wakes the realtime worker; false once the feed is broken.
    fn send(&mut self, up: &Up) -> bool {
        up.encode(&mut self.output);
        let ok = self.flush();
        super::wake();
        ok
    }

    fn flush(&mut self) -> bool {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return false,
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what has arrived; false at EOF or on an error (the feed is then lost).
    fn read_available(&mut self) -> bool {
        loop {
            match self.stream.read(&mut self.scratch) {
                Ok(0) => return false,
                Ok(n) => self.lines.push(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Waits until the answer to `token` has arrived (it stays unread, so that the lines
    /// before it are taken first); false on timeout or a lost feed.
    fn wait_for_ack(&mut self, token: u64) -> bool {
        let deadline = Instant::now() + ACK_TIMEOUT;
        let wanted = format!("A{token} ");
        loop {
            if self.lines.any_line(|l| l.starts_with(&wanted)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.flush() {
                return false;
            }
            let mut pfd = libc::pollfd {
                fd: self.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(100) as i32) };
            if !self.read_available() {
                return false;
            }
        }
    }
}

/// The realtime worker's answer to a subscription request: from here its subscription is
/// live; `gap`: the events it asked to resume from are no longer kept.
pub struct Answer {
    pub token: u64,
    pub gap: bool,
}

/// What a resuming subscription missed, from the ring; Err(since) when the ring does not
/// reach back to `since`.
pub type Missed = Result<Vec<Rc<Event>>, u64>;

/// Where a subscription's events go.
pub enum Sink {
    /// A WebSocket connection: frames carry the subscription id.
    Socket { id: String },
    /// A streamed HTTP response (`Reply::Stream` id) in a line format or as SSE.
    Stream { stream: u64, format: Format },
}

pub enum Target {
    Table {
        table: QualifiedName,
        events: Events,
        /// The read planned from the subscription's filter (its conditions are what count).
        node: Box<Node>,
        primary_key: Vec<String>,
        /// Columns the role may read: the events' rows are cut to these.
        columns: Vec<String>,
    },
    Channel(String),
}

pub struct Sub {
    pub conn: usize,
    pub sink: Sink,
    pub target: Target,
    pub who: Authenticated,
    /// Becomes true at the realtime worker's answer to `token` in the feed.
    pub live: bool,
    pub token: u64,
    /// Resume after this position: replayed from the ring when it goes live.
    pub resume: Option<u64>,
    /// Its (table, role, claims) group's number: subscriptions of one group are checked in
    /// one statement.
    pub group: u32,
    /// When its token expires (`exp`, seconds since the epoch): then it ends.
    pub expires: Option<i64>,
    /// Only events committed after this position are its own: the resume position, or the
    /// end of WAL when it was made (the feed may still bring older ones).
    pub after: u64,
    pub sent: u64,
    pub dropped: u64,
    pub since: SystemTime,
}

impl Sub {
    fn table(&self) -> Option<&QualifiedName> {
        match &self.target {
            Target::Table { table, .. } => Some(table),
            Target::Channel(_) => None,
        }
    }

    fn unsubscribe_line(&self) -> Up {
        Up::Unsubscribe {
            table: self.table().map(|t| (t.schema.clone(), t.name.clone())),
        }
    }

    pub fn transport(&self) -> &'static str {
        match &self.sink {
            Sink::Socket { .. } => "websocket",
            Sink::Stream {
                format: Format::EventStream,
                ..
            } => "sse",
            Sink::Stream {
                format: Format::JsonpLines(_),
                ..
            } => "jsonp",
            Sink::Stream { .. } => "ndjson",
        }
    }
}

/// Live subscriptions by what they listen to (see [`Hub::routes`]).
#[derive(Default)]
pub struct Routes {
    pub tables: HashMap<(String, String), Vec<usize>>,
    pub channels: HashMap<String, Vec<usize>>,
}

/// What to send to a client connection.
pub enum Push {
    /// A WebSocket text frame.
    Frame(String),
    /// A piece of a streamed response.
    Piece { stream: u64, bytes: Vec<u8> },
    /// The end of a streamed response.
    End { stream: u64 },
}

/// A WebSocket connection's identity, from its upgrade request or a later `access_token`.
pub struct Session {
    pub who: Authenticated,
}

#[derive(Default)]
pub struct Hub {
    feed: Option<Feed>,
    /// Events resuming subscriptions missed, by request token, until their answer.
    replays: HashMap<u64, Vec<Rc<Event>>>,
    pub subs: Slab<Sub>,
    pub sessions: HashMap<usize, Session>,
    next_token: u64,
    next_stream: u64,
    /// Feed lines were read but not yet taken (a subscription request read ahead).
    pub backlog: bool,
    /// What to push: connection key, subscription key, what.
    pub pushes: Vec<(usize, usize, Push)>,
    /// The subscriptions changed since they were last written to the board.
    dirty: bool,
    /// Moves whenever the set of live subscriptions changes (what is cached per batch
    /// depends on it).
    pub generation: u64,
    routes: Option<(u64, Rc<Routes>)>,
    /// (schema, table, role, claims) → the group number subscriptions are checked by.
    group_ids: HashMap<(String, String, String, String), u32>,
}

impl Hub {
    /// The feed's descriptor while it is connected but not yet polled.
    pub fn unregistered_feed(&mut self) -> Option<RawFd> {
        let feed = self.feed.as_mut().filter(|f| !f.registered)?;
        feed.registered = true;
        Some(feed.fd())
    }

    /// Connected to the realtime worker.
    pub fn has_feed(&self) -> bool {
        self.feed.is_some()
    }

    pub fn new_stream_id(&mut self) -> u64 {
        self.next_stream += 1;
        self.next_stream
    }

    /// Sends a subscription request and waits for its answer; the subscription (not yet
    /// live) is added. Err with why when realtime cannot serve.
    pub fn subscribe(&mut self, sub: Sub) -> Result<usize, String> {
        if let Some(why) = super::unavailable() {
            return Err(why.into());
        }
        if self.feed.is_none() {
            let feed = Feed::connect()
                .map_err(|e| format!("realtime worker unreachable ({e}); retry shortly"))?;
            self.feed = Some(feed);
        }
        self.next_token += 1;
        let token = self.next_token;
        let table = sub.table().map(|t| (t.schema.clone(), t.name.clone()));
        let feed = self.feed.as_mut().ok_or("realtime feed lost")?;
        let request = Up::Subscribe {
            token,
            since: sub.resume,
            table,
        };
        if !(feed.send(&request) && feed.wait_for_ack(token)) {
            self.lose_feed();
            return Err("the realtime worker did not answer; retry shortly".into());
        }
        self.backlog = true;
        self.dirty = true;
        // SAFETY: reads a shared position.
        let now = unsafe { pgrx::pg_sys::GetXLogInsertRecPtr() };
        let group = self.group_of(sub.table(), &sub.who);
        Ok(self.subs.insert(Sub {
            token,
            live: false,
            after: sub.resume.unwrap_or(now),
            group,
            expires: expiry(&sub.who),
            ..sub
        }))
    }

    /// The group number of a table subscription by `who` (channels have none).
    fn group_of(&mut self, table: Option<&QualifiedName>, who: &Authenticated) -> u32 {
        let Some(t) = table else {
            return u32::MAX;
        };
        let next = self.group_ids.len() as u32;
        let key = (
            t.schema.clone(),
            t.name.clone(),
            who.role.clone(),
            who.claims.clone(),
        );
        *self.group_ids.entry(key).or_insert(next)
    }

    /// A fresh token for connection `conn` (the `access_token` op): its subscriptions go on
    /// with the new claims and expiry. Err when the role differs (what a subscription may
    /// read was checked for its role: subscribe again).
    pub fn reauthorize(&mut self, conn: usize, who: &Authenticated) -> Result<(), String> {
        let keys = self.keys_where(|s| s.conn == conn);
        if keys
            .iter()
            .any(|k| self.subs.get(*k).is_some_and(|s| s.who.role != who.role))
        {
            return Err("the token is for another role; subscribe again with it".into());
        }
        for k in keys {
            let table = self.subs.get(k).and_then(|s| s.table().cloned());
            let group = self.group_of(table.as_ref(), who);
            if let Some(sub) = self.subs.get_mut(k) {
                sub.who = who.clone();
                sub.expires = expiry(who);
                sub.group = group;
            }
        }
        self.generation += 1;
        Ok(())
    }

    /// Ends the subscriptions whose token has expired, telling their clients.
    pub fn expire(&mut self, now: i64) {
        for k in self.keys_where(|s| s.expires.is_some_and(|e| e <= now)) {
            let Some(sub) = self.subs.get(k) else {
                continue;
            };
            let message = "the token expired; send a fresh one (access_token) and subscribe again";
            self.pushes
                .push((sub.conn, k, error_push(&sub.sink, "token_expired", message)));
            if let Sink::Stream { stream, .. } = sub.sink {
                self.pushes.push((sub.conn, k, Push::End { stream }));
            }
            self.unsubscribe(k);
        }
    }

    fn keys_where(&self, pred: impl Fn(&Sub) -> bool) -> Vec<usize> {
        self.subs
            .iter()
            .filter(|(_, s)| pred(s))
            .map(|(k, _)| k)
            .collect()
    }

    pub fn unsubscribe(&mut self, key: usize) {
        if !self.subs.contains(key) {
            return;
        }
        let sub = self.subs.remove(key);
        self.dirty = true;
        self.generation += 1;
        if let Some(feed) = &mut self.feed {
            if !feed.send(&sub.unsubscribe_line()) {
                self.lose_feed();
            }
        }
    }

    /// A WebSocket subscription by its client-chosen id.
    pub fn socket_sub(&self, conn: usize, id: &str) -> Option<usize> {
        self.subs
            .iter()
            .find(|(_, s)| s.conn == conn && matches!(&s.sink, Sink::Socket { id: i } if i == id))
            .map(|(k, _)| k)
    }

    /// The connection is gone: its subscriptions and session with it.
    pub fn drop_conn(&mut self, conn: usize) {
        self.sessions.remove(&conn);
        for k in self.keys_where(|s| s.conn == conn) {
            self.unsubscribe(k);
        }
    }

    /// A streamed response ended (the client left, or its buffer overflowed).
    pub fn drop_stream(&mut self, conn: usize, stream: u64) {
        let key = self.subs.iter().find(|(_, s)| {
            s.conn == conn && matches!(s.sink, Sink::Stream { stream: id, .. } if id == stream)
        });
        if let Some((k, _)) = key {
            self.unsubscribe(k);
        }
    }

    /// The feed broke (the realtime worker restarted): every subscriber is told, WebSocket
    /// subscriptions end and streams close; clients resubscribe.
    fn lose_feed(&mut self) {
        self.feed = None;
        self.dirty = true;
        self.generation += 1;
        self.backlog = false;
        self.replays.clear();
        for sub in self.subs.drain() {
            let message = "the realtime feed was interrupted (the realtime worker restarted); \
                           subscribe again";
            self.pushes.push((
                sub.conn,
                usize::MAX,
                error_push(&sub.sink, "feed_lost", message),
            ));
        }
    }

    /// Reads the feed and returns the next events in order, up to (not past) the next
    /// subscription answer, whose token comes with them: the caller delivers the events, then
    /// makes that subscription live ([`Hub::make_live`]). None when nothing is left.
    pub fn next_batch(&mut self) -> Option<(Vec<Rc<Event>>, Option<Answer>)> {
        let feed = self.feed.as_mut()?;
        if !feed.read_available() {
            self.lose_feed();
            return None;
        }
        let mut events = Vec::new();
        let mut acked = None;
        while let Some(line) = feed.lines.next_line() {
            match feed::parse_down(line) {
                Some(Down::Event(json)) => events.extend(Event::parse(json).map(Rc::new)),
                Some(Down::Replay { token, json }) => {
                    if let Some(e) = Event::parse(json) {
                        self.replays.entry(token).or_default().push(Rc::new(e));
                    }
                }
                Some(Down::Ack { token, gap, .. }) => {
                    acked = Some(Answer { token, gap });
                    break;
                }
                None => {}
            }
        }
        if acked.is_none() {
            feed.lines.compact();
        }
        self.backlog = acked.is_some();
        (acked.is_some() || !events.is_empty()).then_some((events, acked))
    }

    /// Makes the subscription asked for with `token` live. One that resumes gets its key
    /// and the events it missed, or Err when they are no longer kept (`gap`).
    pub fn make_live(&mut self, token: u64, gap: bool) -> Option<(usize, Missed)> {
        let replayed = self.replays.remove(&token).unwrap_or_default();
        let (key, sub) = self.subs.iter_mut().find(|(_, s)| s.token == token)?;
        sub.live = true;
        self.generation += 1;
        let since = sub.resume?;
        Some((key, if gap { Err(since) } else { Ok(replayed) }))
    }

    /// Tells a subscriber it cannot be resumed: an explicit gap, never a silent one.
    pub fn push_gap(&mut self, key: usize, since: u64) {
        let Some(sub) = self.subs.get(key) else {
            return;
        };
        let message = format!(
            "cannot resume after {}: the events since are no longer kept; read the current \
             state again (events from now on follow)",
            pg_rest_core::realtime::event::format_lsn(since)
        );
        let push = error_push(&sub.sink, "resume_gap", &message);
        self.pushes.push((sub.conn, key, push));
    }

    /// The live subscriptions by table and by channel, in key order: built once per batch,
    /// so matching a batch costs one pass over the subscriptions, not one per event.
    pub fn routes(&mut self) -> Rc<Routes> {
        if let Some((generation, routes)) = &self.routes {
            if *generation == self.generation {
                return routes.clone();
            }
        }
        let mut routes = Routes::default();
        for (k, s) in self.subs.iter().filter(|(_, s)| s.live) {
            match &s.target {
                Target::Table { table, .. } => routes
                    .tables
                    .entry((table.schema.clone(), table.name.clone()))
                    .or_default()
                    .push(k),
                Target::Channel(c) => routes.channels.entry(c.clone()).or_default().push(k),
            }
        }
        let routes = Rc::new(routes);
        self.routes = Some((self.generation, routes.clone()));
        routes
    }

    /// Whether live subscription `key` of the event's table or channel wants it: of its
    /// types, and committed after the subscription began.
    pub fn wants(&self, key: usize, e: &Event) -> bool {
        self.subs.get(key).is_some_and(|s| {
            e.lsn > s.after
                && match &s.target {
                    Target::Table { events, .. } => events.contains(e.kind.events()),
                    Target::Channel(_) => true,
                }
        })
    }

    /// Queues `e` for subscription `key`.
    pub fn deliver(&mut self, key: usize, e: &Event) {
        let Some(sub) = self.subs.get_mut(key) else {
            return;
        };
        let columns = match &sub.target {
            Target::Table { columns, .. } => Some(columns.as_slice()),
            Target::Channel(_) => None,
        };
        let push = match &sub.sink {
            Sink::Socket { id } => Push::Frame(e.to_client_json(Some(id), columns)),
            Sink::Stream { stream, format } => {
                let mut bytes = Vec::new();
                format.event(
                    &mut bytes,
                    Some(&e.lsn_text),
                    &e.to_client_json(None, columns),
                );
                Push::Piece {
                    stream: *stream,
                    bytes,
                }
            }
        };
        sub.sent += 1;
        self.dirty = true;
        self.pushes.push((sub.conn, key, push));
    }
}

/// An `error` event for a sink: a WebSocket frame naming the subscription, or a stream line.
fn error_push(sink: &Sink, code: &str, message: &str) -> Push {
    match sink {
        Sink::Socket { id } => Push::Frame(pg_rest_core::realtime::error(Some(id), code, message)),
        Sink::Stream { stream, format } => {
            let mut bytes = Vec::new();
            let json = pg_rest_core::realtime::error(None, code, message);
            format.event(&mut bytes, None, &json);
            Push::Piece {
                stream: *stream,
                bytes,
            }
        }
    }
}

impl Hub {
    /// A push to subscription `key` could not be queued (its client is too slow or gone).
    pub fn note_dropped(&mut self, key: usize) {
        if let Some(sub) = self.subs.get_mut(key) {
            sub.dropped += 1;
            self.dirty = true;
        }
    }

    /// The subscriptions as `pg_rest.stat_subscriptions` lines, when they changed since the
    /// last call: role, what, transport, events sent, dropped, since (µs since the epoch),
    /// tab-separated.
    pub fn board_text(&mut self) -> Option<String> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        let mut out = String::new();
        for (_, s) in &self.subs {
            let what = match &s.target {
                Target::Table { table, .. } => format!("{}.{}", table.schema, table.name),
                Target::Channel(c) => format!("channel:{c}"),
            };
            let since = s
                .since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                clean(&s.who.role),
                clean(&what),
                s.transport(),
                s.sent,
                s.dropped,
                since
            ));
        }
        Some(out)
    }
}

/// The `exp` claim of a verified token.
fn expiry(who: &Authenticated) -> Option<i64> {
    let claims: serde_json::Value = serde_json::from_str(&who.claims).ok()?;
    claims.get("exp")?.as_f64().map(|e| e as i64)
}
