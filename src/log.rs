//! Logging from worker code. PostgreSQL's error routine checks interrupts at its end, so a
//! pending cancel (pg_cancel_backend, a statement timeout, our SIGTERM) would turn a plain
//! LOG line into an ERROR raised past every guard. Interrupts are held around the call.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Logs one line at LOG level, interrupts held (HOLD_INTERRUPTS / RESUME_INTERRUPTS).
pub fn log_quietly(message: &str) {
    with_interrupts_held(|| log!("{message}"));
}

/// Runs `f` with interrupts held (HOLD_INTERRUPTS), restoring the hold-off count afterwards.
///
/// The count is *restored* to its value on entry, never decremented: PostgreSQL's error path
/// resets it to 0 before an ERROR longjmps out of `f`, so a decrement on the way out would
/// wrap the unsigned counter and hold interrupts forever (no cancel, no timeout, no ProcSignal
/// barrier) — or, in a debug build, abort the process and restart the whole server.
pub fn with_interrupts_held<T>(f: impl FnOnce() -> T) -> T {
    let _held = HeldInterrupts::new();
    f()
}

/// HOLD_INTERRUPTS for a scope; the saved count is restored on drop, also when a panic or a
/// PostgreSQL ERROR unwinds through the scope.
struct HeldInterrupts {
    saved: u32,
}

impl HeldInterrupts {
    fn new() -> Self {
        // SAFETY: the C macros' counter; this process is single-threaded.
        unsafe {
            let saved = pg_sys::InterruptHoldoffCount;
            pg_sys::InterruptHoldoffCount = saved.saturating_add(1);
            HeldInterrupts { saved }
        }
    }
}

impl Drop for HeldInterrupts {
    fn drop(&mut self) {
        // SAFETY: as above; puts back the value seen on entry.
        unsafe { pg_sys::InterruptHoldoffCount = self.saved };
    }
}

/// `log!` with interrupts held; see the module documentation.
#[macro_export]
macro_rules! quiet_log {
    ($($arg:tt)*) => {
        $crate::log::log_quietly(&format!($($arg)*))
    };
}
