//! The realtime worker: a background worker the supervisor keeps running, connected to
//! `pg_rest.database` as the bootstrap superuser, that owns the logical replication slot
//! `pg_rest.realtime_slot` (decoded by pg_rest's own output plugin, src/decoding.rs, through
//! a context kept open: [`super::decoder`]) and hands its events to the http workers
//! connected to its socket ([`super::SOCKET`]).
//!
//! One cycle, whenever its latch is set (a commit somewhere, a subscription request) or the
//! slow fallback tick passes: accept http workers, read their requests, decode what was
//! flushed for the tables that have subscribers, write the events to every http worker with
//! subscribers, then confirm the slot up to what was handed on, and answer the requests read
//! (an answer is an ordering point: see core's `realtime::feed`). A crash between handing on
//! and confirming re-sends a transaction; it never loses one. With no subscriber anywhere,
//! the slot is only moved forward (PostgreSQL's fast-forward decoding, no output), so WAL is
//! not retained.
//!
//! Its SQL runs through SPI as read-only statements: none writes, so none of its
//! transactions takes a transaction id (creating a logical slot refuses one that has).

use crate::gucs::{self, string_value};
use crate::worker::signals;
use pg_rest_core::realtime::feed::{self, Table, Up};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use super::decoder::Decoder;
use super::{set_state, state, State, SHARED};
use std::sync::atomic::Ordering::Relaxed;

/// The shortest time between two cycles (see the main loop).
const MIN_CYCLE: Duration = Duration::from_millis(4);
/// The fallback: how often the slot is looked at when no latch is set.
const TICK: Duration = Duration::from_secs(1);
/// How soon to retry writing to an http worker whose socket was full.
const WRITE_RETRY: Duration = Duration::from_millis(5);
/// Events one cycle may decode (whole transactions); a bigger backlog takes several cycles.
const DECODE_ROWS: usize = 5000;
/// Output an http worker may leave unread before the slot is read further (backpressure:
/// the slot keeps the rest, nothing is lost).
const PAUSE_OUTPUT: usize = 4 * 1024 * 1024;
/// An http worker that takes nothing for this long is dropped (it reconnects; its
/// subscribers are told).
const STALL: Duration = Duration::from_secs(10);
/// How long a table stays decoded after its last subscriber left, so that a client that
/// reconnects within it can resume from its last event (the http workers' rings hold them).
const LINGER: Duration = Duration::from_secs(120);

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_rest_realtime_main(_arg: pg_sys::Datum) {
    if let Err(e) = signals::install(false) {
        exit_with(&format!(
            "pg_rest realtime: cannot install its signal handlers: {e}"
        ));
    }
    set_state(State::Starting);
    BackgroundWorker::connect_worker_to_spi(Some(&string_value(&gucs::DATABASE)), None);
    // SAFETY: this process's latch, in shared memory for its whole life.
    SHARED
        .get()
        .latch
        .store(unsafe { pg_sys::MyLatch } as i64, Relaxed);
    // SAFETY: a GUC variable, fixed at server start.
    if unsafe { pg_sys::wal_level } < pg_sys::WalLevel::WAL_LEVEL_LOGICAL as i32 {
        set_state(State::NoLogicalWal);
        quiet_log!(
            "pg_rest realtime: wal_level is below logical, so realtime is off \
             (REST is not affected); set wal_level = logical and restart to use it"
        );
        idle_until_terminated();
    }
    let mut realtime = Realtime::new(string_value(&gucs::REALTIME_SLOT));
    let mut cycle_started = Instant::now();
    while !signals::terminating() {
        signals::absorb_interrupts();
        if signals::take_sighup() {
            crate::worker::config::reload_config_file();
        }
        if gucs::REALTIME.get() {
            realtime.cycle();
        } else {
            realtime.stop();
        }
        signals::wait(realtime.next_wait());
        // Commits that come in a stream are taken a few milliseconds at a time: one cycle,
        // and one visibility query per group in each http worker, serves all of them.
        let since = cycle_started.elapsed();
        if since < MIN_CYCLE {
            std::thread::sleep(MIN_CYCLE - since);
        }
        cycle_started = Instant::now();
    }
    realtime.close_socket();
    exit_with("pg_rest realtime shut down");
}

