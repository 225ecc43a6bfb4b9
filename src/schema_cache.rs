//! Loads the schema cache from the catalogs and keeps it fresh without a reload signal:
//! a relcache invalidation callback marks it stale when a cached relation changes (DDL in any
//! session: ALTER, DROP, rename), and a request for a relation the cache does not know reloads
//! it (CREATE) — only if some relation changed since the last load, so requests for unknown
//! names never cause catalog reads by themselves. Invalidations of other relations (temporary
//! tables, unexposed schemas) cost nothing until such a miss.

use pg_rest_core::schema_cache::{
    self as model, CatalogRows, Column, Function, HandlerKind, HandlerTarget, MediaHandler,
    Parameter, QualifiedName, RawColumn, RawForeignKey, RawRelation, Relation, RoleSettings,
    SchemaCache, Volatility,
};
use pgrx::prelude::*;
use pgrx::PgAtomic;
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the invalidation callback for a cached relation, taken by the next request.
static STALE: AtomicBool = AtomicBool::new(true);

/// Bumped (in shared memory) when a transaction with DDL commits — by the extension's event
/// triggers through `pg_rest.reload_schema()` — so every worker reloads after changes no
/// relcache invalidation announces (functions, types, new relations). Each worker compares it
/// with the generation it loaded.
pub static GENERATION: PgAtomic<std::sync::atomic::AtomicU64> =
    unsafe { PgAtomic::new(c"pg_rest_schema_generation") };

thread_local! {
    /// The generation this worker's cache was loaded at.
    static LOADED_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Reserves the shared counter; `_PG_init` under shared_preload_libraries only.
pub fn init_shared() {
    pgrx::pg_shmem_init!(GENERATION);
}

fn generation() -> u64 {
    GENERATION.get().load(Ordering::Acquire)
}

/// Marks every worker's cache stale once the current transaction commits (not before: a
/// worker reloading earlier would read the catalogs without the change).
pub fn reload_at_commit() {
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Commit, || {
        GENERATION.get().fetch_add(1, Ordering::AcqRel);
    });
}

extern "C-unwind" {
    fn Async_Listen(channel: *const std::ffi::c_char);
    fn ProcessNotifyInterrupt(flush: bool);
    static mut notifyInterruptPending: std::ffi::c_int;
}

/// `LISTEN pgrst`, as PostgREST does: `NOTIFY pgrst, 'reload schema'` reloads the cache. Once
/// per http worker, after connecting; a failure is logged and leaves the other triggers.
pub fn listen_for_reload() {
    // SAFETY: a transaction of its own, outside any request; a failure is aborted.
    pgrx::PgTryBuilder::new(|| unsafe {
        pg_sys::StartTransactionCommand();
        Async_Listen(c"pgrst".as_ptr());
        pg_sys::CommitTransactionCommand();
    })
    .catch_others(|e| {
        // SAFETY: after a caught ERROR the transaction must be aborted.
        unsafe { pg_sys::AbortCurrentTransaction() };
        crate::quiet_log!("pg_rest: LISTEN pgrst failed ({e:?}); NOTIFY pgrst will not reload");
    })
    .execute();
}

/// Between requests: a notification on `pgrst` marks the cache stale. PostgreSQL's own
/// reader empties the queue (in a transaction of its own); any payload reloads.
pub fn absorb_notifications() {
    // SAFETY: reading a sig_atomic_t flag set by PostgreSQL's signal handler.
    if unsafe { notifyInterruptPending } == 0 {
        return;
    }
    STALE.store(true, Ordering::Relaxed);
    // SAFETY: outside a transaction, as PostgreSQL's idle loop calls it; it reads the queue in
    // a transaction of its own, aborted if it fails.
    pgrx::PgTryBuilder::new(|| unsafe { ProcessNotifyInterrupt(false) })
        .catch_others(|_| unsafe { pg_sys::AbortCurrentTransaction() })
        .execute();
}
/// Set by the invalidation callback for any relation: a miss may then be a new relation.
static CHANGED_SINCE_LOAD: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// OIDs of the relations in the cache, for the invalidation callback.
    static CACHED_OIDS: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
}

/// Relations of every user schema (those outside `pg_rest.schemas` only to follow keys and
/// views through them); `$1` is the exposed schemas.
const RELATIONS_SQL: &str = "\
SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text,
       pg_catalog.format_type(c.reltype, NULL), n.nspname = ANY($1),
       pg_catalog.obj_description(c.oid, 'pg_class'),
       CASE WHEN n.nspname = ANY($1) THEN pg_catalog.pg_relation_is_updatable(c.oid, true) ELSE 0 END
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'";

