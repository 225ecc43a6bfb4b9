//! Validation of `pg_rest.*` settings: the reasons a check hook gives when it refuses a value.
//! Pure, so every rule is unit-tested; the extension's GUC hooks only call these.

use std::net::IpAddr;

/// `pg_rest.listen_addresses`: `*`, IP addresses or host names, comma-separated.
pub fn check_listen_addresses(value: &str) -> Result<(), String> {
    let items = split_list(value);
    if items.is_empty() {
        return Err("pg_rest.listen_addresses must name at least one address (or *)".into());
    }
    for item in items {
        let ok = item == "*" || item.parse::<IpAddr>().is_ok() || is_host_name(item);
        if !ok {
            return Err(format!(
                "\"{item}\" is not \"*\", an IP address or a host name"
            ));
        }
    }
    Ok(())
}

/// `pg_rest.schemas`: a non-empty comma-separated list of schema names.
pub fn check_schemas(value: &str) -> Result<(), String> {
    if split_list(value).is_empty() {
        return Err("pg_rest.schemas must list at least one schema".into());
    }
    Ok(())
}

/// `pg_rest.jwt_role_claim_key`: PostgREST's path, e.g. `.role` or `."https://x".roles[0]`.
pub fn check_jspath(value: &str) -> Result<(), String> {
    crate::auth::jspath::JsPath::parse(value).map(|_| ())
}

/// Longest name PostgreSQL keeps (NAMEDATALEN - 1): a longer database or role name would be
/// silently truncated and name something else.
const MAX_NAME_BYTES: usize = 63;

/// `pg_rest.database`: a database name.
pub fn check_database(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("pg_rest.database must name a database".into());
    }
    check_optional_name(value)
}

/// `pg_rest.authenticator`, `pg_rest.anon_role`: a role name, or empty.
pub fn check_optional_name(value: &str) -> Result<(), String> {
    if value.len() > MAX_NAME_BYTES {
        return Err(format!("a name is at most {MAX_NAME_BYTES} bytes"));
    }
    Ok(())
}

/// `pg_rest.pre_request`, `pg_rest.channel_check`: empty, or a function name, optionally
/// schema-qualified (`fn` or `schema.fn`).
pub fn check_function_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() > 2
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > MAX_NAME_BYTES)
    {
        return Err(
            "expected a function name, optionally schema-qualified (schema.function)".into(),
        );
    }
    Ok(())
}

/// `pg_rest.cors_allowed_origins`: `*`, or comma-separated origins `scheme://host[:port]`.
pub fn check_origins(value: &str) -> Result<(), String> {
    let items = split_list(value);
    if items.is_empty() {
        return Err("list origins (https://example.org) or *".into());
    }
    for item in items {
        if item == "*" {
            continue;
        }
        let rest = item
            .strip_prefix("https://")
            .or_else(|| item.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("\"{item}\" is not an origin (http:// or https:// host[:port])")
            })?;
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1"));
        if !is_host_name(host) || port.parse::<u16>().is_err() {
            return Err(format!(
                "\"{item}\" is not an origin (scheme://host[:port], no path)"
            ));
        }
    }
    Ok(())
}

/// `pg_rest.realtime_slot`: a valid replication slot name.
pub fn check_slot_name(value: &str) -> Result<(), String> {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err("a replication slot name is 1-63 characters of a-z, 0-9 and _".into())
    }
}

/// `pg_rest.primary_conninfo`: empty (derived from the server's `primary_conninfo`) or a libpq
/// connection string naming a host, without demanding TLS.
pub fn check_primary_conninfo(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Ok(());
    }
    let info = crate::conninfo::Conninfo::parse(value)?;
    info.endpoint()?;
    info.check_supported()
}

/// Replicas `pg_rest.read_replicas` may name.
pub const MAX_READ_REPLICAS: usize = 8;

