//! The supervisor: a static background worker (registered in `_PG_init`) that keeps
//! `pg_rest.workers` http workers running. It owns the restart policy — the http workers are
//! registered with "never restart", because the postmaster would never restart one that exits
//! 0 (e.g. after `pg_terminate_backend`) — and applies SIGHUP changes of the worker count.
//!
//! Worker handles live in shared memory (`stats::WorkerSlot`), so a supervisor that was itself
//! terminated and restarted adopts the running workers instead of starting duplicates.

use crate::gucs::{self, string_value, MAX_WORKERS};
use crate::stats;
use crate::transport::unavailable::Unavailable;
use crate::worker::signals;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::ffi::c_int;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A worker that lived at least this long is healthy: its next restart is immediate.
const HEALTHY_UPTIME: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the supervisor looks at its workers when nothing wakes it.
const TICK: Duration = Duration::from_millis(500);

/// PostgreSQL's `BackgroundWorkerHandle` (bgworker.c), opaque in the bindings: two plain
/// fields that identify a registration, valid in any process.
#[repr(C)]
#[derive(Clone, Copy)]
struct HandleRepr {
    slot: c_int,
    generation: u64,
}

/// What the supervisor knows of one http worker slot.
struct Slot {
    handle: Option<HandleRepr>,
    /// Told to stop (pg_rest.workers was lowered); its index is not reused until it is gone,
    /// so two processes never share one statistics slot.
    stopping: bool,
    started_at: Instant,
    not_before: Instant,
    backoff: Duration,
}

