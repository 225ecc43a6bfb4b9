//! Loads the schema cache from the catalogs and keeps it fresh without a reload signal:
//! a relcache invalidation callback marks it stale when a cached relation changes (DDL in any
//! session: ALTER, DROP, rename), and a request for a relation the cache does not know reloads
//! it (CREATE) — only if some relation changed since the last load, so requests for unknown
//! names never cause catalog reads by themselves. Invalidations of other relations (temporary
//! tables, unexposed schemas) cost nothing until such a miss.

use pg_rest_core::schema_cache::{self as model, Column, Relation, RoleSettings, SchemaCache};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the invalidation callback for a cached relation, taken by the next request.
static STALE: AtomicBool = AtomicBool::new(true);
/// Set by the invalidation callback for any relation: a miss may then be a new relation.
static CHANGED_SINCE_LOAD: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// OIDs of the relations in the cache, for the invalidation callback.
    static CACHED_OIDS: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
}

const LOAD_SQL: &str = "\
SELECT c.oid::int8, n.nspname::text, c.relname::text, a.attname::text,
       pg_catalog.format_type(a.atttypid, NULL)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname = ANY($1)
ORDER BY 2, 3, a.attnum";

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

    /// The cache, reloaded first if stale. Call inside the request's transaction.
    pub fn current(&mut self, schemas: &[String]) -> &SchemaCache {
        if STALE.swap(false, Ordering::Relaxed) || self.schemas != schemas {
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

type Row = (i64, String, String, String, String);

/// Reads exposed relations and their columns. An ERROR here propagates to the request
/// boundary like any other.
fn load(schemas: &[String]) -> (SchemaCache, HashSet<u32>) {
    let rows: Vec<Row> = Spi::connect(|client| {
        let table = client.select(LOAD_SQL, None, &[schemas.to_vec().into()])?;
        table
            .map(|row| {
                Ok((
                    row.get::<i64>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?.unwrap_or_default(),
                    row.get::<String>(4)?.unwrap_or_default(),
                    row.get::<String>(5)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| error!("pg_rest: loading the schema cache failed: {e}"));
    let mut relations: Vec<Relation> = Vec::new();
    let mut oids = HashSet::new();
    for (oid, schema, name, column, type_name) in rows {
        if oids.insert(oid as u32) {
            relations.push(Relation {
                schema,
                name,
                columns: Vec::new(),
            });
        }
        if let Some(r) = relations.last_mut() {
            r.columns.push(Column {
                name: column,
                type_name,
            });
        }
    }
    (SchemaCache::new(relations), oids)
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
