//! Per-worker counters in shared memory, read by the `pg_rest.stat_workers` view. Each http
//! worker owns the slot of its index; plain atomics, so counting costs a few nanoseconds and no
//! lock, and a reader may see a slot mid-update (harmless for statistics).

use crate::gucs::MAX_WORKERS;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// One http worker's counters.
#[derive(Default)]
pub struct WorkerSlot {
    pub pid: AtomicI64,
    pub connections: AtomicI64,
    pub requests: AtomicI64,
    pub errors: AtomicI64,
    pub bytes_in: AtomicI64,
    pub bytes_out: AtomicI64,
    /// Prepared plans the worker keeps (one per request shape, bounded).
    pub plans: AtomicI64,
    /// Requests forwarded to the primary (on a hot standby), and those of them answered 503
    /// because the primary could not run them.
    pub forwarded: AtomicI64,
    pub forward_failures: AtomicI64,
    /// Connections open to the primary.
    pub primary_links: AtomicI64,
    /// Reads that waited for replay (`Pg-Rest-Lsn`), and those of them the primary answered
    /// because the wait ran out.
    pub reads_waited: AtomicI64,
    pub reads_forwarded: AtomicI64,
    /// The highest WAL position the primary reported to this worker (its writes' commits).
    pub primary_lsn: AtomicI64,
    /// On a primary: reads sent to a read replica.
    pub replica_reads: AtomicI64,
    /// PostgreSQL timestamp (µs since 2000-01-01) the worker started serving.
    pub started: AtomicI64,
    /// `BackgroundWorkerHandle` of the worker in this slot, so a restarted supervisor can
    /// adopt running workers instead of starting duplicates: (slot + 1, generation); 0 = none.
    pub handle_slot: AtomicI64,
    pub handle_generation: AtomicI64,
}

// SAFETY: only atomics, no pointers.
unsafe impl PGRXSharedMemory for WorkerSlot {}

pub type Slots = [WorkerSlot; MAX_WORKERS as usize];

pub static SLOTS: PgAtomic<Slots> = unsafe { PgAtomic::new(c"pg_rest_worker_stats") };

/// Reserves the shared memory; `_PG_init` under shared_preload_libraries only.
pub fn init() {
    pg_shmem_init!(SLOTS = std::array::from_fn(|_| WorkerSlot::default()));
}

/// The slot of worker `index`.
pub fn slot(index: usize) -> &'static WorkerSlot {
    &SLOTS.get()[index.min(MAX_WORKERS as usize - 1)]
}

impl WorkerSlot {
    /// Marks the slot as this process's, counters from zero.
    pub fn claim(&self, pid: i32, started: i64) {
        for c in [
            &self.plans,
            &self.connections,
            &self.requests,
            &self.errors,
            &self.bytes_in,
            &self.bytes_out,
            &self.forwarded,
            &self.forward_failures,
            &self.primary_links,
            &self.reads_waited,
            &self.reads_forwarded,
            &self.primary_lsn,
            &self.replica_reads,
        ] {
            c.store(0, Relaxed);
        }
        self.started.store(started, Relaxed);
        self.pid.store(pid as i64, Relaxed);
    }

    /// Gives the slot up, unless another process already claimed it.
    pub fn release(&self, pid: i32) {
        if self
            .pid
            .compare_exchange(pid as i64, 0, Relaxed, Relaxed)
            .is_ok()
        {
            self.connections.store(0, Relaxed);
        }
    }

