//! Loads the schema cache from the catalogs, and keeps it fresh without a reload signal:
//! a relcache invalidation callback marks it stale whenever any relation changes (DDL,
//! including in other sessions), and the next request reloads it inside its own transaction.

use pg_rest_core::schema_cache::{Column, Relation, SchemaCache};
use pgrx::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

static STALE: AtomicBool = AtomicBool::new(true);

const LOAD_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, a.attname::text, pg_catalog.format_type(a.atttypid, NULL)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname = ANY($1)
ORDER BY 1, 2, a.attnum";

/// Registers the invalidation callback; once per http worker, after connecting.
pub fn register_invalidation() {
    // SAFETY: registering a callback that only stores to an atomic.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        )
    };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    STALE.store(true, Ordering::Relaxed);
}

/// A worker's schema cache and the schema list it was loaded for.
#[derive(Default)]
pub struct Holder {
    cache: SchemaCache,
    schemas: Vec<String>,
}

impl Holder {
    /// Forces a reload at the next request (after SIGHUP changed pg_rest.schemas, say).
    pub fn invalidate(&mut self) {
        STALE.store(true, Ordering::Relaxed);
    }

    /// The cache, reloaded first if stale. Call inside the request's transaction.
    pub fn current(&mut self, schemas: &[String]) -> &SchemaCache {
        if STALE.swap(false, Ordering::Relaxed) || self.schemas != schemas {
            self.cache = load(schemas);
            self.schemas = schemas.to_vec();
        }
        &self.cache
    }
}

/// Reads exposed relations and their columns. An ERROR here propagates to the request
/// boundary like any other; the cache is then marked stale again so the next request retries.
fn load(schemas: &[String]) -> SchemaCache {
    STALE.store(true, Ordering::Relaxed);
    let rows: Vec<(String, String, String, String)> = Spi::connect(|client| {
        let table = client.select(LOAD_SQL, None, &[schemas.to_vec().into()])?;
        table
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?.unwrap_or_default(),
                    row.get::<String>(4)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| error!("pg_rest: loading the schema cache failed: {e}"));
    let mut relations: Vec<Relation> = Vec::new();
    for (schema, name, column, type_name) in rows {
        let same = relations
            .last()
            .is_some_and(|r| r.schema == schema && r.name == name);
        if !same {
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
    STALE.store(false, Ordering::Relaxed);
    SchemaCache::new(relations)
}
