//! Execute: runs one request as one transaction (REQUEST-BOUNDARY.md). Every PostgreSQL ERROR,
//! cancel, timeout or Rust panic inside is caught here, the transaction aborted, and the
//! client gets PostgREST's error JSON; the worker goes on serving.

use crate::settings;
use crate::worker::signals;
use pg_rest_core::api_request::{Access, TxMode};
use pg_rest_core::error::{unpack_sqlstate, ApiError};
use pg_rest_core::lru::Lru;
use pg_rest_core::preferences::TxEnd;
use pg_rest_core::response::Outcome;
use pg_rest_core::schema_cache::{Isolation, RoleSettings};
use pg_rest_core::sql::Statement;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{IntoDatum, PgTryBuilder};
use std::cell::Cell;
use std::ffi::{c_char, c_int, CString};
use std::panic::AssertUnwindSafe;

/// Kept plans per worker; beyond this the least recently used is freed.
const PLAN_CACHE_CAPACITY: usize = 512;

/// PostgreSQL's `TimeoutId::STATEMENT_TIMEOUT` (utils/timeout.h), not in pgrx's bindings.
const STATEMENT_TIMEOUT: c_int = 3;

extern "C-unwind" {
    fn enable_timeout_after(id: c_int, delay_ms: c_int);
    fn disable_timeout(id: c_int, keep_indicator: bool);
}

/// Who runs a request, and what SQL may read of it via `current_setting`.
pub struct RequestContext<'a> {
    pub role: &'a str,
    /// The role is not the anonymous one: permission denied is then 403, not 401.
    pub authenticated: bool,
    /// `request.jwt.claims`, `request.headers`, `request.cookies` (JSON texts).
    pub claims: &'a str,
    pub headers: &'a str,
    pub cookies: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The request's `search_path`, names quoted.
    pub search_path: &'a str,
    /// The `pg_rest.pre_request` call, if one is set.
    pub pre_request: Option<&'a str>,
    pub statement_timeout_ms: i32,
    /// `Prefer: timezone=`: the transaction's TimeZone (an unknown zone is PostgreSQL's 22023).
    pub timezone: Option<&'a str>,
    /// Read-only or read-write; committed or rolled back at the end.
    pub tx: TxMode,
}

/// Runs `body` in a fresh transaction in the request's mode (read-only for GET and HEAD);
/// on `Ok` commits — or rolls back for `Prefer: tx=rollback` — and aborts on `Err`, ERROR
/// or panic. `body` does its own catalog work first (schema cache), then calls
/// [`begin_request_sql`], which arms the statement timer; the timer stays armed through the
/// commit, so deferred triggers and constraint checks are bounded too.
pub fn in_transaction<T>(
    ctx: &RequestContext,
    body: impl FnOnce(&RequestContext) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    signals::clear_cancel();
    LAST_COMMIT.with(|c| c.set(0));
    let errcode = ErrcodeCapture::push();
    let result = PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: the start of a transaction in a worker connected to a database; inside the
        // guard, so even a failing start is aborted and answered.
        unsafe {
            pg_sys::SetCurrentStatementStartTimestamp();
            pg_sys::StartTransactionCommand();
            // What SET TRANSACTION READ ONLY does; before the first snapshot, so nothing
            // inside can switch it back.
            if ctx.tx.access == Access::ReadOnly {
                pg_sys::XactReadOnly = true;
            }
            pg_sys::XactIsoLevel = match ctx.tx.isolation {
                Isolation::ReadCommitted => pg_sys::XACT_READ_COMMITTED,
                Isolation::RepeatableRead => pg_sys::XACT_REPEATABLE_READ,
                Isolation::Serializable => pg_sys::XACT_SERIALIZABLE,
            } as i32;
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        let outcome = body(ctx);
        // SAFETY: ending the transaction started above; a failing commit (deferred
        // constraints, or the statement timer firing in them) raises inside this guard and is
        // caught like any other ERROR.
        let ended = unsafe {
            match outcome {
                Ok(v) if ctx.tx.end == TxEnd::Commit => {
                    pg_sys::PopActiveSnapshot();
                    commit(ctx.tx.access);
                    Ok(v)
                }
                Ok(v) => {
                    pg_sys::AbortCurrentTransaction();
                    Ok(v)
                }
                Err(e) => {
                    pg_sys::AbortCurrentTransaction();
                    Err(e)
                }
            }
        };
        disarm_statement_timeout();
        ended
    }))
    .catch_others(|caught| {
        disarm_statement_timeout();
        abort_after_error();
        Err(api_error(caught, ctx.authenticated, errcode.last()))
    })
    .execute();
    drop(errcode);
    signals::clear_cancel();
    // SAFETY: updates this backend's pg_stat_activity entry.
    unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()) };
    result
}