/// True on a hot standby, said once in the log when it becomes so: the worker then waits for
/// a promotion, which it sees at its next tick (no slot exists or is created meanwhile).
fn in_recovery() -> bool {
    // SAFETY: reads the shared recovery state; callable in any backend.
    if !unsafe { pg_sys::RecoveryInProgress() } {
        return false;
    }
    if state() != State::Standby {
        quiet_log!(
            "pg_rest realtime: this server is a hot standby, so realtime waits for a promotion \
             (PostgreSQL 15 decodes only on a primary; clients subscribe there)"
        );
        set_state(State::Standby);
    }
    true
}

fn exit_with(message: &str) -> ! {
    quiet_log!("{message}");
    // SAFETY: ends this process; the supervisor restarts it.
    unsafe { pg_sys::proc_exit(1) }
}

fn idle_until_terminated() -> ! {
    while !signals::terminating() {
        signals::absorb_interrupts();
        signals::wait(Duration::from_secs(10));
    }
    // SAFETY: ends this process.
    unsafe { pg_sys::proc_exit(0) }
}

/// One connected http worker.
struct Worker {
    stream: UnixStream,
    input: feed::Lines,
    output: Vec<u8>,
    /// Subscriptions per table on that worker.
    tables: HashMap<Table, usize>,
    channels: usize,
    /// Subscription requests read this cycle (token, resume after, what), answered at its
    /// end.
    requests: Vec<(u64, Option<u64>, Option<Table>)>,
    /// When its output last moved (or was empty).
    progressed: Instant,
}

impl Worker {
    fn has_subscribers(&self) -> bool {
        self.channels > 0 || !self.tables.is_empty()
    }

    /// Reads what the worker sent; false once it is gone.
    fn read(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.input.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        while let Some(line) = self.input.next_line() {
            match feed::parse_up(line) {
                Some(Up::Subscribe {
                    token,
                    since,
                    table,
                }) => {
                    match &table {
                        Some(t) => *self.tables.entry(t.clone()).or_default() += 1,
                        None => self.channels += 1,
                    }
                    self.requests.push((token, since, table));
                }
                Some(Up::Unsubscribe { table: Some(t) }) => {
                    if let Some(n) = self.tables.get_mut(&t) {
                        *n -= 1;
                        if *n == 0 {
                            self.tables.remove(&t);
                        }
                    }
                }
                Some(Up::Unsubscribe { table: None }) => {
                    self.channels = self.channels.saturating_sub(1)
                }
                None => {}
            }
        }
        self.input.compact();
        true
    }

    /// Writes what the socket takes; false once the worker is gone or stalled.
    fn flush(&mut self) -> bool {
        if self.output.is_empty() {
            self.progressed = Instant::now();
        }
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return false,
                Ok(n) => {
                    self.output.drain(..n);
                    self.progressed = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        self.progressed.elapsed() < STALL
    }
}

struct Realtime {
    slot: String,
    listener: Option<UnixListener>,
    workers: Vec<Worker>,
    /// The slot's confirmed position, once the slot is known to exist.
    confirmed: Option<u64>,
    last_forward: Instant,
    /// The decoding context, open while something is decoded (it holds the slot).
    decoder: Option<Decoder>,
    /// The decoded tables the plugin's filter was last set for.
    filtered: Vec<Table>,
    /// The slot failed (the log says why); retried on the tick.
    failed_at: Option<Instant>,
    /// What is decoded: tables (None: channel messages) with subscribers somewhere, or
    /// lately.
    decoded: HashMap<Option<Table>, Decoded>,
    ring: Ring,
}

/// One table (or the channels) being decoded.
struct Decoded {
    /// Every event of it committed after this position is in the ring (or was evicted).
    covered_from: u64,
    /// Since when it has had no subscriber.
    idle_since: Option<Instant>,
}

/// Recent events, kept so that a client reconnecting with its last event's position misses
/// nothing (docs/realtime.md "Resume"): one ring for the server, here, so a client may
/// resume through any http worker, one that restarted included.
#[derive(Default)]
struct Ring {
    events: std::collections::VecDeque<Recent>,
    bytes: usize,
    /// The newest position evicted.
    evicted_upto: u64,
}

struct Recent {
    key: Option<Table>,
    lsn: u64,
    json: String,
}

/// Events the ring keeps at most, and their bytes.
const RING_EVENTS: usize = 20_000;
const RING_BYTES: usize = 32 * 1024 * 1024;

impl Ring {
    fn push(&mut self, e: Recent) {
        self.bytes += e.json.len();
        self.events.push_back(e);
        while self.events.len() > RING_EVENTS || self.bytes > RING_BYTES {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.json.len();
            self.evicted_upto = self.evicted_upto.max(old.lsn);
        }
    }

