//! Settings: the values a request's transaction starts with (`role`, `request.jwt.claims`,
//! `request.method`, … as PostgREST sets them), applied through the C API.
//!
//! PostgREST sets them all with `set_config(…, true)` in every transaction. Most are the same
//! from one request to the next (one role, one path, the same headers from one client), and
//! a setting costs PostgreSQL a parse, a copy, a stack entry and its undo at commit — and once
//! any was set in a transaction, PostgreSQL 15's commit walks every one of its ~360 settings.
//! So the request's own settings are kept *for the session*: each is compared with the
//! session's current value and set only where it differs. What SQL sees is the same: every
//! request's statements run with exactly its values, whatever ran before, because the
//! comparison reads the live value (a function's own `set_config(…, false)`, a failed
//! transaction's undone SET, a schema-cache load's local `role` — all seen). Settings the
//! database keeps for a role and `Prefer: timezone` stay transaction-local: another request's
//! role must not inherit them.

use pg_rest_core::schema_cache::RoleSettings;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::CStr;

use crate::execute::RequestContext;

/// How long a request setting may outlive its transaction in the worker's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Kept for the session, set only when the live value differs.
    Session,
    /// Set for the transaction only (another request must not inherit it).
    Transaction,
}

/// The settings a request's transaction starts with, in PostgREST's order: `search_path`, the
/// settings the database keeps for the role, the time zone asked for, the role,
/// `request.jwt.claims`, `request.method`, `request.path`, `request.headers`,
/// `request.cookies`. One list for the local path and the forwarded one (which sets them all
/// for its transaction on the other server, whatever the scope).
pub fn request_settings<'a>(
    ctx: &RequestContext<'a>,
    role_settings: Option<&'a RoleSettings>,
    mut each: impl FnMut(&'a str, &'a str, Scope),
) {
    each("search_path", ctx.search_path, Scope::Session);
    for (name, value) in role_settings.map_or(&[][..], |r| &r.settings) {
        each(name, value, Scope::Transaction);
    }
    if let Some(tz) = ctx.timezone {
        each("timezone", tz, Scope::Transaction);
    }
    each("role", ctx.role, Scope::Session);
    each("request.jwt.claims", ctx.claims, Scope::Session);
    each("request.method", ctx.method, Scope::Session);
    each("request.path", ctx.path, Scope::Session);
    each("request.headers", ctx.headers, Scope::Session);
    each("request.cookies", ctx.cookies, Scope::Session);
}

/// Gives the request's transaction its settings (see the module's doc). The role's own
/// settings are set as the server's role, before the request's (as in PostgREST): the
/// authenticator may have been granted `SET` on them, the request's role need not be.
pub fn apply(ctx: &RequestContext, role_settings: Option<&RoleSettings>) {
    if role_settings.is_some_and(|r| !r.settings.is_empty()) {
        server_role();
    }
    request_settings(ctx, role_settings, |name, value, scope| match scope {
        Scope::Session => set_for_session(name, value),
        Scope::Transaction => set_local(name, value),
    });
}

/// Gives the rest of the transaction the server's own `search_path` (the database's or role's
/// default) and role (the one the worker logged in as), whatever requests left in the session:
/// the schema cache reads the catalogs as PostgREST's pool connection would, and reads names
/// as `format_type` shows them on that path (qualified unless visible).
pub fn as_server() {
    // SAFETY: looks up a built-in GUC's reset value (a string owned by PostgreSQL).
    let reset = unsafe { pg_sys::GetConfigOptionResetString(c"search_path".as_ptr()) };
    if !reset.is_null() {
        // SAFETY: as above, NUL-terminated.
        let reset = unsafe { CStr::from_ptr(reset) }.to_string_lossy();
        set_local("search_path", &reset);
    }
    server_role();
}

/// Gives the rest of the transaction the role the worker logged in as.
fn server_role() {
    if !is_current("role", "none") {
        set_local("role", "none");
    }
}

/// Sets `name` to `value` for the session, unless that is its live value already. The role
/// is set again after any change to roles or memberships: the name may now stand for another
/// role, or the worker may no longer be allowed to become it (PostgreSQL checks that only
/// when the role is set). The mark is cleared only once a role was set: a refused one stays
/// refused for every request that asks for it.
fn set_for_session(name: &str, value: &str) {
    let role = name == "role";
    if (role && ROLES_CHANGED.get()) || !is_current(name, value) {
        watch_roles();
        set_config(name, value, pg_sys::GucAction::GUC_ACTION_SET);
        if role {
            ROLES_CHANGED.set(false);
        }
    }
}

/// Sets `name` to `value` for the rest of the transaction.
pub(crate) fn set_local(name: &str, value: &str) {
    set_config(name, value, pg_sys::GucAction::GUC_ACTION_LOCAL);
}

thread_local! {
    /// Name and value, NUL-terminated, for the C API: one buffer for the worker's life.
    static C_STRINGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Set by the invalidation callback when a role or a membership changed.
    static ROLES_CHANGED: Cell<bool> = const { Cell::new(false) };
    /// Whether this process registered that callback.
    static WATCHING_ROLES: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with `name` and `value` as NUL-terminated strings (no allocation per call).
fn with_c_strings<T>(name: &str, value: &str, f: impl FnOnce(&CStr, &CStr) -> T) -> T {
    if name.contains('\0') || value.contains('\0') {
        error!("pg_rest: a setting contains a NUL byte");
    }
    C_STRINGS.with_borrow_mut(|buf| {
        buf.clear();
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(value.as_bytes());
        buf.push(0);
        let (name, value) = buf.split_at(name.len() + 1);
        // Both end in their only NUL (checked above).
        let c = |bytes| CStr::from_bytes_with_nul(bytes).unwrap_or_default();
        f(c(name), c(value))
    })
}

/// True if the setting's live value is `value` (an unknown custom setting has none).
fn is_current(name: &str, value: &str) -> bool {
    with_c_strings(name, "", |name, _| {
        // SAFETY: a lookup by a NUL-terminated name; missing_ok, so an unknown name is NULL
        // rather than an ERROR. The value is a NUL-terminated string owned by PostgreSQL.
        let live = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
        !live.is_null() && unsafe { CStr::from_ptr(live) }.to_bytes() == value.as_bytes()
    })
}

/// Sets a setting as the session's `SET` does (`action`: for the session or the
/// transaction). PostgreSQL copies name and value.
fn set_config(name: &str, value: &str, action: pg_sys::GucAction::Type) {
    with_c_strings(name, value, |name, value| {
        // SAFETY: two NUL-terminated strings; errors raise through pgrx's guard into the
        // request boundary (unwinding releases the buffer's borrow).
        unsafe {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                action,
                true,
                0,
                false,
            );
        }
    });
}

/// Registers, once per process, the callback that marks the kept role for a re-check when
/// `pg_authid` or `pg_auth_members` changes (any role: a rename, a drop, a revoked grant).
fn watch_roles() {
    if WATCHING_ROLES.replace(true) {
        return;
    }
    for cache in [
        pg_sys::SysCacheIdentifier::AUTHOID,
        pg_sys::SysCacheIdentifier::AUTHMEMMEMROLE,
    ] {
        // SAFETY: registering a callback that only stores to a thread-local flag.
        unsafe {
            pg_sys::CacheRegisterSyscacheCallback(
                cache as i32,
                Some(on_role_invalidation),
                pg_sys::Datum::from(0),
            )
        };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_role_invalidation(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    ROLES_CHANGED.set(true);
}