/// `pg_rest.read_replicas`' entries: connection strings separated by `;` (a keyword/value
/// string may hold spaces and commas, a URI commas).
pub fn split_conninfos(value: &str) -> Vec<&str> {
    value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `pg_rest.read_replicas`: at most [`MAX_READ_REPLICAS`] connection strings, each as
/// `pg_rest.primary_conninfo` must be.
pub fn check_read_replicas(value: &str) -> Result<(), String> {
    let entries = split_conninfos(value);
    if entries.len() > MAX_READ_REPLICAS {
        return Err(format!("at most {MAX_READ_REPLICAS} replicas"));
    }
    for (i, entry) in entries.iter().enumerate() {
        check_primary_conninfo(entry).map_err(|e| format!("replica {}: {e}", i + 1))?;
    }
    Ok(())
}

/// Background worker slots `pg_rest.workers`' default leaves to others: pg_rest's supervisor
/// and realtime worker, PostgreSQL's logical replication launcher, and one for parallel query.
const WORKER_SLOTS_KEPT: i32 = 4;

/// `pg_rest.workers`' default: two per CPU, so one whose request is in its SQL (or that waits
/// for its clients' next requests) leaves the CPU to another rather than idle (PostgreSQL's
/// own rule of thumb for pool sizes; docs/benchmarks.md measured it), at most what
/// `max_worker_processes` leaves room for, at least one.
pub fn default_workers(cpus: i32, max_worker_processes: i32, max_workers: i32) -> i32 {
    let room = (max_worker_processes - WORKER_SLOTS_KEPT).max(1);
    (cpus.saturating_mul(2)).min(room).clamp(1, max_workers)
}

/// The bound on one request's SQL, in milliseconds (0: none): the shorter of
/// `pg_rest.statement_timeout` and the server's `statement_timeout`, each ignored when 0. So
/// pg_rest's own bound never loosens a tighter one set for the server, database or role.
pub fn effective_statement_timeout(pg_rest_ms: i32, server_ms: i32) -> i32 {
    match (pg_rest_ms > 0, server_ms > 0) {
        (true, true) => pg_rest_ms.min(server_ms),
        (true, false) => pg_rest_ms,
        (false, true) => server_ms,
        (false, false) => 0,
    }
}

/// Comma-separated items, trimmed, empty ones dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        for ok in [
            "*",
            "localhost",
            "127.0.0.1",
            "::1",
            "127.0.0.1, ::1",
            "db-1.example.org",
        ] {
            assert!(check_listen_addresses(ok).is_ok(), "{ok}");
        }
        for bad in ["", " , ", "not an address!", "a..b", "-x"] {
            assert!(check_listen_addresses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schemas() {
        assert!(check_schemas("public").is_ok());
        assert!(check_schemas("api, public").is_ok());
        assert!(check_schemas(" ").is_err());
        assert_eq!(split_list(" api , ,public"), ["api", "public"]);
    }

    #[test]
    fn jspath() {
        assert!(check_jspath(".\"https://x.org\".roles[1]").is_ok());
        assert!(check_jspath("$.role").is_ok());
        for bad in ["role", "", ".", ".a[x]", ".\"open", ".a[1"] {
            assert!(check_jspath(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_database("app").is_ok());
        assert!(check_database("").is_err());
        assert!(check_optional_name("").is_ok());
        assert!(check_optional_name(&"r".repeat(64)).is_err());
        assert!(check_function_name("").is_ok());
        assert!(check_function_name("api.pre").is_ok());
        assert!(check_function_name("pre").is_ok());
        for bad in ["a.b.c", ".x", "x.", "a..b"] {
            assert!(check_function_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        for ok in [
            "*",
            "https://example.org",
            "http://localhost:8080, https://a.b",
        ] {
            assert!(check_origins(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "example.org",
            "https://x.org/path",
            "ftp://x.org",
            "https://x.org:99999",
        ] {
            assert!(check_origins(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn read_replicas_are_connection_strings_separated_by_semicolons() {
        assert!(check_read_replicas("").is_ok());
        let two = "host=/run/a port=5433 dbname=app; postgresql://b:5432/app";
        assert!(check_read_replicas(two).is_ok());
        assert_eq!(split_conninfos(two).len(), 2);
        let bad = check_read_replicas("host=/run/a; port=1").unwrap_err();
        assert!(bad.starts_with("replica 2:"), "{bad}");
        let many = ["host=x"; MAX_READ_REPLICAS + 1].join(";");
        assert!(check_read_replicas(&many).is_err());
    }

    #[test]
    fn primary_conninfo_is_empty_or_a_usable_connection_string() {
        assert!(check_primary_conninfo("").is_ok());
        assert!(check_primary_conninfo("host=/run/postgresql port=5432").is_ok());
        assert!(check_primary_conninfo("postgresql://primary/app").is_ok());
        assert!(check_primary_conninfo("port=5432").is_err());
        assert!(check_primary_conninfo("host=x sslmode=verify-full").is_err());
    }

    #[test]
    fn default_workers_are_two_per_cpu_within_the_servers_worker_slots() {
        assert_eq!(default_workers(2, 8, 64), 4);
        assert_eq!(default_workers(1, 8, 64), 2);
        assert_eq!(default_workers(4, 8, 64), 4, "8 slots keep 4 for others");
        assert_eq!(default_workers(16, 40, 64), 32);
        assert_eq!(default_workers(64, 1000, 64), 64);
        assert_eq!(default_workers(8, 2, 64), 1, "never none");
    }

    #[test]
    fn slot_names() {
        assert!(check_slot_name("pg_rest").is_ok());
        assert!(check_slot_name("Bad-Name").is_err());
        assert!(check_slot_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn statement_timeout_is_the_shorter_bound() {
        assert_eq!(effective_statement_timeout(30_000, 0), 30_000);
        assert_eq!(effective_statement_timeout(30_000, 5_000), 5_000);
        assert_eq!(effective_statement_timeout(500, 60_000), 500);
        assert_eq!(effective_statement_timeout(0, 5_000), 5_000);
        assert_eq!(effective_statement_timeout(0, 0), 0);
    }
}