thread_local! {
    /// The commit of the request just run, when its WAL flush is left to `flush_wal`.
    static UNFLUSHED_COMMIT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Where the last read-write request's commit record ended (0: it wrote none).
    static LAST_COMMIT: Cell<u64> = const { Cell::new(0) };
}

/// Commits the request's transaction. A read-write one whose commit would wait for its own
/// WAL flush (synchronous_commit `local` or `on` without synchronous standbys) commits without
/// waiting instead, and leaves its commit position for [`take_unflushed_commit`]: the event
/// loop flushes once for all such commits of a pass and only then sends their responses
/// (group commit). A client is never told "committed" before the commit is durable; other
/// sessions may see the rows a few milliseconds before that, as with PostgreSQL's own
/// `synchronous_commit = off`. With synchronous standbys the commit is left as configured.
///
/// # Safety
/// Inside the request's transaction, with its snapshot popped.
unsafe fn commit(access: Access) {
    // SAFETY: reading GUC variables of this backend.
    let defer = access == Access::ReadWrite && unsafe { flush_is_local_and_awaited() };
    if defer {
        settings::set_local("synchronous_commit", "off");
    }
    if access == Access::ReadWrite {
        // SAFETY: cleared so that a transaction that writes no commit record (no XID) leaves
        // 0; RecordTransactionCommit sets it when it writes one.
        unsafe { pg_sys::XactLastCommitEnd = 0 };
    }
    // SAFETY: the caller's transaction.
    unsafe { pg_sys::CommitTransactionCommand() };
    // SAFETY: set by the commit just made.
    let lsn = unsafe { pg_sys::XactLastCommitEnd };
    if access == Access::ReadWrite {
        LAST_COMMIT.with(|c| c.set(lsn));
    }
    if defer && lsn != 0 {
        UNFLUSHED_COMMIT.with(|c| c.set(Some(lsn)));
    }
}

/// Whether this transaction's commit would wait for a local WAL flush only.
unsafe fn flush_is_local_and_awaited() -> bool {
    // SAFETY: GUC variables of this backend, read between statements.
    let (level, standbys) = unsafe { (pg_sys::synchronous_commit, pg_sys::SyncRepStandbyNames) };
    let level = level as u32;
    // SAFETY: a GUC string, NUL-terminated, or NULL.
    let no_standbys = standbys.is_null() || unsafe { *standbys } == 0;
    level != pg_sys::SyncCommitLevel::SYNCHRONOUS_COMMIT_OFF
        && (no_standbys || level == pg_sys::SyncCommitLevel::SYNCHRONOUS_COMMIT_LOCAL_FLUSH)
}

/// Where the last read-write request's commit record ended, once; None when it wrote no
/// commit record (nothing changed, or it rolled back). For `Pg-Rest-Lsn`.
pub fn take_commit_lsn() -> Option<u64> {
    Some(LAST_COMMIT.with(|c| c.take())).filter(|&lsn| lsn != 0)
}

/// The commit position the last request left unflushed (see [`commit`]), once.
pub fn take_unflushed_commit() -> Option<u64> {
    UNFLUSHED_COMMIT.with(|c| c.take())
}

/// Flushes the WAL up to `lsn` (one fsync for a whole pass's commits); returns how far it is
/// flushed, or None if the flush failed (an ERROR, logged).
pub fn flush_wal(lsn: u64) -> Option<u64> {
    PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: outside any transaction or critical section; XLogFlush raises on failure.
        unsafe {
            pg_sys::XLogFlush(lsn);
            // Commits the realtime worker may now decode (it reads flushed WAL only).
            crate::realtime::wake_if_wanted();
            Some(pg_sys::GetFlushRecPtr(std::ptr::null_mut()).max(lsn))
        }
    }))
    .catch_others(|e| {
        crate::quiet_log!("pg_rest: WAL flush failed, connections waiting for it closed: {e:?}");
        None
    })
    .execute()
}

/// The SQLSTATE of the last error raised inside a request, as PostgreSQL raised it: an error
/// context callback on PostgreSQL's stack for the request's duration, which reads `geterrcode()`
/// while each report is being built.
struct ErrcodeCapture {
    callback: Box<pg_sys::ErrorContextCallback>,
}

static LAST_ERRCODE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

