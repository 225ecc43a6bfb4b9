//! `pg_rest.stat_subscriptions`: each http worker writes its subscriptions, a line each, to
//! its own board in shared memory (at most every tick, when they changed); the view reads
//! every board. A seqlock per board: the writer makes the version odd while it writes, a
//! reader copies and retries when the version moved.

use crate::gucs::MAX_WORKERS;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Bytes of subscription lines one worker may show (≈ 1,000 subscriptions).
const BOARD_BYTES: usize = 64 * 1024;

#[repr(C)]
struct Board {
    version: AtomicU64,
    len: AtomicU64,
    bytes: [u8; BOARD_BYTES],
}

const SIZE: usize = std::mem::size_of::<Board>() * MAX_WORKERS as usize;

static mut BOARDS: *mut Board = std::ptr::null_mut();
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// Installs the hooks that reserve and attach the boards; `_PG_init` under preload only.
pub fn init() {
    // SAFETY: _PG_init runs single-threaded in the postmaster; the previous hooks are kept
    // and called first.
    unsafe {
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn request() {
    // SAFETY: PostgreSQL's shmem request phase.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(SIZE);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn startup() {
    // SAFETY: PostgreSQL's shmem startup phase, under AddinShmemInitLock as documented.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let p = pg_sys::ShmemInitStruct(c"pg_rest_subscriptions".as_ptr(), SIZE, &mut found);
        if !found {
            std::ptr::write_bytes(p.cast::<u8>(), 0, SIZE);
        }
        BOARDS = p.cast();
        pg_sys::LWLockRelease(lock);
    }
}

fn board(worker: usize) -> Option<&'static mut Board> {
    // SAFETY: set once at shmem startup (inherited by every forked process); each board is
    // written only by the worker of its index.
    unsafe {
        let base = BOARDS;
        (!base.is_null() && worker < MAX_WORKERS as usize).then(|| &mut *base.add(worker))
    }
}

/// Replaces worker `worker`'s lines (cut at the board's size, at a line end).
pub fn write(worker: usize, text: &str) {
    let Some(b) = board(worker) else {
        return;
    };
    let mut n = text.len().min(BOARD_BYTES);
    while n > 0 && n < text.len() && text.as_bytes()[n - 1] != b'\n' {
        n -= 1;
    }
    b.version.fetch_add(1, Ordering::AcqRel);
    fence(Ordering::Release);
    b.bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    b.len.store(n as u64, Ordering::Relaxed);
    fence(Ordering::Release);
    b.version.fetch_add(1, Ordering::AcqRel);
}

/// Worker `worker`'s lines as last written.
pub fn read(worker: usize) -> String {
    let Some(b) = board(worker) else {
        return String::new();
    };
    for _ in 0..1000 {
        let before = b.version.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let len = (b.len.load(Ordering::Relaxed) as usize).min(BOARD_BYTES);
        let mut copy = vec![0u8; len];
        // SAFETY: in bounds; a concurrent write is detected by the version and retried.
        unsafe { std::ptr::copy_nonoverlapping(b.bytes.as_ptr(), copy.as_mut_ptr(), len) };
        fence(Ordering::Acquire);
        if b.version.load(Ordering::Acquire) == before {
            return String::from_utf8(copy).unwrap_or_default();
        }
    }
    String::new()
}
