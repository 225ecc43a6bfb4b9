//! The `pg_rest.*` settings (API.md's table, plus `jwt_secret_is_base64`,
//! `read_replica_max_lag` and the hidden `test_faults`), registered in `_PG_init`. Grouped by
//! concern; each with its reload context. Values a worker needs per request are copied into a
//! [`crate::worker::config::Config`] at start and on SIGHUP, never read per request.

use pg_rest_core::settings;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::{c_char, c_void, CStr, CString};

/// Most http workers one server may run: the size of the shared statistics array.
pub const MAX_WORKERS: i32 = 64;

// -- Listening -------------------------------------------------------------------------------
/// Addresses to bind, comma-separated, `*` for all.
pub static LISTEN_ADDRESSES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"localhost"));
/// HTTP port.
pub static PORT: GucSetting<i32> = GucSetting::<i32>::new(3000);
/// HTTP worker processes (default: two per CPU within the server's worker slots; `_PG_init`).
pub static WORKERS: GucSetting<i32> = GucSetting::<i32>::new(2);
/// Client connections per worker.
pub static MAX_CONNECTIONS: GucSetting<i32> = GucSetting::<i32>::new(10000);
/// Request body limit, bytes.
pub static MAX_BODY_SIZE: GucSetting<i32> = GucSetting::<i32>::new(10 * 1024 * 1024);
/// Request head limit, bytes.
pub static MAX_HEADER_SIZE: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024);
/// Seconds an idle connection is kept.
pub static IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(60);
/// Seconds a client has to send a whole request once it started one.
pub static REQUEST_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30);
/// TLS certificate chain (PEM, end-entity first); with a key, `port` speaks only TLS
/// (docs/tls.md). Checked when a worker loads it, not by a check hook: a hook sees one
/// setting at a time and would read the files in every backend on every reload.
pub static TLS_CERT_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// TLS private key (PEM); superuser-only to read, like its certificate's path.
pub static TLS_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Origins allowed by CORS.
pub static CORS_ALLOWED_ORIGINS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"*"));

// -- Database and roles ----------------------------------------------------------------------
/// Database the http workers serve.
pub static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Role the workers connect as; empty: the bootstrap superuser.
pub static AUTHENTICATOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Exposed schemas, first is the default.
pub static SCHEMAS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"public"));
/// Role for requests without a token; empty: 401 for them.
pub static ANON_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Function called before every request.
pub static PRE_REQUEST: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Cap on rows a read returns; -1: unlimited.
pub static MAX_ROWS: GucSetting<i32> = GucSetting::<i32>::new(-1);
/// Milliseconds one request's SQL may run (with the server's statement_timeout, the shorter
/// wins); 0: no bound of pg_rest's own. Finite by default: a request's SQL blocks the other
/// connections of its worker while it runs (docs/architecture.md).
pub static STATEMENT_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
/// Milliseconds a read carrying `Pg-Rest-Lsn` waits for this standby to replay that far.
pub static READ_YOUR_WRITES_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// WAL bytes a read replica may be behind for reads to go to it (not in API.md).
pub static READ_REPLICA_MAX_LAG: GucSetting<i32> = GucSetting::<i32>::new(1 << 20);

// -- Authentication --------------------------------------------------------------------------
/// HS secret, PEM public key, JWK or JWKS; superuser-only to read.
pub static JWT_SECRET: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Required `aud` claim, if set.
pub static JWT_AUD: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `pg_rest.jwt_secret` is base64 (PostgREST's jwt-secret-is-base64).
pub static JWT_SECRET_IS_BASE64: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Schemas added to every request's search_path after its own (PostgREST's
/// db-extra-search-path).
pub static EXTRA_SEARCH_PATH: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"public"));
/// JSPath of the role in the JWT claims.
pub static JWT_ROLE_CLAIM_KEY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c".role"));

