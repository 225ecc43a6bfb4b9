//! Signal handling for pg_rest's workers. The handlers only set flags, poke PostgreSQL's
//! interrupt flags and latch, and write one byte to a self-pipe that the event loop polls, so
//! a signal wakes `epoll_wait` without any race between checking a flag and sleeping.
//!
//! SIGINT is left to PostgreSQL (StatementCancelHandler): `pg_cancel_backend` and statement
//! timeouts keep working. SIGTERM also sets `QueryCancelPending`, so a request running at
//! shutdown stops with a catchable 57014 instead of PostgreSQL's uncatchable FATAL.

use pgrx::pg_sys;
use pgrx::PgTryBuilder;
use std::ffi::c_int;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static GOT_SIGTERM: AtomicBool = AtomicBool::new(false);
static GOT_SIGHUP: AtomicBool = AtomicBool::new(false);
/// Write end of the self-pipe; -1 until `install`.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Whether SIGTERM cancels the running statement (http workers) or only sets the flag.
static CANCEL_ON_TERM: AtomicBool = AtomicBool::new(false);

extern "C" {
    // Declared here without pgrx's FFI guard: called from a signal handler, where only the
    // async-signal-safe C function itself may run.
    #[link_name = "SetLatch"]
    fn raw_set_latch(latch: *mut pg_sys::Latch);
}

/// Installs the handlers and unblocks signals. Returns the read end of the self-pipe.
pub fn install(cancel_on_term: bool) -> std::io::Result<OwnedFd> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    WAKE_FD.store(fds[1], Ordering::SeqCst);
    CANCEL_ON_TERM.store(cancel_on_term, Ordering::SeqCst);
    // SAFETY: plain C calls while signals are still blocked (bgworker start).
    unsafe {
        pg_sys::pqsignal(libc::SIGTERM, Some(on_sigterm));
        pg_sys::pqsignal(libc::SIGHUP, Some(on_sighup));
        pg_sys::BackgroundWorkerUnblockSignals();
        Ok(OwnedFd::from_raw_fd(fds[0]))
    }
}

/// Serves PostgreSQL's own interrupts (ProcSignal barriers, memory-context logging …) and
/// sinval catch-up requests while the worker is between requests. An idle process that never
/// absorbs a ProcSignalBarrier blocks `DROP DATABASE` cluster-wide, one that never catches up
/// makes every other backend signal it as the invalidation queue fills, and our loops never
/// reach a `CHECK_FOR_INTERRUPTS` or PostgreSQL's idle-loop catch-up on their own. A pending
/// cancel is dropped first (there is nothing to cancel between requests; SIGTERM's is re-armed
/// after), so the calls cannot raise; they are guarded all the same.
pub fn absorb_interrupts() {
    // SAFETY: reading sig_atomic_t flags.
    let (interrupt, catchup) = unsafe {
        (
            pg_sys::InterruptPending != 0,
            pg_sys::catchupInterruptPending != 0,
        )
    };
    if interrupt {
        // SAFETY: a sig_atomic_t flag.
        unsafe { pg_sys::QueryCancelPending = 0 };
        // SAFETY: ProcessInterrupts outside a transaction, as PostgreSQL's idle loop calls it.
        PgTryBuilder::new(|| unsafe { pg_sys::ProcessInterrupts() })
            .catch_others(|_| ())
            .execute();
        clear_cancel();
    }
    crate::schema_cache::absorb_notifications();
    if catchup {
        // SAFETY: outside a transaction, as PostgreSQL's idle loop calls it: it reads the
        // invalidation queue in a short transaction of its own. A failure leaves the
        // transaction to abort.
        PgTryBuilder::new(|| unsafe { pg_sys::ProcessCatchupInterrupt() })
            .catch_others(|_| unsafe { pg_sys::AbortCurrentTransaction() })
            .execute();
    }
}

/// Drops a cancel that arrived while no request ran, so it neither hits the next request nor
/// raises outside a guard. SIGTERM's cancel is kept (re-set after the clear, so a SIGTERM that
/// lands in between is not lost): the worker is stopping.
pub fn clear_cancel() {
    // SAFETY: sig_atomic_t flags, cleared and set as PostgreSQL's own code does.
    unsafe {
        pg_sys::QueryCancelPending = 0;
        if terminating() && CANCEL_ON_TERM.load(Ordering::Relaxed) {
            pg_sys::QueryCancelPending = 1;
            pg_sys::InterruptPending = 1;
        }
    }
}

/// Has SIGTERM arrived (sticky: shutdown is not undone)?
pub fn terminating() -> bool {
    GOT_SIGTERM.load(Ordering::SeqCst)
}

/// Has SIGHUP arrived since the last call?
pub fn take_sighup() -> bool {
    GOT_SIGHUP.swap(false, Ordering::SeqCst)
}

/// Empties the self-pipe after a wake-up.
pub fn drain(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 64];
    // SAFETY: reading into a local buffer from our own non-blocking pipe.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

fn wake() {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe already means "wake up".
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
    // SAFETY: MyLatch is set before any signal is unblocked; SetLatch is async-signal-safe.
    unsafe { raw_set_latch(pg_sys::MyLatch) };
}

unsafe extern "C-unwind" fn on_sigterm(_signo: c_int) {
    let saved = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    GOT_SIGTERM.store(true, Ordering::SeqCst);
    if CANCEL_ON_TERM.load(Ordering::Relaxed) {
        // SAFETY: these are sig_atomic_t flags PostgreSQL's own handlers set the same way.
        unsafe {
            pg_sys::QueryCancelPending = 1;
            pg_sys::InterruptPending = 1;
        }
    }
    wake();
    // SAFETY: restoring errno, as PostgreSQL's handlers do.
    unsafe { *libc::__errno_location() = saved };
}

unsafe extern "C-unwind" fn on_sighup(_signo: c_int) {
    let saved = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    GOT_SIGHUP.store(true, Ordering::SeqCst);
    wake();
    // SAFETY: restoring errno.
    unsafe { *libc::__errno_location() = saved };
}

/// Sleeps on the process latch (set by our signal handlers, by the postmaster when a worker
/// exits, and by whoever wakes the worker) without checking interrupts: nothing here may
/// raise an ERROR outside a guard.
pub fn wait(timeout: std::time::Duration) {
    let flags = pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH;
    // SAFETY: plain latch calls on this process's own latch.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            flags as i32,
            timeout.as_millis() as _,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
}
