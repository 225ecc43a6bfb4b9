//! pg_rest as a logical decoding output plugin (`pg_create_logical_replication_slot('s',
//! 'pg_rest')`), the source of realtime's change events: one JSON object per committed row
//! change or logical message, shaped for the realtime protocol (docs/realtime.md):
//!
//! `{"type":"INSERT","lsn":"0/16B3748","xid":731,"schema":"public","table":"todos",
//! "record":{…},"old_record":null}` and `{"type":"MESSAGE","lsn":…,"transactional":true,
//! "prefix":"…","content":"…"}`; a transaction that gave events ends with
//! `{"type":"COMMIT","lsn":…,"xid":…}`.
//!
//! Why its own plugin rather than `pgoutput`: values come out as JSON typed the way
//! PostgREST shows them (`row_to_json` of the row: numbers bare, json embedded), with no
//! publication to keep in step and no binary protocol to parse in the realtime worker.
//! `lsn` is the end of the transaction's commit record, the position a write's
//! `Pg-Rest-Lsn` names, so a client may read consistently after an event. `old_record` is the
//! old row where the replica identity logs it (`FULL`), else its key columns only; a column
//! whose TOASTed value an UPDATE left unchanged is not in the WAL, so it is left out of
//! `record` and named in `"unchanged_toast"`.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::fmt::Write;

/// Registers the callbacks; PostgreSQL calls it when a slot with this plugin is used.
///
/// # Safety
/// Called by PostgreSQL's `LoadOutputPlugin` with a valid callbacks struct.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn _PG_output_plugin_init(cb: *mut pg_sys::OutputPluginCallbacks) {
    // SAFETY: PostgreSQL passes a struct to fill.
    unsafe {
        (*cb).startup_cb = Some(startup);
        (*cb).begin_cb = Some(begin);
        (*cb).change_cb = Some(change);
        (*cb).commit_cb = Some(commit);
        (*cb).message_cb = Some(message);
    }
}

/// The plugin's state for one decoding session, in the decoding context's memory.
#[repr(C)]
struct Session {
    /// Reset after every event.
    events: pg_sys::MemoryContext,
    /// The transaction being decoded wrote an event (so its end is written too).
    wrote: bool,
    /// Option `tables` (relation OIDs, comma-separated): only their changes are written;
    /// without it, every table's. In the decoding context's memory.
    tables: *mut pg_sys::Oid,
    ntables: usize,
    filtered: bool,
}

impl Session {
    /// Whether changes of `relid` (`schema.table`) are written: the process's live filter
    /// when one is set ([`set_live_filter`]), else the `tables` option.
    unsafe fn wants(&self, relid: pg_sys::Oid, schema: &str, table: &str) -> bool {
        let live = LIVE_FILTER.with(|f| {
            f.borrow()
                .as_ref()
                .map(|t| t.iter().any(|(s, n)| s == schema && n == table))
        });
        if let Some(wanted) = live {
            return wanted;
        }
        // SAFETY: `ntables` OIDs allocated in `startup`.
        !self.filtered
            || unsafe { std::slice::from_raw_parts(self.tables, self.ntables) }.contains(&relid)
    }
}

thread_local! {
    /// The tables (schema, name) a decoding context kept open in this process writes changes
    /// of: the realtime worker's, whose subscribed tables change while it decodes. By name,
    /// so a table dropped and created again is still the subscribed one.
    static LIVE_FILTER: std::cell::RefCell<Option<Vec<(String, String)>>> =
        const { std::cell::RefCell::new(None) };
}

/// Sets (or, with None, clears) this process's live filter.
pub fn set_live_filter(tables: Option<Vec<(String, String)>>) {
    LIVE_FILTER.with(|f| *f.borrow_mut() = tables);
}

unsafe fn session(ctx: *mut pg_sys::LogicalDecodingContext) -> *mut Session {
    // SAFETY: set by `startup` before any other callback.
    unsafe { (*ctx).output_plugin_private.cast() }
}

