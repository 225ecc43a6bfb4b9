//! An http worker: connected to `pg_rest.database` as `pg_rest.authenticator`, it serves HTTP
//! from the server's listening sockets (inherited from the postmaster, shared with the other
//! workers) with one mio event loop, running each request's SQL through SPI in this very
//! process — the worker is the pooled connection.

use crate::app::App;
use crate::gucs::{self, string_value};
use crate::stats;
use crate::transport::event_loop::EventLoop;
use crate::worker::config::Config;
use crate::worker::signals;
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use std::ffi::c_int;

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_rest_http_main(arg: pg_sys::Datum) {
    let index = arg.value().min(gucs::MAX_WORKERS as usize - 1);
    let wake = match signals::install(true) {
        Ok(fd) => fd,
        Err(e) => exit_with(
            1,
            &format!("pg_rest http worker {index}: cannot create its wake-up pipe: {e}"),
        ),
    };
    let database = string_value(&gucs::DATABASE);
    let authenticator = string_value(&gucs::AUTHENTICATOR);
    BackgroundWorker::connect_worker_to_spi(
        Some(&database),
        (!authenticator.is_empty()).then_some(authenticator.as_str()),
    );
    // The supervisor checks this before starting workers; checked again here because the
    // database may have been re-created in between. Text crosses between HTTP and SQL as
    // UTF-8 bytes, unconverted.
    // SAFETY: reading the connected database's encoding.
    let encoding = unsafe { pg_sys::GetDatabaseEncoding() };
    if encoding != pg_sys::pg_enc::PG_UTF8 as c_int {
        exit_with(
            1,
            &format!(
                "pg_rest http worker {index}: database \"{database}\" has encoding {}; \
                 pg_rest serves UTF8 databases only",
                crate::worker::supervisor::encoding_name(encoding)
            ),
        );
    }
    crate::schema_cache::register_invalidation();
    crate::schema_cache::listen_for_reload();

    // SAFETY: reading this process's identity and the clock.
    let (pid, now) = unsafe { (pg_sys::MyProcPid, pg_sys::GetCurrentTimestamp()) };
    let slot = stats::slot(index);
    slot.claim(pid, now);
    // SAFETY: registering a callback that only touches shared atomics.
    unsafe { pg_sys::before_shmem_exit(Some(release_slot), pg_sys::Datum::from(index)) };

    let config = Config::load();
    let event_loop = match EventLoop::new(wake, index) {
        Ok(l) => l,
        Err(e) => exit_with(
            1,
            &format!("pg_rest http worker {index}: cannot serve the listening sockets: {e}"),
        ),
    };
    quiet_log!(
        "pg_rest http worker {index} serving http://{}:{}/",
        config.listen_addresses.join(","),
        config.port
    );
    event_loop.run(App::new(config, slot));
    exit_with(0, &format!("pg_rest http worker {index} shut down"));
}

fn exit_with(code: c_int, message: &str) -> ! {
    quiet_log!("{message}");
    // SAFETY: ending this process; the supervisor restarts http workers whatever the code.
    unsafe { pg_sys::proc_exit(code) }
}

#[pg_guard]
unsafe extern "C-unwind" fn release_slot(_code: c_int, arg: pg_sys::Datum) {
    // SAFETY: reading this process's pid.
    stats::slot(arg.value()).release(unsafe { pg_sys::MyProcPid });
}