    /// The kept events of `key` after `since`; None if some may have been evicted.
    fn after<'a>(
        &'a self,
        key: &'a Option<Table>,
        since: u64,
    ) -> Option<impl Iterator<Item = &'a str>> {
        if since < self.evicted_upto {
            return None;
        }
        let start = self.events.partition_point(|e| e.lsn <= since);
        Some(
            self.events
                .range(start..)
                .filter(move |e| e.key == *key)
                .map(|e| e.json.as_str()),
        )
    }
}

impl Realtime {
    fn new(slot: String) -> Realtime {
        Realtime {
            slot,
            listener: None,
            workers: Vec::new(),
            confirmed: None,
            last_forward: Instant::now(),
            decoder: None,
            filtered: Vec::new(),
            failed_at: None,
            decoded: HashMap::new(),
            ring: Ring::default(),
        }
    }

    fn next_wait(&self) -> Duration {
        if self.workers.iter().any(|w| !w.output.is_empty()) {
            WRITE_RETRY
        } else {
            TICK
        }
    }

    fn cycle(&mut self) {
        if self.failed_at.is_some_and(|t| t.elapsed() < TICK * 5) {
            return;
        }
        if in_recovery() {
            return;
        }
        if self.confirmed.is_none() {
            match in_transaction(|| ensure_slot(&self.slot)) {
                Some(Ok(lsn)) => {
                    self.confirmed = Some(lsn);
                    self.failed_at = None;
                }
                other => {
                    let why = match other {
                        Some(Err(why)) => why,
                        _ => "an error creating or reading the slot".into(),
                    };
                    quiet_log!("pg_rest realtime: slot \"{}\": {why}", self.slot);
                    set_state(State::Failed);
                    self.failed_at = Some(Instant::now());
                    return;
                }
            }
        }
        if self.listener.is_none() && !self.listen() {
            return;
        }
        set_state(State::Running);
        self.accept();
        self.workers.retain_mut(Worker::read);
        self.update_decoded();
        let wanted = !self.decoded.is_empty();
        SHARED.get().wanted.store(wanted as i64, Relaxed);
        if wanted {
            // Backpressure: while an http worker is behind, the slot keeps the rest.
            if self.workers.iter().all(|w| w.output.len() < PAUSE_OUTPUT) {
                self.hand_on();
            }
        } else if self.last_forward.elapsed() >= TICK {
            self.fast_forward();
        }
        self.answer_requests();
        self.workers.retain_mut(Worker::flush);
    }

    /// Answers this cycle's subscription requests, after the events handed on: a resuming
    /// one first gets what it missed from the ring, or is told of the gap.
    fn answer_requests(&mut self) {
        let confirmed = self.confirmed.unwrap_or(0);
        for w in &mut self.workers {
            for (token, since, key) in w.requests.drain(..) {
                let mut gap = false;
                if let Some(since) = since {
                    let covered = self
                        .decoded
                        .get(&key)
                        .is_some_and(|d| d.covered_from <= since);
                    match self.ring.after(&key, since).filter(|_| covered) {
                        Some(missed) => {
                            for json in missed {
                                feed::replay_line(&mut w.output, token, json);
                            }
                        }
                        None => gap = true,
                    }
                }
                feed::ack_line(&mut w.output, token, confirmed, gap);
            }
        }
    }