impl ErrcodeCapture {
    fn push() -> ErrcodeCapture {
        LAST_ERRCODE.store(0, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: a callback entry that outlives its place on the stack (popped in Drop, also
        // after a caught ERROR, whose longjmp leaves the stack pointing at it).
        unsafe {
            let mut callback = Box::new(pg_sys::ErrorContextCallback {
                previous: pg_sys::error_context_stack,
                callback: Some(capture_errcode),
                arg: std::ptr::null_mut(),
            });
            pg_sys::error_context_stack = &mut *callback;
            ErrcodeCapture { callback }
        }
    }

    fn last(&self) -> i32 {
        LAST_ERRCODE.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for ErrcodeCapture {
    fn drop(&mut self) {
        // SAFETY: restores the stack as it was before `push`.
        unsafe { pg_sys::error_context_stack = self.callback.previous };
    }
}

/// Called by PostgreSQL while it builds an error report: remembers its SQLSTATE. Only reads.
#[pg_guard]
unsafe extern "C-unwind" fn capture_errcode(_arg: *mut std::ffi::c_void) {
    // SAFETY: geterrcode is meant for error context callbacks.
    let code = unsafe { pg_sys::geterrcode() };
    LAST_ERRCODE.store(code, std::sync::atomic::Ordering::Relaxed);
}

/// What PostgreSQL's own error recovery does before the next transaction, for an ERROR
/// caught in ours: abort the transaction, and release a replication slot the failed
/// statement held (a slot function that raised; an abort alone leaves it acquired, and a
/// half-created one behind).
pub fn abort_after_error() {
    // SAFETY: after a caught ERROR the transaction must be aborted before anything else; the
    // slot calls are those of PostgresMain's error recovery.
    unsafe {
        pg_sys::AbortCurrentTransaction();
        if !pg_sys::MyReplicationSlot.is_null() {
            pg_sys::ReplicationSlotRelease();
        }
        pg_sys::ReplicationSlotCleanup();
    }
}

/// Runs a closure that may raise, logging instead of propagating (configuration reloads).
pub fn guarded_void(f: impl FnOnce()) {
    PgTryBuilder::new(AssertUnwindSafe(f))
        .catch_others(|e| crate::quiet_log!("pg_rest: {}", describe(&e)))
        .execute();
}

/// Starts the request's own SQL: its settings ([`settings::apply`]), then arms the statement
/// timer (so a role's `statement_timeout` counts) and calls `pg_rest.pre_request`. After the
/// schema-cache work, so a small timeout cannot starve a cache reload.
pub fn begin_request_sql(
    ctx: &RequestContext,
    role_settings: Option<&RoleSettings>,
    plans: &mut PlanCache,
) {
    settings::apply(ctx, role_settings);
    arm_statement_timeout(ctx.statement_timeout_ms);
    if let Some(call) = ctx.pre_request {
        run_for_effects(plans, call);
    }
}

/// The statement timeout a request runs under, in milliseconds (0: none): the shorter of
/// `pg_rest.statement_timeout` and the server's `statement_timeout`.
pub fn statement_timeout_ms(pg_rest_ms: i32) -> i32 {
    // SAFETY: reading the current value of a GUC variable.
    let server_ms = unsafe { pg_sys::StatementTimeout };
    pg_rest_core::settings::effective_statement_timeout(pg_rest_ms, server_ms)
}

/// How far this standby has replayed the primary's WAL (0 on a primary).
pub fn replay_lsn() -> u64 {
    // SAFETY: reads the shared replay position; callable in any backend.
    unsafe { pg_sys::GetXLogReplayRecPtr(std::ptr::null_mut()) }
}

/// How far this server has flushed its WAL (a primary's position for its replicas' lag).
pub fn flushed_lsn() -> u64 {
    // SAFETY: reads the shared flush position; callable in any backend.
    unsafe { pg_sys::GetFlushRecPtr(std::ptr::null_mut()) }
}

/// True on a hot standby (writes are forwarded to the primary). Cheap: after recovery has
/// ended PostgreSQL answers from a local flag.
pub fn in_recovery() -> bool {
    // SAFETY: reads the shared recovery state; callable in any backend.
    unsafe { pg_sys::RecoveryInProgress() }
}

/// A kept plan and its SQL as a C string (what pg_stat_activity shows while it runs).
struct KeptPlan {
    plan: pg_sys::SPIPlanPtr,
    sql: CString,
}

/// Prepared plans kept across transactions, keyed by SQL text (= request shape), least
/// recently used evicted beyond `PLAN_CACHE_CAPACITY`.
pub struct PlanCache {
    plans: Lru<KeptPlan>,
}

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache {
            plans: Lru::new(PLAN_CACHE_CAPACITY),
        }
    }
}

impl PlanCache {
    /// Plans kept now.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Returns the kept plan for `sql`, preparing and keeping it on first use, and reports the
    /// statement to pg_stat_activity. Inside SPI.
    fn plan(&mut self, sql: &str, nargs: usize) -> pg_sys::SPIPlanPtr {
        // Raw copies, not borrows: the CString's buffer stays put when the entry moves.
        let (plan, text) = match self.plans.get(sql) {
            Some(kept) => (kept.plan, kept.sql.as_ptr()),
            None => {
                let kept = prepare(sql, nargs);
                let found = (kept.plan, kept.sql.as_ptr());
                if let Some(evicted) = self.plans.insert(sql.to_string(), kept) {
                    // SAFETY: a kept plan no one else references.
                    unsafe { pg_sys::SPI_freeplan(evicted.plan) };
                }
                found
            }
        };
        // SAFETY: copies the C string, owned by the cache entry, into this backend's activity slot.
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, text) };
        plan
    }
}