/// Columns of every user relation; a domain-typed column's base type comes from the domains
/// resolved once (a recursive query per column cost a quarter of a second on 500 tables).
const COLUMNS_SQL: &str = "\
WITH RECURSIVE domains(oid, base) AS (
  SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
  UNION ALL
  SELECT d.oid, b.typbasetype FROM domains d JOIN pg_catalog.pg_type b ON b.oid = d.base
  WHERE b.typtype = 'd')
SELECT a.attrelid::int8, a.attnum::int4, a.attname::text,
       pg_catalog.format_type(a.atttypid, NULL),
       pg_catalog.format_type(coalesce(
         (SELECT d.base FROM domains d JOIN pg_catalog.pg_type b ON b.oid = d.base
          WHERE d.oid = a.atttypid AND b.typtype <> 'd'), a.atttypid), NULL),
       NOT a.attnotnull, coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), t.typdefault),
       pg_catalog.col_description(a.attrelid, a.attnum),
       CASE WHEN a.atttypid IN (1042, 1043) AND a.atttypmod > 4 THEN a.atttypmod - 4 END,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
             WHERE e.enumtypid = a.atttypid ORDER BY e.enumsortorder)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'";

const KEYS_SQL: &str = "\
SELECT conrelid::int8, contype = 'p', conkey::int2[]
FROM pg_catalog.pg_constraint WHERE contype IN ('p', 'u')";

const FOREIGN_KEYS_SQL: &str = "\
SELECT conname::text, conrelid::int8, conkey::int2[], confrelid::int8, confkey::int2[]
FROM pg_catalog.pg_constraint WHERE contype = 'f'";

/// A view column's source, read from the view's query tree: each target entry names the
/// table and column it comes from (`resorigtbl`, `resorigcol`). Entries of subqueries come
/// first in the text, so the last entry per column number is the view's own. The system's
/// own views are left out: nine tenths of all view text, and no key leads through them. A
/// `resname` is one token of `nodeToString` (spaces and brackets in it escaped by `\`).
const VIEW_COLUMNS_SQL: &str = "\
SELECT r.ev_class::int8, m.v[1]::int4, m.v[2]::int8, m.v[3]::int4
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.regexp_matches(r.ev_action::text,
  ':resno (\\d+) :resname (?:\\\\.|[^ \\\\])+ :ressortgroupref \\d+ :resorigtbl (\\d+) :resorigcol (\\d+)', 'g')
  WITH ORDINALITY AS m(v, ord)
WHERE c.relkind IN ('v', 'm') AND r.rulename = '_RETURN' AND m.v[2] <> '0'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, m.ord";

/// Casts with a function between a domain and json or text (PostgREST's domain
/// representations).
const CASTS_SQL: &str = "\
SELECT pg_catalog.format_type(c.castsource, NULL), pg_catalog.format_type(c.casttarget, NULL),
       n.nspname::text, p.proname::text
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type s ON s.oid = c.castsource
JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
WHERE (s.typtype = 'd' AND c.casttarget = 'json'::regtype)
   OR (t.typtype = 'd' AND c.castsource IN ('json'::regtype, 'text'::regtype))";

/// Functions of the exposed schemas with their input parameters.
const FUNCTIONS_SQL: &str = "\
SELECT n.nspname::text, p.proname::text,
       ARRAY(SELECT coalesce(p.proargnames[k], '')
             FROM pg_catalog.generate_subscripts(coalesce(p.proargmodes::text[],
                    pg_catalog.array_fill('i'::text, ARRAY[p.pronargs::int])), 1) AS k
             WHERE coalesce(p.proargmodes[k]::text, 'i') IN ('i', 'b', 'v') ORDER BY k),
       ARRAY(SELECT pg_catalog.format_type(t, NULL)
             FROM pg_catalog.unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, k) ORDER BY k),
       p.pronargdefaults::int4, p.provariadic <> 0,
       pg_catalog.format_type(p.prorettype, NULL), p.proretset,
       t.typtype = 'c' OR p.prorettype = 'record'::regtype OR
         (p.proargmodes IS NOT NULL AND p.proargmodes::text[] && ARRAY['o', 'b', 't']),
       p.provolatile::text, pg_catalog.obj_description(p.oid, 'pg_proc'), p.prorows = 1
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
WHERE n.nspname = ANY($1) AND p.prokind = 'f'";