    fn listen(&mut self) -> bool {
        let _ = std::fs::remove_file(super::SOCKET);
        match UnixListener::bind(super::SOCKET).and_then(|l| {
            l.set_nonblocking(true)?;
            Ok(l)
        }) {
            Ok(l) => {
                self.listener = Some(l);
                true
            }
            Err(e) => {
                quiet_log!("pg_rest realtime: cannot listen on {}: {e}", super::SOCKET);
                set_state(State::Failed);
                self.failed_at = Some(Instant::now());
                false
            }
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.workers.push(Worker {
                    stream,
                    input: feed::Lines::default(),
                    output: Vec::new(),
                    tables: HashMap::new(),
                    channels: 0,
                    requests: Vec::new(),
                    progressed: Instant::now(),
                });
            }
        }
    }

    /// Adds what has subscribers to what is decoded, and drops what has had none for
    /// `LINGER`.
    fn update_decoded(&mut self) {
        let now = Instant::now();
        let confirmed = self.confirmed.unwrap_or(0);
        for d in self.decoded.values_mut() {
            d.idle_since.get_or_insert(now);
        }
        for w in &self.workers {
            let channels = (w.channels > 0).then_some(None);
            for key in w.tables.keys().cloned().map(Some).chain(channels) {
                self.decoded
                    .entry(key)
                    .or_insert(Decoded {
                        covered_from: confirmed,
                        idle_since: None,
                    })
                    .idle_since = None;
            }
        }
        self.decoded
            .retain(|_, d| d.idle_since.is_none_or(|t| now.duration_since(t) < LINGER));
    }

    /// Peeks the slot for the decoded tables, writes the events to every worker, and
    /// confirms what was handed on.
    /// Decodes what was flushed since the last cycle (the decoded tables' changes and the
    /// messages), writes the events to every http worker with subscribers, and confirms
    /// what was handed on. A decoding ERROR ends the process (the supervisor restarts it):
    /// the context cannot be trusted after one.
    fn hand_on(&mut self) {
        self.refresh_filter();
        if self.decoder.is_none() {
            let slot = self.slot.clone();
            // SAFETY: outside any transaction, connected to the slot's database.
            match PgTryBuilder::new(|| Some(unsafe { Decoder::open(&slot) }))
                .catch_others(|e| {
                    quiet_log!("pg_rest realtime: {}", crate::execute::describe(&e));
                    crate::execute::abort_after_error();
                    None
                })
                .execute()
            {
                Some(d) => self.decoder = Some(d),
                None => {
                    self.failed_at = Some(Instant::now());
                    return;
                }
            }
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return;
        };
        // SAFETY: reads a shared position.
        let end = unsafe { pg_sys::GetFlushRecPtr(std::ptr::null_mut()) };
        // SAFETY: outside any transaction; the context of `open`.
        let decoded = PgTryBuilder::new(AssertUnwindSafe(|| unsafe {
            decoder.decode(end, DECODE_ROWS)
        }))
        .catch_others(|e| Err(crate::execute::describe(&e)))
        .execute();
        let (rows, read_to) = match decoded {
            Ok(d) => d,
            Err(why) => exit_with(&format!(
                "pg_rest realtime: decoding failed: {why}; restarting"
            )),
        };
        let heads: Vec<Option<Head>> = rows.iter().map(|r| head_of(r)).collect();
        wait_until_visible(
            heads
                .iter()
                .flatten()
                .filter(|h| h.kind == "COMMIT")
                .map(|h| h.xid),
        );
        for (data, head) in rows.into_iter().zip(heads) {
            let Some(head) = head else {
                continue;
            };
            if head.kind == "COMMIT" {
                continue;
            }
            for w in self.workers.iter_mut().filter(|w| w.has_subscribers()) {
                feed::event_line(&mut w.output, &data);
            }
            self.ring.push(Recent {
                key: head.key(),
                lsn: head.lsn,
                json: data,
            });
        }
        // Handed on before confirming: written to the sockets as far as they take it, the
        // rest in this process's buffers, which a crash would lose — so flush first. Every
        // transaction that committed before `read_to` was written (a transaction's events
        // come at its commit record).
        self.workers.retain_mut(Worker::flush);
        self.confirm(read_to);
    }

    /// Points the plugin's live filter at the decoded tables.
    fn refresh_filter(&mut self) {
        let mut tables: Vec<Table> = self.decoded.keys().flatten().cloned().collect();
        tables.sort();
        if tables != self.filtered {
            crate::decoding::set_live_filter(Some(tables.clone()));
            self.filtered = tables;
        }
    }

    /// With nothing to decode the context is closed, and the slot moved forward once a
    /// second by PostgreSQL's fast-forward decoding (no output), so it holds no WAL back.
    fn fast_forward(&mut self) {
        if let Some(d) = self.decoder.take() {
            d.close();
        }
        self.last_forward = Instant::now();
        // SAFETY: reads a shared position.
        let flushed = unsafe { pg_sys::GetFlushRecPtr(std::ptr::null_mut()) };
        self.confirm(flushed);
    }

    fn confirm(&mut self, lsn: u64) {
        if self.confirmed.is_some_and(|c| lsn <= c) {
            return;
        }
        if let Some(d) = &self.decoder {
            d.confirm(lsn);
            self.confirmed = Some(lsn);
            return;
        }
        let slot = self.slot.clone();
        match in_transaction(|| advance(&slot, lsn)) {
            Some(Ok(())) => self.confirmed = Some(lsn),
            _ => {
                quiet_log!("pg_rest realtime: confirming slot \"{}\" failed", self.slot);
                self.confirmed = None;
            }
        }
    }

    /// `pg_rest.realtime = off`: no slot is held, no worker served.
    fn stop(&mut self) {
        if state() == State::Off {
            return;
        }
        self.close_socket();
        self.workers.clear();
        self.decoded.clear();
        if let Some(d) = self.decoder.take() {
            d.close();
        }
        SHARED.get().wanted.store(0, Relaxed);
        let slot = self.slot.clone();
        if in_transaction(|| drop_slot(&slot)).is_none() {
            quiet_log!("pg_rest realtime: dropping slot \"{}\" failed", self.slot);
        }
        self.confirmed = None;
        set_state(State::Off);
        quiet_log!(
            "pg_rest realtime: off (pg_rest.realtime = off); slot \"{}\" dropped",
            self.slot
        );
    }

    fn close_socket(&mut self) {
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(super::SOCKET);
        }
    }
}