/// Prepares `sql` with `nargs` text parameters and keeps the plan beyond this transaction.
fn prepare(sql: &str, nargs: usize) -> KeptPlan {
    let Ok(csql) = CString::new(sql) else {
        error!("pg_rest: SQL text contains a NUL byte")
    };
    let mut argtypes = vec![pg_sys::TEXTOID; nargs];
    // SAFETY: inside SPI_connect; an ERROR longjmps into the request boundary.
    let plan = unsafe { pg_sys::SPI_prepare(csql.as_ptr(), nargs as c_int, argtypes.as_mut_ptr()) };
    // SAFETY: SPI_keepplan moves a valid plan out of the SPI procedure context.
    if plan.is_null() || unsafe { pg_sys::SPI_keepplan(plan) } != 0 {
        error!("pg_rest: preparing a statement failed");
    }
    KeptPlan { plan, sql: csql }
}

/// Runs a statement without parameters for its effects (`pg_rest.pre_request`); its result
/// is ignored, its ERROR aborts the request.
fn run_for_effects(plans: &mut PlanCache, sql: &str) {
    // SAFETY: SPI calls in order, inside the request's transaction; ERRORs raise into the
    // request boundary.
    unsafe {
        pg_sys::SPI_connect();
        let plan = plans.plan(sql, 0);
        pg_sys::SPI_execute_plan(plan, std::ptr::null_mut(), std::ptr::null(), false, 0);
        pg_sys::SPI_finish();
    }
}

/// Runs a statement of the shape every read, write and call has (`sql::push_tail`) and
/// returns its one row. `read_only` as SPI means it: false for writes, and for calls that may
/// write.
pub fn run_statement(plans: &mut PlanCache, stmt: &Statement, read_only: bool) -> Outcome {
    // SAFETY: SPI calls in order, inside the request's transaction; ERRORs raise into the
    // request boundary, which aborts the transaction (that also ends SPI).
    unsafe {
        pg_sys::SPI_connect();
        let (tuple, desc) = execute_one_row(plans, stmt, read_only);
        let int8 = |n: usize| {
            let mut is_null = false;
            let v = pg_sys::SPI_getbinval(tuple, desc, n as c_int, &mut is_null).value() as i64;
            Ok::<_, std::convert::Infallible>((!is_null).then_some(v))
        };
        let Ok(outcome) = Outcome::from_tail(int8, |n| text_column(tuple, desc, n as c_int));
        pg_sys::SPI_finish();
        outcome
    }
}

/// Runs a statement whose first row's first column is text and returns it; not as SPI's
/// read-only statement, which may not be an EXPLAIN.
pub fn run_text(plans: &mut PlanCache, stmt: &Statement) -> Option<String> {
    // SAFETY: as in `run_read`.
    unsafe {
        pg_sys::SPI_connect();
        let (tuple, desc) = execute_one_row(plans, stmt, false);
        let text = text_column(tuple, desc, 1);
        pg_sys::SPI_finish();
        text.and_then(|t| String::from_utf8(t).ok())
    }
}

/// Runs a statement and returns its first column (text) of every row; `read_only` as SPI
/// means it (an EXPLAIN may not run so).
pub fn run_column(plans: &mut PlanCache, stmt: &Statement, read_only: bool) -> Vec<Option<String>> {
    // SAFETY: as in `run_read`; every row is read before SPI_finish frees them.
    unsafe {
        pg_sys::SPI_connect();
        execute(plans, stmt, read_only, 0);
        let mut out = Vec::new();
        if !pg_sys::SPI_tuptable.is_null() {
            let table = &*pg_sys::SPI_tuptable;
            for i in 0..pg_sys::SPI_processed as usize {
                let text = text_column(*table.vals.add(i), table.tupdesc, 1);
                out.push(text.and_then(|t| String::from_utf8(t).ok()));
            }
        }
        pg_sys::SPI_finish();
        out
    }
}