/// PostgREST's media handlers: domains named after a media type (or `*/*`), returned by a
/// one-argument aggregate of an exposed schema over a relation's row type or `anyelement`
/// (kind true), or by a function of an exposed schema returning one value (kind false).
/// A domain's send function is its base type's.
const MEDIA_HANDLERS_SQL: &str = "\
WITH media AS (
  SELECT t.oid, n.nspname::text AS schema, t.typname::text AS name,
         sn.nspname::text AS send_schema, s.proname::text AS send_name
  FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  JOIN pg_catalog.pg_proc s ON s.oid = t.typsend
  JOIN pg_catalog.pg_namespace sn ON sn.oid = s.pronamespace
  WHERE t.typtype = 'd'
    AND (t.typname ~* '^[A-Za-z0-9.-]+/[A-Za-z0-9.+-]+$' OR t.typname = '*/*'))
SELECT true, pn.nspname::text, p.proname::text, a.oid = 'anyelement'::regtype,
       an.nspname::text, a.typname::text, m.schema, m.name, m.send_schema, m.send_name
FROM media m
JOIN pg_catalog.pg_proc p ON p.prorettype = m.oid
JOIN pg_catalog.pg_aggregate g ON g.aggfnoid = p.oid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_catalog.pg_type a ON a.oid = p.proargtypes[0]
JOIN pg_catalog.pg_namespace an ON an.oid = a.typnamespace
WHERE pn.nspname = ANY($1) AND p.pronargs = 1
  AND (a.oid = 'anyelement'::regtype OR a.oid IN (
    SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')))
UNION ALL
SELECT false, NULL, NULL, false, pn.nspname::text, p.proname::text,
       m.schema, m.name, m.send_schema, m.send_name
FROM media m
JOIN pg_catalog.pg_proc p ON p.prorettype = m.oid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE pn.nspname = ANY($1) AND NOT p.proretset AND p.prokind = 'f'";

/// The settings `ALTER ROLE … SET` keeps, for every role, as PostgREST applies them: only
/// settings an ordinary user may change (or the authenticator was granted SET on), global ones
/// first, then those for this database (`ALTER ROLE … IN DATABASE`), which win.
const ROLE_SETTINGS_SQL: &str = "\
SELECT r.rolname::text, split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)
FROM pg_catalog.pg_db_role_setting s
JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c
JOIN pg_catalog.pg_settings p ON p.name = split_part(c, '=', 1)
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database
                            WHERE datname = pg_catalog.current_database()))
  AND (p.context = 'user' OR pg_catalog.has_parameter_privilege(p.name, 'SET'))
ORDER BY 1, s.setdatabase <> 0";

/// Registers the invalidation callback; once per http worker, after connecting.
pub fn register_invalidation() {
    // SAFETY: registering a callback that only reads a set and stores to an atomic.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        )
    };
}

/// `relid` is InvalidOid when PostgreSQL drops all its relcache (e.g. after a sinval overflow).
#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    CHANGED_SINCE_LOAD.store(true, Ordering::Relaxed);
    let ours = relid == pg_sys::InvalidOid
        || CACHED_OIDS.with(|oids| {
            oids.try_borrow()
                .map_or(true, |o| o.contains(&relid.to_u32()))
        });
    if ours {
        STALE.store(true, Ordering::Relaxed);
    }
}

/// A worker's schema cache, the schema list it was loaded for, and the role settings loaded
/// with it.
#[derive(Default)]
pub struct Holder {
    cache: SchemaCache,
    schemas: Vec<String>,
    roles: HashMap<String, RoleSettings>,
}

impl Holder {
    /// Forces a reload at the next request (after SIGHUP: pg_rest.schemas may have changed,
    /// and `ALTER ROLE … SET` sends no invalidation we could watch).
    pub fn invalidate(&mut self) {
        STALE.store(true, Ordering::Relaxed);
    }

    /// The settings the database keeps for `role`, as last loaded (no reload here: this is
    /// read before the request's transaction starts, for its isolation level).
    pub fn role_settings(&self, role: &str) -> Option<&RoleSettings> {
        self.roles.get(role)
    }

    /// The cache as last loaded, without reloading (outside a transaction, after
    /// `is_stale` was answered by a reload).
    pub fn loaded(&self) -> &SchemaCache {
        &self.cache
    }

