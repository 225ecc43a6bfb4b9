//! pg_rest: a PostgREST-compatible HTTP API served from inside PostgreSQL.
//!
//! Processes (DESIGN.md): a supervisor background worker starts `pg_rest.workers` http
//! workers; each runs one mio event loop and serves every request through SPI in its own
//! process. The request pipeline's pure stages live in the `pg_rest_core` crate; this crate is
//! the glue to PostgreSQL: settings, workers, transport, execution.

use pgrx::prelude::*;

#[macro_use]
pub mod log;

pub mod app;
pub mod decoding;
pub mod execute;
pub mod gucs;
pub mod realtime;
pub mod schema_cache;
pub mod settings;
pub mod stats;
pub mod transport;
pub mod worker;

pgrx::pg_module_magic!();

/// Rust's allocations (a request's strings, plans, bodies; PostgreSQL's own memory stays
/// palloc and libc) go to mimalloc: ~55 small allocations per request freed within it, where
/// glibc's malloc and free were 6 % of an http worker's CPU (docs/benchmarks.md). Local-dynamic
/// TLS, as a library PostgreSQL loads with dlopen needs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set when `_PG_init` ran under `shared_preload_libraries` (inherited by forked backends).
pub static mut PRELOADED: bool = false;

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    if !preloading {
        warning!(
            "pg_rest is not in shared_preload_libraries, so its workers will not start; \
             add it: shared_preload_libraries = 'pg_rest', then restart the server"
        );
        return;
    }
    // SAFETY: single-threaded postmaster startup.
    unsafe { PRELOADED = true };
    stats::init();
    schema_cache::init_shared();
    realtime::init();
    // The listening sockets belong to the server, not to a worker (transport/listener.rs).
    let config = worker::config::Config::load_without_tls();
    transport::listener::open_at_preload(&config.listen_addresses, config.port);
    worker::supervisor::register();
}

/// `#[pg_test]` support: the test cluster must preload pg_rest.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'pg_rest'"]
    }
}