    pub fn add(counter: &AtomicI64, n: i64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// Open connections over all running http workers, and how many workers run.
pub fn open_connections() -> (i64, i64) {
    SLOTS
        .get()
        .iter()
        .filter(|s| s.pid.load(Relaxed) != 0)
        .fold((0, 0), |(total, live), s| {
            (total + s.connections.load(Relaxed), live + 1)
        })
}

/// Whether the shared memory exists (false when pg_rest was not preloaded).
pub(crate) fn is_initialized() -> bool {
    // SAFETY: reading a flag PostgreSQL sets once during startup.
    unsafe { crate::PRELOADED }
}

/// The running http workers' slots as (worker index, pid, slot), for the stat views; an
/// ERROR when pg_rest was not preloaded, since the shared memory then does not exist.
fn live_slots() -> impl Iterator<Item = (i32, i32, &'static WorkerSlot)> {
    if !is_initialized() {
        error!("pg_rest is not loaded: add pg_rest to shared_preload_libraries and restart");
    }
    SLOTS.get().iter().enumerate().filter_map(|(i, s)| {
        let pid = s.pid.load(Relaxed) as i32;
        (pid != 0).then_some((i as i32, pid, s))
    })
}

/// A TimestampTz (µs since 2000-01-01) as a SQL value.
fn timestamptz(us: i64) -> Option<pgrx::datum::TimestampWithTimeZone> {
    // SAFETY: any i64 is a valid TimestampTz datum.
    unsafe {
        <pgrx::datum::TimestampWithTimeZone as pgrx::datum::FromDatum>::from_datum(
            pg_sys::Datum::from(us),
            false,
        )
    }
}

/// SQL-callable functions live in the `pg_rest` schema (API.md's SQL API).
#[pg_schema]
mod pg_rest {
    use super::*;

    /// Reloads every http worker's schema cache once the calling transaction commits
    /// (PostgREST's `NOTIFY pgrst, 'reload schema'`, which works too). The extension's event
    /// triggers call it after every DDL command, so it is rarely needed by hand.
    #[pg_extern(volatile, parallel_unsafe)]
    fn reload_schema() {
        if is_initialized() {
            crate::schema_cache::reload_at_commit();
        }
    }

    /// Backs the `pg_rest.stat_workers` view: one row per running http worker.
    #[pg_extern(volatile, parallel_unsafe)]
    #[allow(clippy::type_complexity)]
    fn stat_workers_rows() -> TableIterator<
        'static,
        (
            name!(worker, i32),
            name!(pid, i32),
            name!(connections, i64),
            name!(requests, i64),
            name!(errors, i64),
            name!(bytes_in, i64),
            name!(bytes_out, i64),
            name!(plans, i64),
            name!(started, Option<pgrx::datum::TimestampWithTimeZone>),
        ),
    > {
        let rows: Vec<_> = live_slots()
            .map(|(i, pid, s)| {
                (
                    i,
                    pid,
                    s.connections.load(Relaxed),
                    s.requests.load(Relaxed),
                    s.errors.load(Relaxed),
                    s.bytes_in.load(Relaxed),
                    s.bytes_out.load(Relaxed),
                    s.plans.load(Relaxed),
                    timestamptz(s.started.load(Relaxed)),
                )
            })
            .collect();
        TableIterator::new(rows)
    }

    /// Backs the `pg_rest.stat_forwarding` view: one row per running http worker, what it
    /// sent to the primary (on a hot standby) and the replay lag it saw.
    #[pg_extern(volatile, parallel_unsafe)]
    #[allow(clippy::type_complexity)]
    fn stat_forwarding_rows() -> TableIterator<
        'static,
        (
            name!(worker, i32),
            name!(pid, i32),
            name!(forwarded, i64),
            name!(forward_failures, i64),
            name!(primary_links, i64),
            name!(reads_waited, i64),
            name!(reads_forwarded, i64),
            name!(primary_lsn, Option<String>),
            name!(replay_lag_bytes, Option<i64>),
            name!(replica_reads, i64),
        ),
    > {
        let replayed = crate::execute::replay_lsn();
        let rows: Vec<_> = live_slots()
            .map(|(i, pid, s)| {
                let seen = s.primary_lsn.load(Relaxed) as u64;
                let known = seen != 0;
                (
                    i,
                    pid,
                    s.forwarded.load(Relaxed),
                    s.forward_failures.load(Relaxed),
                    s.primary_links.load(Relaxed),
                    s.reads_waited.load(Relaxed),
                    s.reads_forwarded.load(Relaxed),
                    known.then(|| pg_rest_core::realtime::event::format_lsn(seen)),
                    known.then(|| seen.saturating_sub(replayed) as i64),
                    s.replica_reads.load(Relaxed),
                )
            })
            .collect();
        TableIterator::new(rows)
    }
    /// Backs the `pg_rest.stat_subscriptions` view: one row per realtime subscription, as
    /// each http worker last wrote them (within a tick, 250 ms).
    #[pg_extern(volatile, parallel_unsafe)]
    #[allow(clippy::type_complexity)]
    fn stat_subscriptions_rows() -> TableIterator<
        'static,
        (
            name!(worker, i32),
            name!(pid, i32),
            name!(role, String),
            name!(subscribed_to, String),
            name!(transport, String),
            name!(events_sent, i64),
            name!(dropped, i64),
            name!(since, Option<pgrx::datum::TimestampWithTimeZone>),
        ),
    > {
        let mut rows = Vec::new();
        for (i, pid, _) in live_slots() {
            for line in crate::realtime::board::read(i as usize).lines() {
                let f: Vec<&str> = line.split('\t').collect();
                let [role, what, transport, sent, dropped, since] = f[..] else {
                    continue;
                };
                // µs since the Unix epoch → PostgreSQL's µs since 2000-01-01.
                let since = since.parse::<i64>().ok().map(|us| us - 946_684_800_000_000);
                rows.push((
                    i,
                    pid,
                    role.to_string(),
                    what.to_string(),
                    transport.to_string(),
                    sent.parse().unwrap_or(0),
                    dropped.parse().unwrap_or(0),
                    since.and_then(timestamptz),
                ));
            }
        }
        TableIterator::new(rows)
    }
}

pgrx::extension_sql!(
    r#"
CREATE VIEW pg_rest.stat_workers AS SELECT * FROM pg_rest.stat_workers_rows();
CREATE VIEW pg_rest.stat_subscriptions AS SELECT * FROM pg_rest.stat_subscriptions_rows();
COMMENT ON VIEW pg_rest.stat_subscriptions IS 'One row per realtime subscription: http worker, pid, role, table or channel, transport (websocket, ndjson, jsonp, sse), events sent, events dropped (slow client), since.';
COMMENT ON VIEW pg_rest.stat_workers IS 'One row per pg_rest http worker: pid, open connections, requests, error responses (status >= 400), bytes in/out, kept plans, start time.';
CREATE VIEW pg_rest.stat_forwarding AS SELECT * FROM pg_rest.stat_forwarding_rows();
COMMENT ON VIEW pg_rest.stat_forwarding IS 'One row per pg_rest http worker on a hot standby: requests forwarded to the primary, those answered 503 because it could not run them, connections open to it, reads that waited for replay (Pg-Rest-Lsn) and those the primary answered, the highest primary WAL position seen and how far replay is behind it; on a primary, reads sent to its read replicas.';
"#,
    name = "stat_workers_view",
    requires = [
        pg_rest::stat_workers_rows,
        pg_rest::stat_subscriptions_rows,
        pg_rest::stat_forwarding_rows
    ]
);

// DDL in any session reloads the workers' schema caches at its commit: relcache invalidations
// announce changes to cached relations only, not new functions, types or relations. SECURITY
// DEFINER: the DDL's own role needs no privilege on schema pg_rest.
pgrx::extension_sql!(
    r#"
CREATE FUNCTION pg_rest.reload_schema_after_ddl() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
  AS $$ BEGIN PERFORM pg_rest.reload_schema(); END $$;
CREATE EVENT TRIGGER pg_rest_reload_after_ddl ON ddl_command_end
  EXECUTE FUNCTION pg_rest.reload_schema_after_ddl();
CREATE EVENT TRIGGER pg_rest_reload_after_drop ON sql_drop
  EXECUTE FUNCTION pg_rest.reload_schema_after_ddl();
"#,
    name = "reload_schema_after_ddl",
    requires = [pg_rest::reload_schema]
);

// The "pg_" prefix is reserved for system schemas; a superuser-only extension may create one
// with allow_system_table_mods, transaction-locally (API.md names the schema `pg_rest`).
pgrx::extension_sql!(
    "SET LOCAL allow_system_table_mods = on;",
    name = "allow_pg_rest_schema",
    bootstrap
);

pgrx::extension_sql!(
    "RESET allow_system_table_mods;",
    name = "disallow_system_table_mods",
    finalize
);
