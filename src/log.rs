//! Logging from worker code. PostgreSQL's error routine checks interrupts at its end, so a
//! pending cancel (pg_cancel_backend, a statement timeout, our SIGTERM) would turn a plain
//! LOG line into an ERROR raised past every guard. Interrupts are held around the call.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Logs one line at LOG level, interrupts held (HOLD_INTERRUPTS / RESUME_INTERRUPTS).
pub fn log_quietly(message: &str) {
    let _held = HeldInterrupts::new();
    log!("{message}");
}

/// HOLD_INTERRUPTS for a scope; released on drop, so even an unwinding panic cannot leave
/// cancels and timeouts disabled for good.
struct HeldInterrupts;

impl HeldInterrupts {
    fn new() -> Self {
        // SAFETY: the C macros' counter; this process is single-threaded.
        unsafe { pg_sys::InterruptHoldoffCount += 1 };
        HeldInterrupts
    }
}

impl Drop for HeldInterrupts {
    fn drop(&mut self) {
        // SAFETY: as above, balanced with `new`.
        unsafe { pg_sys::InterruptHoldoffCount -= 1 };
    }
}

/// `log!` with interrupts held; see the module documentation.
#[macro_export]
macro_rules! quiet_log {
    ($($arg:tt)*) => {
        $crate::log::log_quietly(&format!($($arg)*))
    };
}