// -- Realtime and replicas -------------------------------------------------------------------
/// Realtime worker and endpoints.
pub static REALTIME: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Logical replication slot of the realtime worker.
pub static REALTIME_SLOT: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pg_rest"));
/// Function deciding who may subscribe/publish on a channel.
pub static CHANNEL_CHECK: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Conninfo list of replicas reads may go to.
pub static READ_REPLICAS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Where a standby sends writes.
pub static PRIMARY_CONNINFO: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Allow `count()`, `sum()`… in `select` (PostgREST's db-aggregates-enabled).
pub static AGGREGATES_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Answer `Accept: application/vnd.pgrst.plan` with EXPLAIN (PostgREST's db-plan-enabled).
pub static PLAN_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(false);

// -- Observability and tests -----------------------------------------------------------------
/// A `Server-Timing` header with each stage's duration.
pub static SERVER_TIMING: GucSetting<bool> = GucSetting::<bool>::new(false);
/// A request header echoed in the response (PostgREST's server-trace-header).
pub static TRACE_HEADER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// One log line per request.
pub static LOG_REQUESTS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Enables `/_pg_rest_test/*` fault-injection paths; for pg_rest's own tests only.
pub static TEST_FAULTS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// Registers every setting and reserves the `pg_rest.` prefix.
pub fn init() {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    // SAFETY: _PG_init (shared_preload_libraries) runs single-threaded after the server's
    // configuration is read, so max_worker_processes is set, and before this setting is
    // defined; the boot value of an int GUC is read from its storage at definition time.
    unsafe {
        let workers = settings::default_workers(cpus, pg_sys::max_worker_processes, MAX_WORKERS);
        WORKERS.as_ptr().write(workers);
    }

    use GucContext::{Postmaster, Sighup};
    let none = GucFlags::default();
    string(
        c"pg_rest.listen_addresses",
        c"Addresses pg_rest listens on.",
        &LISTEN_ADDRESSES,
        Postmaster,
        none,
        Some(check_listen_addresses),
    );
    int(
        c"pg_rest.port",
        c"HTTP port.",
        &PORT,
        1,
        65535,
        Postmaster,
        none,
    );
    int(
        c"pg_rest.workers",
        c"Number of http worker processes.",
        &WORKERS,
        1,
        MAX_WORKERS,
        Sighup,
        none,
    );
    int(
        c"pg_rest.max_connections",
        c"Client connections per http worker.",
        &MAX_CONNECTIONS,
        1,
        1_000_000,
        Sighup,
        none,
    );
    int(
        c"pg_rest.max_body_size",
        c"Largest request body accepted (413 beyond).",
        &MAX_BODY_SIZE,
        0,
        i32::MAX,
        Sighup,
        GucFlags::UNIT_BYTE,
    );
    int(
        c"pg_rest.max_header_size",
        c"Largest request head accepted (431 beyond).",
        &MAX_HEADER_SIZE,
        1024,
        1024 * 1024,
        Sighup,
        GucFlags::UNIT_BYTE,
    );
    int(
        c"pg_rest.idle_timeout",
        c"Idle client connections are closed after this.",
        &IDLE_TIMEOUT,
        1,
        86400,
        Sighup,
        GucFlags::UNIT_S,
    );
    int(
        c"pg_rest.request_timeout",
        c"A started request must arrive whole within this (408).",
        &REQUEST_TIMEOUT,
        1,
        86400,
        Sighup,
        GucFlags::UNIT_S,
    );
    string(
        c"pg_rest.tls_cert_file",
        c"TLS certificate chain (PEM); with pg_rest.tls_key_file, pg_rest.port speaks TLS only.",
        &TLS_CERT_FILE,
        Sighup,
        GucFlags::SUPERUSER_ONLY,
        None,
    );
    string(
        c"pg_rest.tls_key_file",
        c"TLS private key (PEM).",
        &TLS_KEY_FILE,
        Sighup,
        GucFlags::SUPERUSER_ONLY,
        None,
    );
    string(
        c"pg_rest.cors_allowed_origins",
        c"Origins allowed by CORS.",
        &CORS_ALLOWED_ORIGINS,
        Sighup,
        none,
        Some(check_origins),
    );

    string(
        c"pg_rest.database",
        c"Database the http workers serve.",
        &DATABASE,
        Postmaster,
        none,
        Some(check_database),
    );
    string(
        c"pg_rest.authenticator",
        c"Role the workers connect as (empty: bootstrap superuser).",
        &AUTHENTICATOR,
        Postmaster,
        none,
        Some(check_optional_name),
    );
    string(
        c"pg_rest.schemas",
        c"Exposed schemas; the first is the default.",
        &SCHEMAS,
        Sighup,
        none,
        Some(check_schemas),
    );
    string(
        c"pg_rest.anon_role",
        c"Role for requests without a token (empty: 401).",
        &ANON_ROLE,
        Sighup,
        none,
        Some(check_optional_name),
    );
    string(
        c"pg_rest.extra_search_path",
        c"Schemas added to each request's search_path after its own.",
        &EXTRA_SEARCH_PATH,
        Sighup,
        none,
        None,
    );
    string(
        c"pg_rest.pre_request",
        c"Function called before every request.",
        &PRE_REQUEST,
        Sighup,
        none,
        Some(check_function_name),
    );
    int(
        c"pg_rest.max_rows",
        c"Cap on rows a read returns (-1: unlimited).",
        &MAX_ROWS,
        -1,
        i32::MAX,
        Sighup,
        none,
    );
    int(
        c"pg_rest.statement_timeout",
        c"Per-request bound on the SQL; the server's statement_timeout applies too (0: only the server's).",
        &STATEMENT_TIMEOUT,
        0,
        i32::MAX,
        Sighup,
        GucFlags::UNIT_MS,
    );
    int(
        c"pg_rest.read_replica_max_lag",
        c"How far (WAL bytes) a read replica may be behind for reads to go to it.",
        &READ_REPLICA_MAX_LAG,
        0,
        i32::MAX,
        Sighup,
        GucFlags::UNIT_BYTE,
    );
    int(
        c"pg_rest.read_your_writes_timeout",
        c"How long a read carrying Pg-Rest-Lsn waits for this standby to replay that far.",
        &READ_YOUR_WRITES_TIMEOUT,
        0,
        i32::MAX,
        Sighup,
        GucFlags::UNIT_MS,
    );

    string(
        c"pg_rest.jwt_secret",
        c"JWT secret: HS secret, PEM public key, JWK or JWKS.",
        &JWT_SECRET,
        Sighup,
        GucFlags::SUPERUSER_ONLY,
        None,
    );
    bool_(
        c"pg_rest.jwt_secret_is_base64",
        c"pg_rest.jwt_secret is base64-encoded.",
        &JWT_SECRET_IS_BASE64,
        Sighup,
        none,
    );
    string(
        c"pg_rest.jwt_aud",
        c"Required JWT audience.",
        &JWT_AUD,
        Sighup,
        none,
        None,
    );
    string(
        c"pg_rest.jwt_role_claim_key",
        c"JSPath of the role in the JWT claims.",
        &JWT_ROLE_CLAIM_KEY,
        Sighup,
        none,
        Some(check_jspath),
    );

    bool_(
        c"pg_rest.realtime",
        c"Realtime worker and endpoints.",
        &REALTIME,
        Sighup,
        none,
    );
    string(
        c"pg_rest.realtime_slot",
        c"Logical replication slot of the realtime worker.",
        &REALTIME_SLOT,
        Postmaster,
        none,
        Some(check_slot_name),
    );
    string(
        c"pg_rest.channel_check",
        c"Function deciding who may use a channel.",
        &CHANNEL_CHECK,
        Sighup,
        none,
        Some(check_function_name),
    );
    string(
        c"pg_rest.read_replicas",
        c"Connection strings (separated by ;) of replicas a primary sends reads to.",
        &READ_REPLICAS,
        Sighup,
        none,
        Some(check_read_replicas),
    );
    string(
        c"pg_rest.primary_conninfo",
        c"Where a standby sends writes.",
        &PRIMARY_CONNINFO,
        Sighup,
        none,
        Some(check_primary_conninfo),
    );

    bool_(
        c"pg_rest.aggregates_enabled",
        c"Allow aggregate functions in select.",
        &AGGREGATES_ENABLED,
        Sighup,
        none,
    );
    bool_(
        c"pg_rest.plan_enabled",
        c"Answer Accept: application/vnd.pgrst.plan with the statement's EXPLAIN.",
        &PLAN_ENABLED,
        Sighup,
        none,
    );
    bool_(
        c"pg_rest.server_timing",
        c"Send a Server-Timing header with the duration of each stage.",
        &SERVER_TIMING,
        Sighup,
        none,
    );
    string(
        c"pg_rest.trace_header",
        c"A request header echoed back in the response, e.g. X-Request-Id.",
        &TRACE_HEADER,
        Sighup,
        none,
        None,
    );
    bool_(
        c"pg_rest.log_requests",
        c"Log one line per request.",
        &LOG_REQUESTS,
        Sighup,
        none,
    );
    bool_(
        c"pg_rest.test_faults",
        c"Enable pg_rest's fault-injection test paths.",
        &TEST_FAULTS,
        Sighup,
        GucFlags::NO_SHOW_ALL,
    );

    // SAFETY: a plain C call during _PG_init.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"pg_rest".as_ptr()) };
}

fn int(
    name: &'static CStr,
    desc: &'static CStr,
    s: &'static GucSetting<i32>,
    min: i32,
    max: i32,
    ctx: GucContext,
    flags: GucFlags,
) {
    if definable(&ctx) {
        GucRegistry::define_int_guc(name, desc, desc, s, min, max, ctx, flags);
    }
}

/// Restart-only settings can be defined only while the server starts (PostgreSQL raises FATAL
/// otherwise): when pg_rest is loaded later (`CREATE EXTENSION` without preloading) they are
/// skipped, and the session gets `_PG_init`'s WARNING instead of dying.
fn definable(ctx: &GucContext) -> bool {
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries.
    !matches!(ctx, GucContext::Postmaster)
        || unsafe { pg_sys::process_shared_preload_libraries_in_progress }
}

fn bool_(
    name: &'static CStr,
    desc: &'static CStr,
    s: &'static GucSetting<bool>,
    ctx: GucContext,
    flags: GucFlags,
) {
    GucRegistry::define_bool_guc(name, desc, desc, s, ctx, flags);
}

fn string(
    name: &'static CStr,
    desc: &'static CStr,
    s: &'static GucSetting<Option<CString>>,
    ctx: GucContext,
    flags: GucFlags,
    check: pg_sys::GucStringCheckHook,
) {
    if !definable(&ctx) {
        return;
    }
    // SAFETY: every check hook below is #[pg_guard]ed and allocates only through palloc.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            name, desc, desc, s, ctx, flags, check, None, None,
        )
    };
}