/// Text output; the session's state.
#[pg_guard]
unsafe extern "C-unwind" fn startup(
    ctx: *mut pg_sys::LogicalDecodingContext,
    options: *mut pg_sys::OutputPluginOptions,
    _is_init: bool,
) {
    // SAFETY: PostgreSQL's decoding context and options, valid for the call; the state lives
    // in the decoding context (freed with it, whatever ends the session).
    unsafe {
        (*options).output_type = pg_sys::OutputPluginOutputType::OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
        let state = pg_sys::MemoryContextAllocZero((*ctx).context, std::mem::size_of::<Session>())
            .cast::<Session>();
        (*state).events = pg_sys::AllocSetContextCreateExtended(
            (*ctx).context,
            c"pg_rest decoding".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        (*ctx).output_plugin_private = state.cast();
        read_options(ctx, state);
    }
}

/// Reads the slot's options: `tables` names the relations whose changes are wanted, so the
/// realtime worker pays nothing for tables without subscribers (messages always pass).
unsafe fn read_options(ctx: *mut pg_sys::LogicalDecodingContext, state: *mut Session) {
    // SAFETY: PostgreSQL's list of DefElem options, valid for the call; the OIDs go to the
    // decoding context's memory, freed with it.
    unsafe {
        let list = (*ctx).output_plugin_options;
        if list.is_null() {
            return;
        }
        for i in 0..(*list).length as usize {
            let elem = (*(*list).elements.add(i))
                .ptr_value
                .cast::<pg_sys::DefElem>();
            let name = CStr::from_ptr((*elem).defname).to_bytes();
            if name != b"tables" {
                error!(
                    "pg_rest decoding: unknown option \"{}\" (it takes \"tables\")",
                    String::from_utf8_lossy(name)
                );
            }
            let value = if (*elem).arg.is_null() {
                String::new()
            } else {
                CStr::from_ptr(pg_sys::defGetString(elem))
                    .to_string_lossy()
                    .into_owned()
            };
            let oids: Vec<pg_sys::Oid> = value
                .split(',')
                .filter_map(|t| t.trim().parse::<u32>().ok())
                .map(pg_sys::Oid::from)
                .collect();
            let bytes = std::mem::size_of::<pg_sys::Oid>() * oids.len().max(1);
            let tables = pg_sys::MemoryContextAlloc((*ctx).context, bytes).cast::<pg_sys::Oid>();
            std::ptr::copy_nonoverlapping(oids.as_ptr(), tables, oids.len());
            (*state).tables = tables;
            (*state).ntables = oids.len();
            (*state).filtered = true;
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _txn: *mut pg_sys::ReorderBufferTXN,
) {
    // SAFETY: the session made in `startup`.
    unsafe { (*session(ctx)).wrote = false };
}

/// A transaction that gave events ends with `{"type":"COMMIT","lsn":…,"xid":…}`: the row
/// whose position a consumer confirms (the slot then skips the transaction) once it has
/// handed the events on.
#[pg_guard]
unsafe extern "C-unwind" fn commit(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    _commit_lsn: pg_sys::XLogRecPtr,
) {
    // SAFETY: the session made in `startup`; the transaction, valid for the call.
    unsafe {
        if !(*session(ctx)).wrote {
            return;
        }
        let (lsn, xid) = (lsn_text((*txn).end_lsn), (*txn).xid);
        in_event_context(ctx, || {
            format!(r#"{{"type":"COMMIT","lsn":"{lsn}","xid":{xid}}}"#)
        });
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn change(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    relation: pg_sys::Relation,
    change: *mut pg_sys::ReorderBufferChange,
) {
    // SAFETY: PostgreSQL's decoding structures, valid for the call; the tuples' memory is
    // the reorder buffer's, read only.
    unsafe {
        use pg_sys::ReorderBufferChangeType::{
            REORDER_BUFFER_CHANGE_DELETE, REORDER_BUFFER_CHANGE_INSERT,
            REORDER_BUFFER_CHANGE_UPDATE,
        };
        let kind = match (*change).action {
            REORDER_BUFFER_CHANGE_INSERT => "INSERT",
            REORDER_BUFFER_CHANGE_UPDATE => "UPDATE",
            REORDER_BUFFER_CHANGE_DELETE => "DELETE",
            _ => return,
        };
        let state = session(ctx);
        let previous = pg_sys::MemoryContextSwitchTo((*state).events);
        let schema = name_of(pg_sys::get_namespace_name(
            (*(*relation).rd_rel).relnamespace,
        ));
        pg_sys::MemoryContextSwitchTo(previous);
        pg_sys::MemoryContextReset((*state).events);
        let table = name_of((*(*relation).rd_rel).relname.data.as_ptr());
        if !(*state).wants((*relation).rd_id, &schema, &table) {
            return;
        }
        let tp = &(*change).data.tp;
        let full_identity =
            (*(*relation).rd_rel).relreplident as u8 == pg_sys::REPLICA_IDENTITY_FULL;
        in_event_context(ctx, || {
            let mut out = String::with_capacity(256);
            let _ = write!(
                out,
                r#"{{"type":"{kind}","lsn":"{}","xid":{},"schema":{},"table":{},"record":"#,
                lsn_text((*txn).end_lsn),
                (*txn).xid,
                json_string(&schema),
                json_string(&table),
            );
            let mut unchanged = Vec::new();
            match tuple_of(tp.newtuple) {
                Some(t) if kind != "DELETE" => {
                    out.push_str(&row_json(relation, t, Columns::Present, &mut unchanged))
                }
                _ => out.push_str("null"),
            }
            out.push_str(r#","old_record":"#);
            let old_columns = if full_identity {
                Columns::Present
            } else {
                Columns::NotNull
            };
            match tuple_of(tp.oldtuple) {
                Some(t) => out.push_str(&row_json(relation, t, old_columns, &mut Vec::new())),
                None => out.push_str("null"),
            }
            if !unchanged.is_empty() {
                let names: Vec<String> = unchanged.iter().map(|n| json_string(n)).collect();
                let _ = write!(out, r#","unchanged_toast":[{}]"#, names.join(","));
            }
            out.push('}');
            out
        });
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn message(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    message_lsn: pg_sys::XLogRecPtr,
    transactional: bool,
    prefix: *const std::ffi::c_char,
    message_size: pg_sys::Size,
    message: *const std::ffi::c_char,
) {
    // SAFETY: PostgreSQL's arguments, valid for the call; `message` has `message_size` bytes.
    unsafe {
        // A transactional message is delivered with its transaction: its position is the
        // commit's. A non-transactional one has its own.
        let lsn = if transactional && !txn.is_null() {
            (*txn).end_lsn
        } else {
            message_lsn
        };
        let prefix = name_of(prefix);
        let content = std::slice::from_raw_parts(message.cast::<u8>(), message_size);
        in_event_context(ctx, || {
            let content = match std::str::from_utf8(content) {
                Ok(text) => format!(r#""content":{}"#, json_string(text)),
                Err(_) => {
                    use base64::Engine;
                    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
                    format!(r#""content_base64":"{b64}""#)
                }
            };
            format!(
                r#"{{"type":"MESSAGE","lsn":"{}","transactional":{transactional},"prefix":{},{content}}}"#,
                lsn_text(lsn),
                json_string(&prefix),
            )
        });
    }
}

/// Builds one event in the plugin's context and writes it as one output row.
unsafe fn in_event_context(
    ctx: *mut pg_sys::LogicalDecodingContext,
    event: impl FnOnce() -> String,
) {
    // SAFETY: the session made in `startup`; the output buffer is the decoding context's.
    unsafe {
        let state = session(ctx);
        (*state).wrote = true;
        let events = (*state).events;
        let previous = pg_sys::MemoryContextSwitchTo(events);
        let text = event();
        pg_sys::MemoryContextSwitchTo(previous);
        pg_sys::OutputPluginPrepareWrite(ctx, true);
        pg_sys::appendBinaryStringInfo((*ctx).out, text.as_ptr().cast(), text.len() as i32);
        pg_sys::OutputPluginWrite(ctx, true);
        pg_sys::MemoryContextReset(events);
    }
}

/// Which columns of a tuple an object shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Columns {
    /// Every column the WAL holds (not dropped, not an unchanged TOAST value).
    Present,
    /// Only columns with a value: an old tuple of a non-FULL replica identity holds its key
    /// columns and NULL elsewhere.
    NotNull,
}

unsafe fn tuple_of(buf: *mut pg_sys::ReorderBufferTupleBuf) -> Option<pg_sys::HeapTuple> {
    // SAFETY: a tuple buffer of the change, or NULL.
    unsafe { (!buf.is_null()).then(|| &mut (*buf).tuple as pg_sys::HeapTuple) }
}

/// The tuple as a JSON object (`row_to_json` of the columns `which` keeps, in order);
/// appends to `unchanged` the columns whose TOASTed value the WAL does not hold.
unsafe fn row_json(
    relation: pg_sys::Relation,
    tuple: pg_sys::HeapTuple,
    which: Columns,
    unchanged: &mut Vec<String>,
) -> String {
    // SAFETY: the relation's descriptor and a tuple of it; the new descriptor and tuple live
    // in the event's memory context.
    unsafe {
        let desc = (*relation).rd_att;
        let natts = (*desc).natts as usize;
        let mut values = vec![pg_sys::Datum::from(0); natts];
        let mut nulls = vec![false; natts];
        pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        let mut kept = Vec::with_capacity(natts);
        for i in 0..natts {
            let att = &(*desc).attrs.as_slice(natts)[i];
            if att.attisdropped {
                continue;
            }
            if !nulls[i] && att.attlen == -1 && is_external_ondisk(values[i]) {
                unchanged.push(name_of(att.attname.data.as_ptr()));
                continue;
            }
            if which == Columns::NotNull && nulls[i] {
                continue;
            }
            kept.push(i);
        }
        let shown = pg_sys::CreateTemplateTupleDesc(kept.len() as i32);
        for (j, &i) in kept.iter().enumerate() {
            pg_sys::TupleDescCopyEntry(shown, (j + 1) as i16, desc, (i + 1) as i16);
        }
        let shown = pg_sys::BlessTupleDesc(shown);
        let mut shown_values: Vec<pg_sys::Datum> = kept.iter().map(|&i| values[i]).collect();
        let mut shown_nulls: Vec<bool> = kept.iter().map(|&i| nulls[i]).collect();
        let row =
            pg_sys::heap_form_tuple(shown, shown_values.as_mut_ptr(), shown_nulls.as_mut_ptr());
        let datum = pg_sys::HeapTupleHeaderGetDatum((*row).t_data);
        let json = pg_sys::OidFunctionCall1Coll(ROW_TO_JSON, pg_sys::InvalidOid, datum);
        text_of(json)
    }
}

/// `row_to_json(record)`: its OID is fixed in PostgreSQL's catalog (pg_proc.dat), though
/// pgrx's PostgreSQL 15 bindings do not name it.
const ROW_TO_JSON: pg_sys::Oid = pg_sys::Oid::from_u32(3155);

/// A varlena datum pointing to TOAST storage (an UPDATE's unchanged value, not in the WAL):
/// PostgreSQL's `VARATT_IS_EXTERNAL_ONDISK`.
unsafe fn is_external_ondisk(d: pg_sys::Datum) -> bool {
    // SAFETY: a varlena datum of the tuple.
    unsafe {
        let p = d.cast_mut_ptr::<pg_sys::varlena>();
        pgrx::varlena::varatt_is_1b_e(p)
            && u32::from(pgrx::varlena::vartag_external(p))
                == pg_sys::vartag_external::VARTAG_ONDISK
    }
}

unsafe fn text_of(d: pg_sys::Datum) -> String {
    // SAFETY: a text datum.
    unsafe {
        let t = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        String::from_utf8_lossy(pgrx::varlena::varlena_to_byte_slice(t)).into_owned()
    }
}

unsafe fn name_of(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated name.
    unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// `0/16B3748`, as PostgreSQL prints an LSN.
fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsns_print_as_postgresql_prints_them() {
        assert_eq!(super::lsn_text(0x16B3748), "0/16B3748");
        assert_eq!(super::lsn_text(0x1_0000_00FF), "1/FF");
    }

    #[test]
    fn names_are_json_strings() {
        assert_eq!(super::json_string("a\"b"), r#""a\"b""#);
    }
}