/// Executes `stmt` (inside SPI) and returns its first row; a statement returning no row is an
/// internal error.
unsafe fn execute_one_row(
    plans: &mut PlanCache,
    stmt: &Statement,
    read_only: bool,
) -> (pg_sys::HeapTuple, pg_sys::TupleDesc) {
    // SAFETY: the caller is inside SPI in the request's transaction.
    unsafe {
        let rc = execute(plans, stmt, read_only, 1);
        if rc < 0 || pg_sys::SPI_processed < 1 || pg_sys::SPI_tuptable.is_null() {
            error!("pg_rest: unexpected result from a statement (SPI code {rc})");
        }
        let table = &*pg_sys::SPI_tuptable;
        (*table.vals, table.tupdesc)
    }
}

/// Executes `stmt` with its text parameters through its kept plan (inside SPI), at most
/// `count` rows (0: all); returns SPI's code.
unsafe fn execute(plans: &mut PlanCache, stmt: &Statement, read_only: bool, count: i64) -> c_int {
    let plan = plans.plan(&stmt.sql, stmt.params.len());
    let mut values: Vec<pg_sys::Datum> = stmt
        .params
        .iter()
        .map(|p| p.as_str().into_datum().unwrap_or(pg_sys::Datum::from(0)))
        .collect();
    let nulls: Vec<c_char> = vec![b' ' as c_char; values.len()];
    // SAFETY: parameters match the plan's argument count; called inside SPI.
    unsafe { pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), read_only, count) }
}

/// A text column's bytes as they are: the database is UTF8 (checked at worker start), so no
/// conversion and no second validation pass. None for NULL.
unsafe fn text_column(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    n: c_int,
) -> Option<Vec<u8>> {
    // SAFETY: a column of the row SPI just returned.
    unsafe {
        let mut is_null = false;
        let datum = pg_sys::SPI_getbinval(tuple, desc, n, &mut is_null);
        if is_null {
            return None;
        }
        let text = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        Some(pgrx::varlena::varlena_to_byte_slice(text).to_vec())
    }
}

/// Arms PostgreSQL's statement timer, which SPI in a background worker does not arm by itself,
/// with the shorter of `pg_rest.statement_timeout` and the server's `statement_timeout`
/// (database and authenticator-role defaults included).
fn arm_statement_timeout(pg_rest_ms: i32) {
    let ms = statement_timeout_ms(pg_rest_ms);
    if ms > 0 {
        // SAFETY: a plain timer call; the SIGALRM handler sets QueryCancelPending.
        unsafe { enable_timeout_after(STATEMENT_TIMEOUT, ms) };
    }
}

fn disarm_statement_timeout() {
    // SAFETY: disarming a possibly unarmed timer is a no-op.
    unsafe { disable_timeout(STATEMENT_TIMEOUT, false) };
}

/// The client's view of a caught failure.
fn api_error(caught: pg_sys::panic::CaughtError, authenticated: bool, raw_code: i32) -> ApiError {
    use pg_sys::panic::CaughtError;
    match &caught {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
            // pgrx reports SQLSTATEs it has no name for (`RAISE SQLSTATE 'PT402'`) as XX000;
            // the code captured when the error was raised is the real one.
            let reported = report.sql_error_code() as i32;
            let internal = pg_sys::errcodes::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR as i32;
            let code = if reported == internal && raw_code != 0 {
                unpack_sqlstate(raw_code)
            } else {
                unpack_sqlstate(reported)
            };
            if code == "57014" && signals::terminating() {
                return ApiError::shutting_down();
            }
            ApiError::from_postgres(
                &code,
                report.message(),
                report.detail(),
                report.hint(),
                authenticated,
            )
        }
        CaughtError::RustPanic { .. } => {
            crate::quiet_log!(
                "pg_rest: request aborted by an internal error: {}",
                describe(&caught)
            );
            ApiError::internal(
                "internal error in pg_rest; the request was rolled back (see the server log)",
            )
        }
    }
}

pub(crate) fn describe(caught: &pg_sys::panic::CaughtError) -> String {
    use pg_sys::panic::CaughtError;
    match caught {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.message().to_string(),
        CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}
