//! Realtime (docs/realtime.md): the realtime worker decodes committed changes from its slot
//! and hands them to every http worker over a local stream socket; each http worker matches
//! them against its own subscribers ([`hub`]).
//!
//! This module holds what all processes share: the realtime worker's state and latch in
//! shared memory, and the commit callback through which any backend wakes it.

pub mod board;
pub mod decoder;
pub mod hub;
pub mod worker;

use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// The socket, relative to the data directory (every server process's working directory):
/// only the server's OS user may open it, and no path length limit applies.
pub const SOCKET: &str = "pg_rest_realtime.sock";

/// What the realtime worker is doing, for the http workers to tell their clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet, or restarting.
    Starting = 0,
    Running = 1,
    /// `wal_level` is below `logical`.
    NoLogicalWal = 2,
    /// `pg_rest.realtime = off`.
    Off = 3,
    /// The slot could not be created or read (the log says why).
    Failed = 4,
    /// The server is a hot standby: PostgreSQL 15 decodes only on a primary.
    Standby = 5,
}

#[derive(Default)]
pub struct Shared {
    state: AtomicI64,
    /// The realtime worker's `Latch *` (shared memory, the same address in every process).
    latch: AtomicI64,
    /// The realtime worker has subscribers: commits wake it.
    wanted: AtomicI64,
    /// Its `BackgroundWorkerHandle` (slot + 1, generation; 0: none), so a restarted
    /// supervisor adopts it instead of starting another.
    handle_slot: AtomicI64,
    handle_generation: AtomicI64,
}

// SAFETY: only atomics.
unsafe impl PGRXSharedMemory for Shared {}

static SHARED: PgAtomic<Shared> = unsafe { PgAtomic::new(c"pg_rest_realtime") };

/// Reserves the shared memory and installs the commit callback; `_PG_init` under
/// shared_preload_libraries only (every backend then inherits the callback).
pub fn init() {
    pg_shmem_init!(SHARED);
    board::init();
    // SAFETY: registering a callback that only reads and sets atomics and a latch.
    unsafe { pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut()) };
}

/// The realtime worker's handle as the supervisor left it.
pub fn handle() -> (i64, i64) {
    let s = SHARED.get();
    (
        s.handle_slot.load(Relaxed),
        s.handle_generation.load(Relaxed),
    )
}

pub fn set_handle(slot: i64, generation: i64) {
    let s = SHARED.get();
    s.handle_generation.store(generation, Relaxed);
    s.handle_slot.store(slot, Relaxed);
}

pub fn state() -> State {
    match SHARED.get().state.load(Relaxed) {
        1 => State::Running,
        2 => State::NoLogicalWal,
        3 => State::Off,
        4 => State::Failed,
        5 => State::Standby,
        _ => State::Starting,
    }
}

fn set_state(s: State) {
    SHARED.get().state.store(s as i64, Relaxed);
}

/// Why realtime cannot serve now, in words for a 503 or an error event; None when it can.
pub fn unavailable() -> Option<&'static str> {
    match state() {
        State::Running => None,
        State::Starting => Some("realtime is starting; retry shortly"),
        State::NoLogicalWal => Some(
            "realtime needs wal_level = logical (set it in postgresql.conf and restart the server)",
        ),
        State::Off => Some("realtime is disabled (pg_rest.realtime = off)"),
        State::Failed => {
            Some("realtime could not read its replication slot; the server log says why")
        }
        State::Standby => Some(
            "this server is a hot standby: realtime is served by the primary (and here once \
             this server is promoted)",
        ),
    }
}

/// Wakes the realtime worker (a subscription request waits for its answer, or the WAL was
/// flushed past commits it should read).
pub fn wake() {
    let latch = SHARED.get().latch.load(Relaxed);
    if latch != 0 {
        // SAFETY: the realtime worker's process latch, in shared memory; SetLatch on another
        // process's latch is what latches are for, and it does not raise.
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
    }
}

/// Wakes the realtime worker when it has subscribers.
pub fn wake_if_wanted() {
    if SHARED.get().wanted.load(Relaxed) != 0 {
        wake();
    }
}

thread_local! {
    /// `XactLastCommitEnd` after this backend's last commit that was looked at.
    static LAST_COMMIT: Cell<u64> = const { Cell::new(0) };
}

/// After each commit: if it wrote a commit record (its end moved) and the realtime worker
/// has subscribers, set its latch. A set latch makes SetLatch a no-op, so a burst of commits
/// costs one wake-up. Must not raise: it runs inside CommitTransaction.
#[pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    if event != pg_sys::XactEvent::XACT_EVENT_COMMIT {
        return;
    }
    // SAFETY: a plain variable of this backend, set by RecordTransactionCommit.
    let end = unsafe { pg_sys::XactLastCommitEnd };
    if LAST_COMMIT.with(|c| c.replace(end)) != end {
        wake_if_wanted();
    }
}

// `pg_rest.publish`: a transactional logical message, so a channel event is delivered when
// its transaction commits and never if it rolls back. SECURITY DEFINER so that any role
// granted EXECUTE may publish (emitting messages is the owner's privilege); EXECUTE is what
// an administrator revokes to restrict publishing.
pgrx::extension_sql!(
    r#"
CREATE FUNCTION pg_rest.publish(channel text, payload jsonb) RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog
  AS $$ SELECT FROM pg_catalog.pg_logical_emit_message(true, 'pg_rest',
          pg_catalog.json_build_object('channel', channel, 'payload', payload)::text) $$;
COMMENT ON FUNCTION pg_rest.publish(text, jsonb) IS 'Publishes payload on a realtime channel when the calling transaction commits.';
-- Roles reach pg_rest.publish through the schema; what they may do in it stays per object.
GRANT USAGE ON SCHEMA pg_rest TO PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_rest.reload_schema() FROM PUBLIC;
"#,
    name = "publish",
    requires = ["reload_schema_after_ddl"]
);