/// Waits until the transactions `xids` are visible to new snapshots. A commit record is
/// flushed (so decoded) a moment before its transaction leaves the proc array; an http
/// worker's visibility query in that moment would not see the row and drop the event. With
/// synchronous replication the moment lasts until a standby confirms; the wait is bounded.
fn wait_until_visible(xids: impl Iterator<Item = u32>) {
    const MAX_WAIT: Duration = Duration::from_secs(5);
    let started = Instant::now();
    for xid in xids {
        let xid = pg_sys::TransactionId::from(xid);
        loop {
            // SAFETY: reads the proc array under its lock; raises nothing for a valid xid.
            let running = PgTryBuilder::new(|| unsafe { pg_sys::TransactionIdIsInProgress(xid) })
                .catch_others(|_| false)
                .execute();
            if !running || started.elapsed() >= MAX_WAIT {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// The fields of an event the ring files it by.
struct Head {
    kind: String,
    lsn: u64,
    xid: u32,
    schema: String,
    table: String,
}

impl Head {
    fn key(&self) -> Option<Table> {
        (self.kind != "MESSAGE").then(|| (self.schema.clone(), self.table.clone()))
    }
}

fn head_of(json: &str) -> Option<Head> {
    #[derive(serde::Deserialize)]
    struct Fields {
        #[serde(rename = "type")]
        kind: String,
        lsn: String,
        #[serde(default)]
        xid: u32,
        #[serde(default)]
        schema: String,
        #[serde(default)]
        table: String,
    }
    let f: Fields = serde_json::from_str(json).ok()?;
    Some(Head {
        lsn: pg_rest_core::realtime::event::parse_lsn(&f.lsn)?,
        kind: f.kind,
        xid: f.xid,
        schema: f.schema,
        table: f.table,
    })
}

type SpiResult<T> = Result<T, pgrx::spi::Error>;

/// Runs `f` in a transaction of its own; None after an ERROR (logged, aborted).
fn in_transaction<T>(f: impl FnOnce() -> T) -> Option<T> {
    PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: a transaction of this worker's own, outside any other.
        unsafe {
            pg_sys::StartTransactionCommand();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        let v = f();
        // SAFETY: ends the transaction started above.
        unsafe {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        }
        Some(v)
    }))
    .catch_others(|e| {
        quiet_log!("pg_rest realtime: {}", crate::execute::describe(&e));
        crate::execute::abort_after_error();
        None
    })
    .execute()
}

/// Creates the slot with pg_rest's plugin if missing; its confirmed position.
fn ensure_slot(slot: &str) -> Result<u64, String> {
    let spi = |e: pgrx::spi::Error| e.to_string();
    Spi::connect(|client| -> Result<u64, String> {
        // Some builds (Debian's) list the plugins a slot may use; this session may use ours.
        client.select(ALLOW_PLUGIN_SQL, None, &[]).map_err(spi)?;
        let existing = client
            .select(SLOT_SQL, None, &[slot.into()])
            .map_err(spi)?
            .first()
            .get_two::<String, String>()
            .unwrap_or((None, None));
        match existing {
            (Some(plugin), _) if plugin != "pg_rest" => Err(format!(
                "exists with output plugin \"{plugin}\"; drop it or set pg_rest.realtime_slot \
                 to another name"
            )),
            (Some(_), Some(lsn)) => pg_rest_core::realtime::event::parse_lsn(&lsn)
                .ok_or_else(|| format!("unreadable position {lsn}")),
            _ => {
                let created = client
                    .select(CREATE_SLOT_SQL, None, &[slot.into()])
                    .map_err(spi)?
                    .first()
                    .get_one::<String>()
                    .map_err(spi)?
                    .unwrap_or_default();
                quiet_log!("pg_rest realtime: created slot \"{slot}\" at {created}");
                pg_rest_core::realtime::event::parse_lsn(&created)
                    .ok_or_else(|| format!("unreadable position {created}"))
            }
        }
    })
}

const ALLOW_PLUGIN_SQL: &str = "SELECT pg_catalog.set_config('output_plugin_libraries', \
     pg_catalog.current_setting('output_plugin_libraries') || ', pg_rest', false) \
     WHERE pg_catalog.current_setting('output_plugin_libraries', true) IS NOT NULL";
const SLOT_SQL: &str = "SELECT plugin::text, confirmed_flush_lsn::text \
     FROM pg_catalog.pg_replication_slots WHERE slot_name = $1";
const CREATE_SLOT_SQL: &str =
    "SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pg_rest')";
const QUIET_SQL: &str = "SELECT pg_catalog.set_config('log_min_messages', 'fatal', true)";
fn advance(slot: &str, lsn: u64) -> SpiResult<()> {
    let target = pg_rest_core::realtime::event::format_lsn(lsn);
    Spi::connect(|client| {
        // PostgreSQL logs the start of every decoding at LOG: once a second would flood the
        // log.
        client.select(QUIET_SQL, None, &[])?;
        client.select(
            "SELECT pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)",
            None,
            &[slot.into(), target.into()],
        )?;
        Ok(())
    })
}

fn drop_slot(slot: &str) -> SpiResult<()> {
    Spi::connect(|client| {
        client.select(
            "SELECT pg_catalog.pg_drop_replication_slot(slot_name) \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            None,
            &[slot.into()],
        )?;
        Ok(())
    })
}