pub fn register() {
    BackgroundWorkerBuilder::new("pg_rest supervisor")
        .set_type("pg_rest supervisor")
        .set_library("pg_rest")
        .set_function("pg_rest_supervisor_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_rest_supervisor_main(_arg: pg_sys::Datum) {
    let wake = match signals::install(false) {
        Ok(fd) => fd,
        Err(e) => {
            quiet_log!("pg_rest supervisor: cannot create its wake-up pipe: {e}");
            // SAFETY: ending this process; exit code 1 lets the postmaster restart it.
            unsafe { pg_sys::proc_exit(1) }
        }
    };
    // No database: the supervisor only reads the shared catalog pg_database.
    BackgroundWorker::connect_worker_to_spi(None, None);
    let mut supervisor = Supervisor::adopt();
    let listen_failure = crate::transport::listener::preload_failure();
    match listen_failure {
        None => quiet_log!(
            "pg_rest supervisor started; {} http worker(s) wanted",
            gucs::WORKERS.get()
        ),
        Some(why) => quiet_log!("pg_rest: not serving HTTP, no http worker starts: {why}"),
    }
    let mut unavailable = Unavailable::default();
    while !signals::terminating() {
        signals::drain(&wake);
        signals::absorb_interrupts();
        if signals::take_sighup() {
            crate::worker::config::reload_config_file();
        }
        if listen_failure.is_none() {
            supervisor.reconcile();
            match supervisor.why_not_serving() {
                Some(why) => unavailable.answer(why),
                None => unavailable.drain(Instant::now()),
            }
        }
        signals::wait(TICK);
    }
    // Leave the http workers serving: in a server shutdown the postmaster stops them itself;
    // after pg_terminate_backend the restarted supervisor adopts them. Exit 1 so the
    // postmaster restarts this worker (it would unregister it on 0).
    quiet_log!("pg_rest supervisor exiting on SIGTERM");
    // SAFETY: ending this process.
    unsafe { pg_sys::proc_exit(1) };
}

struct Supervisor {
    slots: Vec<Slot>,
    /// The realtime worker (src/realtime/worker.rs), started once the database exists.
    realtime: Slot,
    /// The last reason logged for not starting workers (database missing, wrong encoding).
    database_problem_logged: Option<String>,
}

impl Supervisor {
    /// Takes over the handles a previous supervisor left in shared memory.
    fn adopt() -> Supervisor {
        let now = Instant::now();
        let slots = (0..MAX_WORKERS as usize)
            .map(|i| {
                let shared = stats::slot(i);
                let slot = shared.handle_slot.load(Relaxed);
                let handle = (slot > 0).then(|| HandleRepr {
                    slot: (slot - 1) as c_int,
                    generation: shared.handle_generation.load(Relaxed) as u64,
                });
                Slot {
                    handle,
                    stopping: false,
                    started_at: now,
                    not_before: now,
                    backoff: FIRST_BACKOFF,
                }
            })
            .collect();
        let (slot, generation) = crate::realtime::handle();
        let realtime = Slot {
            handle: (slot > 0).then(|| HandleRepr {
                slot: (slot - 1) as c_int,
                generation: generation as u64,
            }),
            stopping: false,
            started_at: now,
            not_before: now,
            backoff: FIRST_BACKOFF,
        };
        Supervisor {
            slots,
            realtime,
            database_problem_logged: None,
        }
    }

    /// Starts missing workers (with backoff), stops surplus ones.
    fn reconcile(&mut self) {
        let wanted = gucs::WORKERS.get().clamp(1, MAX_WORKERS) as usize;
        let now = Instant::now();
        let mut may_start: Option<bool> = None;
        for i in 0..self.slots.len() {
            let running = self.slots[i].handle.and_then(worker_pid).is_some();
            if !running && self.slots[i].handle.take().is_some() {
                forget_handle(i);
                if !std::mem::take(&mut self.slots[i].stopping) && i < wanted {
                    self.note_exit(i, now);
                }
            }
            if i >= wanted {
                if running && !self.slots[i].stopping {
                    quiet_log!("pg_rest: stopping http worker {i} (pg_rest.workers = {wanted})");
                    if let Some(h) = self.slots[i].handle {
                        terminate(h);
                    }
                    self.slots[i].stopping = true;
                }
                continue;
            }
            if running || now < self.slots[i].not_before {
                continue;
            }
            if *may_start.get_or_insert_with(|| self.database_exists()) && !self.start(i, now) {
                // No background worker slot left: the others would fail the same way.
                may_start = Some(false);
            }
        }
        if *may_start.get_or_insert_with(|| self.database_exists()) {
            self.reconcile_realtime(now);
        }
    }

    /// Keeps the realtime worker running (with the http workers' backoff); it connects to
    /// the database, so it starts only once that exists.
    fn reconcile_realtime(&mut self, now: Instant) {
        let slot = &mut self.realtime;
        if slot.handle.and_then(worker_pid).is_some() {
            return;
        }
        if slot.handle.take().is_some() {
            crate::realtime::set_handle(0, 0);
            let uptime = now.duration_since(slot.started_at);
            if uptime >= HEALTHY_UPTIME {
                slot.backoff = FIRST_BACKOFF;
                slot.not_before = now;
            } else {
                slot.not_before = now + slot.backoff;
                slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
            }
            quiet_log!("pg_rest: the realtime worker exited; restarting it");
        }
        if now < slot.not_before {
            return;
        }
        match register_dynamic(
            "pg_rest realtime",
            "pg_rest realtime",
            "pg_rest_realtime_main",
            0,
        ) {
            Some(h) => {
                crate::realtime::set_handle(h.slot as i64 + 1, h.generation as i64);
                slot.handle = Some(h);
                slot.started_at = now;
            }
            None => {
                slot.not_before = now + slot.backoff;
                slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
                quiet_log!(
                    "pg_rest: could not start the realtime worker: no free background worker \
                     slot; raise max_worker_processes"
                );
            }
        }
    }

    /// Why no http worker serves, when none runs because of the database: the supervisor then
    /// answers waiting clients itself.
    fn why_not_serving(&self) -> Option<&str> {
        let problem = self.database_problem_logged.as_deref()?;
        let none_running = self
            .slots
            .iter()
            .all(|s| s.handle.and_then(worker_pid).is_none());
        none_running.then(|| problem.trim_start_matches("pg_rest: "))
    }

    /// Logs why a worker is restarted, and when: quick deaths back off exponentially.
    fn note_exit(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        let uptime = now.duration_since(slot.started_at);
        if uptime >= HEALTHY_UPTIME {
            slot.backoff = FIRST_BACKOFF;
            slot.not_before = now;
            quiet_log!(
                "pg_rest: http worker {i} exited after {}s; restarting it now",
                uptime.as_secs()
            );
        } else {
            slot.not_before = now + slot.backoff;
            quiet_log!(
                "pg_rest: http worker {i} exited after {:.1}s (its own log line above says why); restarting it in {}s",
                uptime.as_secs_f32(),
                slot.backoff.as_secs()
            );
            slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Registers http worker `i`; false when PostgreSQL has no worker slot free.
    fn start(&mut self, i: usize, now: Instant) -> bool {
        let name = format!("pg_rest http worker {i}");
        let registered = register_dynamic(&name, "pg_rest http", "pg_rest_http_main", i);
        let slot = &mut self.slots[i];
        let Some(h) = registered else {
            slot.not_before = now + slot.backoff;
            quiet_log!(
                "pg_rest: could not register http worker {i}: no free background worker slot; \
                 raise max_worker_processes (needs pg_rest.workers + 1 for pg_rest, plus what else uses workers)"
            );
            slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
            return false;
        };
        let shared = stats::slot(i);
        shared.handle_generation.store(h.generation as i64, Relaxed);
        shared.handle_slot.store(h.slot as i64 + 1, Relaxed);
        slot.handle = Some(h);
        slot.started_at = now;
        true
    }

    /// Whether `pg_rest.database` exists and can be served (its encoding is UTF8); says once
    /// in the log why not while it cannot. A failed look-up (e.g. a cancel) counts as "not
    /// now", silently.
    fn database_exists(&mut self) -> bool {
        let name = string_value(&gucs::DATABASE);
        let Some(found) = find_database(&name) else {
            return false;
        };
        let problem = match found {
            None => Some(format!(
                "pg_rest: database \"{name}\" (pg_rest.database) does not exist yet; \
                 http workers start once it is created"
            )),
            Some(encoding) if encoding != pg_sys::pg_enc::PG_UTF8 as i32 => Some(format!(
                "pg_rest: database \"{name}\" (pg_rest.database) has encoding {}; pg_rest \
                 serves UTF8 databases only, so no http worker starts (create the database \
                 with ENCODING 'UTF8', or point pg_rest.database at one)",
                encoding_name(encoding)
            )),
            Some(_) => None,
        };
        if problem.is_some() && problem != self.database_problem_logged {
            quiet_log!("{}", problem.as_deref().unwrap_or_default());
        }
        let servable = problem.is_none();
        self.database_problem_logged = problem;
        servable
    }
}

/// Registers a dynamic background worker of pg_rest's that the supervisor restarts itself
/// (never the postmaster); None when PostgreSQL has no worker slot free.
fn register_dynamic(name: &str, kind: &str, function: &str, arg: usize) -> Option<HandleRepr> {
    let builder = BackgroundWorkerBuilder::new(name)
        .set_type(kind)
        .set_library("pg_rest")
        .set_function(function)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(None)
        .set_argument(Some(pg_sys::Datum::from(arg)))
        // SAFETY: reading this process's pid.
        .set_notify_pid(unsafe { pg_sys::MyProcPid });
    let mut bgw: pg_sys::BackgroundWorker = (&builder).into();
    let mut handle: *mut pg_sys::BackgroundWorkerHandle = std::ptr::null_mut();
    // SAFETY: bgw is a complete registration; on success PostgreSQL sets `handle`.
    let ok = unsafe { pg_sys::RegisterDynamicBackgroundWorker(&mut bgw, &mut handle) };
    if !ok || handle.is_null() {
        return None;
    }
    // SAFETY: a BackgroundWorkerHandle is exactly this struct (bgworker.c); the palloc'd
    // original is not needed once copied.
    Some(unsafe {
        let h = *handle.cast::<HandleRepr>();
        pg_sys::pfree(handle.cast());
        h
    })
}

/// A server encoding's name (`LATIN1`), for log lines.
pub fn encoding_name(encoding: i32) -> String {
    // SAFETY: returns a static string, "" for an unknown number.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::pg_encoding_to_char(encoding)) }
        .to_string_lossy()
        .into_owned()
}

/// The encoding of database `name`, None inside when it does not exist; None outside when the
/// look-up failed. Scans pg_database without an index: right after a server start the shared
/// relcache init file may be missing, and opening an index would then need pg_class, which a
/// process connected to no database cannot read.
fn find_database(name: &str) -> Option<Option<i32>> {
    // SAFETY: one short transaction around a heap scan of a shared catalog, aborted on error.
    unsafe {
        pg_sys::StartTransactionCommand();
        PgTryBuilder::new(|| {
            let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as _);
            let scan = pg_sys::systable_beginscan(
                rel,
                pg_sys::InvalidOid,
                false,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            );
            let mut found = None;
            loop {
                let tuple = pg_sys::systable_getnext(scan);
                if tuple.is_null() {
                    break;
                }
                let data = (*tuple).t_data;
                let form = data
                    .cast::<u8>()
                    .add((*data).t_hoff as usize)
                    .cast::<pg_sys::FormData_pg_database>();
                let datname = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr());
                if datname.to_bytes() == name.as_bytes() {
                    found = Some((*form).encoding);
                    break;
                }
            }
            pg_sys::systable_endscan(scan);
            pg_sys::table_close(rel, pg_sys::AccessShareLock as _);
            pg_sys::CommitTransactionCommand();
            Some(found)
        })
        .catch_others(|_| {
            pg_sys::AbortCurrentTransaction();
            None
        })
        .execute()
    }
}

/// The worker's pid if it is running.
fn worker_pid(h: HandleRepr) -> Option<i32> {
    let mut handle = h;
    let mut pid: pg_sys::pid_t = 0;
    // SAFETY: GetBackgroundWorkerPid only reads the handle's two fields.
    let status = unsafe {
        pg_sys::GetBackgroundWorkerPid((&mut handle as *mut HandleRepr).cast(), &mut pid)
    };
    match status {
        pg_sys::BgwHandleStatus::BGWH_STARTED | pg_sys::BgwHandleStatus::BGWH_NOT_YET_STARTED => {
            Some(pid)
        }
        _ => None,
    }
}

fn terminate(h: HandleRepr) {
    let mut handle = h;
    // SAFETY: as above; the postmaster sends SIGTERM and unregisters the worker.
    unsafe { pg_sys::TerminateBackgroundWorker((&mut handle as *mut HandleRepr).cast()) };
}

fn forget_handle(i: usize) {
    stats::slot(i).handle_slot.store(0, Relaxed);
}