/// Runs a pure validator for a check hook; on refusal hands PostgreSQL the reason as DETAIL
/// (PostgreSQL's message already names the setting and the value).
///
/// # Safety
/// `newval` is the pointer PostgreSQL passes to a string check hook.
unsafe fn check_with(newval: *mut *mut c_char, validate: fn(&str) -> Result<(), String>) -> bool {
    // SAFETY: PostgreSQL passes a valid pointer to a (possibly NULL) C string.
    let raw = unsafe { *newval };
    let value = if raw.is_null() {
        ""
    } else {
        unsafe { CStr::from_ptr(raw) }
            .to_str()
            .unwrap_or("\u{fffd}")
    };
    match validate(value) {
        Ok(()) => true,
        Err(reason) => {
            let reason = CString::new(reason).unwrap_or_default();
            // SAFETY: pstrdup copies into the current memory context, where PostgreSQL frees it.
            unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(reason.as_ptr()) };
            false
        }
    }
}

macro_rules! string_check_hook {
    ($name:ident, $validate:path) => {
        #[pg_guard]
        unsafe extern "C-unwind" fn $name(
            newval: *mut *mut c_char,
            _extra: *mut *mut c_void,
            _source: pg_sys::GucSource::Type,
        ) -> bool {
            // SAFETY: called by PostgreSQL's GUC machinery with its own arguments.
            unsafe { check_with(newval, $validate) }
        }
    };
}

