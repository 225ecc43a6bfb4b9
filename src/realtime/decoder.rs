//! The realtime worker's decoding context, kept open across its cycles: PostgreSQL's own
//! record loop (what `pg_logical_slot_get_changes` and a walsender run), fed WAL as it is
//! flushed. Unlike one SQL peek per cycle it neither re-creates the context nor re-reads WAL
//! from the slot's restart position each time: a cycle decodes only what is new.
//!
//! The slot is held (acquired) while the context lives; the events pg_rest's plugin writes are
//! collected here; the tables decoded follow the subscriptions through the plugin's live
//! filter (`decoding::set_live_filter`).

use pgrx::pg_sys;
use std::cell::RefCell;
use std::ffi::{CStr, CString};

// The C functions as PostgreSQL exports them: the reader's callbacks are called by C, and
// LogicalDecodingProcessRecord (replication/decode.h) is not in pgrx's bindings; it is called
// through pgrx's FFI guard, so an ERROR inside becomes a Rust panic caught by the caller.
extern "C-unwind" {
    fn read_local_xlog_page(
        state: *mut pg_sys::XLogReaderState,
        target_page: pg_sys::XLogRecPtr,
        req_len: std::ffi::c_int,
        target_rec: pg_sys::XLogRecPtr,
        cur_page: *mut std::ffi::c_char,
    ) -> std::ffi::c_int;
    fn wal_segment_open(
        state: *mut pg_sys::XLogReaderState,
        next_seg: pg_sys::XLogSegNo,
        tli: *mut pg_sys::TimeLineID,
    );
    fn wal_segment_close(state: *mut pg_sys::XLogReaderState);
    fn LogicalDecodingProcessRecord(
        ctx: *mut pg_sys::LogicalDecodingContext,
        record: *mut pg_sys::XLogReaderState,
    );
}

thread_local! {
    /// What the plugin wrote since the last [`Decoder::decode`] took it.
    static WRITTEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

pub struct Decoder {
    ctx: *mut pg_sys::LogicalDecodingContext,
}

impl Decoder {
    /// Acquires `slot` and opens a decoding context at its confirmed position, reading from
    /// its restart position. Raises (an ERROR) when the slot is missing or in use.
    ///
    /// # Safety
    /// Outside a transaction, in a process connected to the slot's database.
    pub unsafe fn open(slot: &str) -> Decoder {
        let name = CString::new(slot).unwrap_or_default();
        // SAFETY: the calls pg_logical_slot_get_changes makes, the context in memory that
        // lives as long as the process (it is freed in `close`).
        unsafe {
            pg_sys::ReplicationSlotAcquire(name.as_ptr(), true);
            let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            let mut routine = pg_sys::XLogReaderRoutine {
                page_read: Some(read_local_xlog_page),
                segment_open: Some(wal_segment_open),
                segment_close: Some(wal_segment_close),
            };
            let ctx = pg_sys::CreateDecodingContext(
                pg_sys::InvalidXLogRecPtr as u64,
                std::ptr::null_mut(),
                false,
                &mut routine,
                Some(prepare_write),
                Some(write),
                None,
            );
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::XLogBeginRead((*ctx).reader, (*pg_sys::MyReplicationSlot).data.restart_lsn);
            pg_sys::InvalidateSystemCaches();
            Decoder { ctx }
        }
    }

    /// Decodes flushed WAL until `end` or until `max_rows` events were written; returns them
    /// and the position read to.
    ///
    /// # Safety
    /// Outside a transaction; an ERROR leaves the context unusable (the caller ends the
    /// process).
    pub unsafe fn decode(
        &mut self,
        end: u64,
        max_rows: usize,
    ) -> Result<(Vec<String>, u64), String> {
        // SAFETY: the context opened in `open`; the loop of pg_logical_slot_get_changes.
        unsafe {
            let reader = (*self.ctx).reader;
            while (*reader).EndRecPtr < end && WRITTEN.with(|w| w.borrow().len()) < max_rows {
                let mut errm: *mut std::ffi::c_char = std::ptr::null_mut();
                let record = pg_sys::XLogReadRecord(reader, &mut errm);
                if !errm.is_null() {
                    return Err(CStr::from_ptr(errm).to_string_lossy().into_owned());
                }
                if !record.is_null() {
                    let ctx = self.ctx;
                    pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                        LogicalDecodingProcessRecord(ctx, reader)
                    });
                }
            }
            Ok((
                WRITTEN.with(|w| std::mem::take(&mut *w.borrow_mut())),
                (*reader).EndRecPtr,
            ))
        }
    }

    /// Everything up to `lsn` was handed on: the slot may move past it.
    pub fn confirm(&self, lsn: u64) {
        // SAFETY: the slot is acquired by this process.
        unsafe { pg_sys::LogicalConfirmReceivedLocation(lsn) };
    }

    /// Frees the context and releases the slot.
    pub fn close(self) {
        // SAFETY: the context and slot of `open`.
        unsafe {
            pg_sys::FreeDecodingContext(self.ctx);
            pg_sys::ReplicationSlotRelease();
            pg_sys::InvalidateSystemCaches();
        }
        WRITTEN.with(|w| w.borrow_mut().clear());
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn prepare_write(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _lsn: pg_sys::XLogRecPtr,
    _xid: pg_sys::TransactionId,
    _last: bool,
) {
    // SAFETY: the context's output buffer.
    unsafe { pg_sys::resetStringInfo((*ctx).out) };
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn write(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _lsn: pg_sys::XLogRecPtr,
    _xid: pg_sys::TransactionId,
    _last: bool,
) {
    // SAFETY: the context's output buffer, `len` bytes of text the plugin wrote.
    let text = unsafe {
        let out = (*ctx).out;
        let bytes = std::slice::from_raw_parts((*out).data.cast::<u8>(), (*out).len as usize);
        String::from_utf8_lossy(bytes).into_owned()
    };
    WRITTEN.with(|w| w.borrow_mut().push(text));
}