    /// Whether the next `current` reloads: then the caller loads it in a transaction of its
    /// own, before the request's.
    pub fn is_stale(&self, schemas: &[String]) -> bool {
        STALE.load(Ordering::Relaxed)
            || self.schemas != schemas
            || LOADED_GENERATION.with(|g| g.get()) != generation()
    }

    /// The cache, reloaded first if stale. Call inside a transaction.
    pub fn current(&mut self, schemas: &[String]) -> &SchemaCache {
        let generation = generation();
        let behind = LOADED_GENERATION.with(|g| g.get()) != generation;
        if STALE.swap(false, Ordering::Relaxed) || behind || self.schemas != schemas {
            LOADED_GENERATION.with(|g| g.set(generation));
            self.reload(schemas);
        }
        &self.cache
    }

    /// After a miss: reloads if any relation changed since the last load; true if it did
    /// (worth planning again).
    pub fn reload_after_miss(&mut self, schemas: &[String]) -> bool {
        if !CHANGED_SINCE_LOAD.load(Ordering::Relaxed) {
            return false;
        }
        self.reload(schemas);
        true
    }

    fn reload(&mut self, schemas: &[String]) {
        // An ERROR while loading unwinds through here: the cache stays marked stale, so the
        // next request retries. Invalidations arriving during the load set STALE again and
        // are not lost.
        CHANGED_SINCE_LOAD.store(false, Ordering::Relaxed);
        let retry_on_unwind = StaleOnUnwind;
        crate::settings::as_server();
        let (cache, oids) = load(schemas);
        let roles = load_role_settings();
        std::mem::forget(retry_on_unwind);
        CACHED_OIDS.with(|o| *o.borrow_mut() = oids);
        self.cache = cache;
        self.roles = roles;
        self.schemas = schemas.to_vec();
    }
}

/// Marks the cache stale when dropped; `forget` it on success.
struct StaleOnUnwind;

impl Drop for StaleOnUnwind {
    fn drop(&mut self) {
        STALE.store(true, Ordering::Relaxed);
        CHANGED_SINCE_LOAD.store(true, Ordering::Relaxed);
    }
}

/// Reads the catalogs and builds the cache; returns it with the OIDs of its relations (for
/// the invalidation callback). An ERROR here propagates to the request boundary.
fn load(schemas: &[String]) -> (SchemaCache, HashSet<u32>) {
    let rows = Spi::connect(|client| read_catalogs(client, schemas))
        .unwrap_or_else(|e| error!("pg_rest: loading the schema cache failed: {e}"));
    let oids = rows
        .relations
        .iter()
        .filter(|r| r.exposed)
        .map(|r| r.oid)
        .collect();
    (model::build(rows), oids)
}

type SpiResult<T> = Result<T, pgrx::spi::Error>;