string_check_hook!(check_listen_addresses, settings::check_listen_addresses);
string_check_hook!(check_schemas, settings::check_schemas);
string_check_hook!(check_jspath, settings::check_jspath);
string_check_hook!(check_slot_name, settings::check_slot_name);
string_check_hook!(check_database, settings::check_database);
string_check_hook!(check_optional_name, settings::check_optional_name);
string_check_hook!(check_function_name, settings::check_function_name);
string_check_hook!(check_origins, settings::check_origins);
string_check_hook!(check_primary_conninfo, settings::check_primary_conninfo);
string_check_hook!(check_read_replicas, settings::check_read_replicas);

/// A server setting's current value by name (PostgreSQL's own, e.g. `primary_conninfo`);
/// None when unset, empty or unknown.
pub fn server_setting(name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: a NUL-terminated name; missing_ok, so an unknown name returns NULL instead of
    // raising; the value is copied before any other GUC call can free it.
    let value = unsafe { pgrx::pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a valid C string owned by the GUC machinery.
    let text = unsafe { std::ffi::CStr::from_ptr(value) }.to_string_lossy();
    (!text.trim().is_empty()).then(|| text.into_owned())
}

/// The current value of a string setting, `""` when unset.
pub fn string_value(s: &GucSetting<Option<CString>>) -> String {
    s.get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}