fn read_catalogs(client: &pgrx::spi::SpiClient, schemas: &[String]) -> SpiResult<CatalogRows> {
    let exposed: pgrx::datum::DatumWithOid = schemas.to_vec().into();
    let oid = |v: Option<i64>| v.unwrap_or_default() as u32;
    let text = |v: Option<String>| v.unwrap_or_default();
    let attnums = |v: Option<Vec<Option<i16>>>| -> Vec<i16> {
        v.unwrap_or_default().into_iter().flatten().collect()
    };
    let mut rows = CatalogRows::default();
    let exposed_again: pgrx::datum::DatumWithOid = schemas.to_vec().into();
    for row in client.select(RELATIONS_SQL, None, &[exposed_again])? {
        let updatable = row.get::<i32>(8)?.unwrap_or(0);
        let kind = text(row.get::<String>(4)?);
        rows.relations.push(RawRelation {
            oid: oid(row.get(1)?),
            relation: Relation {
                schema: text(row.get(2)?),
                name: text(row.get(3)?),
                comment: row.get(7)?,
                // pg_relation_is_updatable's bits: 1 << CMD_UPDATE, CMD_INSERT, CMD_DELETE.
                updatable: updatable & 4 != 0,
                insertable: updatable & 8 != 0,
                deletable: updatable & 16 != 0,
                ..Relation::default()
            },
            kind: kind.chars().next().unwrap_or('r'),
            row_type: text(row.get(5)?),
            exposed: row.get::<bool>(6)?.unwrap_or(false),
        });
    }
    for row in client.select(COLUMNS_SQL, None, &[])? {
        rows.columns.push(RawColumn {
            relation_oid: oid(row.get(1)?),
            attnum: row.get::<i32>(2)?.unwrap_or_default() as i16,
            column: Column {
                name: text(row.get(3)?),
                type_name: text(row.get(4)?),
                base_type: text(row.get(5)?),
                nullable: row.get::<bool>(6)?.unwrap_or(true),
                default: row.get(7)?,
                comment: row.get(8)?,
                max_length: row.get(9)?,
                enum_values: row
                    .get::<Vec<Option<String>>>(10)?
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect(),
            },
        });
    }
    for row in client.select(KEYS_SQL, None, &[])? {
        rows.keys.push((
            oid(row.get(1)?),
            row.get::<bool>(2)?.unwrap_or(false),
            attnums(row.get(3)?),
        ));
    }
    for row in client.select(FOREIGN_KEYS_SQL, None, &[])? {
        rows.foreign_keys.push(RawForeignKey {
            name: text(row.get(1)?),
            origin_oid: oid(row.get(2)?),
            origin_attnums: attnums(row.get(3)?),
            target_oid: oid(row.get(4)?),
            target_attnums: attnums(row.get(5)?),
        });
    }
    for row in client.select(VIEW_COLUMNS_SQL, None, &[])? {
        rows.view_columns.push((
            oid(row.get(1)?),
            row.get::<i32>(2)?.unwrap_or_default() as i16,
            oid(row.get(3)?),
            row.get::<i32>(4)?.unwrap_or_default() as i16,
        ));
    }
    for row in client.select(FUNCTIONS_SQL, None, &[exposed])? {
        let names: Vec<String> = row
            .get::<Vec<Option<String>>>(3)?
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let types: Vec<String> = row
            .get::<Vec<Option<String>>>(4)?
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let defaults = row.get::<i32>(5)?.unwrap_or(0).max(0) as usize;
        let variadic = row.get::<bool>(6)?.unwrap_or(false);
        let n = types.len();
        let params = types
            .into_iter()
            .enumerate()
            .map(|(i, type_name)| Parameter {
                name: names.get(i).cloned().unwrap_or_default(),
                type_name,
                has_default: i + defaults >= n,
                variadic: variadic && i + 1 == n,
            })
            .collect();
        rows.functions.push(Function {
            schema: text(row.get(1)?),
            name: text(row.get(2)?),
            params,
            return_type: text(row.get(7)?),
            returns_set: row.get::<bool>(8)?.unwrap_or(false),
            returns_scalar: !row.get::<bool>(9)?.unwrap_or(false),
            volatility: match text(row.get(10)?).as_str() {
                "i" => Volatility::Immutable,
                "s" => Volatility::Stable,
                _ => Volatility::Volatile,
            },
            comment: row.get(11)?,
            single_row: row.get::<bool>(12)?.unwrap_or(false),
            returns_relation: None,
        });
    }
    let exposed_once_more: pgrx::datum::DatumWithOid = schemas.to_vec().into();
    for row in client.select(MEDIA_HANDLERS_SQL, None, &[exposed_once_more])? {
        let name = |i: usize| -> SpiResult<QualifiedName> {
            Ok(QualifiedName::new(
                &text(row.get(i)?),
                &text(row.get(i + 1)?),
            ))
        };
        let kind = if row.get::<bool>(1)?.unwrap_or(false) {
            HandlerKind::Aggregate(name(2)?)
        } else {
            HandlerKind::Value
        };
        let target = if row.get::<bool>(4)?.unwrap_or(false) {
            HandlerTarget::AnyElement
        } else {
            HandlerTarget::Named(name(5)?)
        };
        let domain = name(7)?;
        let media_type = domain.name.clone();
        rows.media_handlers.push((
            target,
            media_type.clone(),
            MediaHandler {
                kind,
                media_type: if media_type == "*/*" {
                    "application/octet-stream".to_string()
                } else {
                    media_type
                },
                domain,
                send: name(9)?,
            },
        ));
    }
    for row in client.select(CASTS_SQL, None, &[])? {
        rows.casts.push((
            text(row.get(1)?),
            text(row.get(2)?),
            QualifiedName::new(&text(row.get(3)?), &text(row.get(4)?)),
        ));
    }
    Ok(rows)
}

/// Reads every role's settings (see `ROLE_SETTINGS_SQL`).
fn load_role_settings() -> HashMap<String, RoleSettings> {
    let rows: Vec<(String, String, String)> = Spi::connect(|client| {
        client
            .select(ROLE_SETTINGS_SQL, None, &[])?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| error!("pg_rest: loading role settings failed: {e}"));
    model::role_settings(rows)
}
