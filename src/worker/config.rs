//! A worker's snapshot of the settings, taken at start and after each SIGHUP, so the hot path
//! reads plain fields instead of GUC storage.

use crate::gucs::{self, string_value};
use crate::transport::tls::{Reloaded, TlsMaterial};
use pg_rest_core::http1::Limits;
use pg_rest_core::settings::split_list;
use std::time::Duration;

/// A secret setting's value: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl Secret {
    /// The secret a setting names: its value, or with `@/path` (PostgREST's form) the file's
    /// content without one trailing line break. A file keeps the secret out of the server log,
    /// where PostgreSQL prints every setting a reload changes. A file that cannot be read is
    /// logged (its path, never content) and leaves the secret empty.
    fn load(value: String) -> Secret {
        let Some(path) = value.strip_prefix('@') else {
            return Secret(value);
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Secret(text.strip_suffix('\n').unwrap_or(&text).to_string()),
            Err(e) => {
                crate::quiet_log!("pg_rest: cannot read the pg_rest.jwt_secret file {path}: {e}");
                Secret::default()
            }
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "(empty)"
        } else {
            "(set)"
        })
    }
}

/// The settings that decide authentication; a change empties the worker's JWT cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub jwt_secret_is_base64: bool,
    pub jwt_aud: Option<String>,
    pub jwt_role_claim_key: String,
    pub anon_role: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addresses: Vec<String>,
    pub port: u16,
    pub workers: usize,
    pub max_connections: usize,
    pub limits: Limits,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub schemas: Vec<String>,
    pub extra_search_path: Vec<String>,
    pub auth: AuthSettings,
    /// `pg_rest.pre_request`, if set.
    pub pre_request: Option<String>,
    /// Rows a read returns at most; None: unlimited.
    pub max_rows: Option<u32>,
    /// Milliseconds; 0: none of pg_rest's own.
    pub statement_timeout_ms: i32,
    pub log_requests: bool,
    pub test_faults: bool,
    pub aggregates_enabled: bool,
    pub plan_enabled: bool,
    pub server_timing: bool,
    /// `pg_rest.trace_header`, lower-case; None when empty.
    pub trace_header: Option<String>,
    pub cors_allowed_origins: String,
    /// `pg_rest.channel_check`: who may use a realtime channel; None when empty.
    pub channel_check: Option<String>,
    /// `pg_rest.primary_conninfo`; None when empty (derived from the server's).
    pub primary_conninfo: Option<String>,
    /// The server's own `primary_conninfo` (a standby's, written by `pg_basebackup -R`).
    pub server_primary_conninfo: Option<String>,
    /// `pg_rest.read_your_writes_timeout`.
    pub read_your_writes_timeout: Duration,
    /// `pg_rest.read_replicas`, one connection string each.
    pub read_replicas: Vec<String>,
    /// `pg_rest.read_replica_max_lag`, in bytes of WAL.
    pub read_replica_max_lag: u64,
    pub database: String,
    pub authenticator: String,
    /// `pg_rest.tls_cert_file` / `tls_key_file`, loaded; carried over SIGHUPs by
    /// [`Config::reload`] so a bad file never takes TLS down.
    pub tls: TlsMaterial,
}

/// Re-reads postgresql.conf after SIGHUP. A bad file is logged by PostgreSQL and changes
/// nothing; any ERROR is caught and logged.
pub fn reload_config_file() {
    crate::execute::guarded_void(|| unsafe {
        pgrx::pg_sys::ProcessConfigFile(pgrx::pg_sys::GucContext::PGC_SIGHUP)
    });
}

impl Config {
    /// Every setting, the TLS files read afresh: a worker's start.
    pub fn load() -> Config {
        Config::load_after(None)
    }

    /// After SIGHUP: every setting again, but TLS starts from `prev`'s material, which stays
    /// in use when the new files are bad (logged) and is not rebuilt when they are unchanged.
    pub fn reload(prev: &Config) -> Config {
        Config::load_after(Some(prev))
    }

    /// Every setting but TLS, whose files are not read: for the postmaster at preload, which
    /// needs only the addresses, so the private key never enters it (and every backend it
    /// forks).
    pub fn load_without_tls() -> Config {
        Config::settings()
    }

    fn load_after(prev: Option<&Config>) -> Config {
        let mut config = Config::settings();
        if let Some(prev) = prev {
            config.tls = prev.tls.clone();
        }
        reload_tls(&mut config.tls);
        config
    }

    fn settings() -> Config {
        let listen = string_value(&gucs::LISTEN_ADDRESSES);
        let schemas = string_value(&gucs::SCHEMAS);
        let anon = string_value(&gucs::ANON_ROLE);
        let optional = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let extra = string_value(&gucs::EXTRA_SEARCH_PATH);
        Config {
            listen_addresses: split_list(&listen).into_iter().map(String::from).collect(),
            port: gucs::PORT.get().clamp(1, 65535) as u16,
            workers: gucs::WORKERS.get().max(1) as usize,
            max_connections: gucs::MAX_CONNECTIONS.get().max(1) as usize,
            limits: Limits {
                max_header_size: gucs::MAX_HEADER_SIZE.get().max(0) as usize,
                max_body_size: gucs::MAX_BODY_SIZE.get().max(0) as usize,
            },
            idle_timeout: Duration::from_secs(gucs::IDLE_TIMEOUT.get().max(1) as u64),
            request_timeout: Duration::from_secs(gucs::REQUEST_TIMEOUT.get().max(1) as u64),
            schemas: split_list(&schemas).into_iter().map(String::from).collect(),
            extra_search_path: split_list(&extra).into_iter().map(String::from).collect(),
            auth: AuthSettings {
                jwt_secret: Secret::load(string_value(&gucs::JWT_SECRET)),
                jwt_secret_is_base64: gucs::JWT_SECRET_IS_BASE64.get(),
                jwt_aud: optional(string_value(&gucs::JWT_AUD)),
                jwt_role_claim_key: string_value(&gucs::JWT_ROLE_CLAIM_KEY),
                anon_role: optional(anon),
            },
            pre_request: optional(string_value(&gucs::PRE_REQUEST)),
            max_rows: u32::try_from(gucs::MAX_ROWS.get()).ok(),
            statement_timeout_ms: gucs::STATEMENT_TIMEOUT.get(),
            log_requests: gucs::LOG_REQUESTS.get(),
            test_faults: gucs::TEST_FAULTS.get(),
            aggregates_enabled: gucs::AGGREGATES_ENABLED.get(),
            plan_enabled: gucs::PLAN_ENABLED.get(),
            server_timing: gucs::SERVER_TIMING.get(),
            trace_header: optional(string_value(&gucs::TRACE_HEADER))
                .map(|h| h.to_ascii_lowercase()),
            cors_allowed_origins: string_value(&gucs::CORS_ALLOWED_ORIGINS),
            channel_check: optional(string_value(&gucs::CHANNEL_CHECK)),
            primary_conninfo: optional(string_value(&gucs::PRIMARY_CONNINFO)),
            server_primary_conninfo: gucs::server_setting(c"primary_conninfo"),
            read_your_writes_timeout: Duration::from_millis(
                gucs::READ_YOUR_WRITES_TIMEOUT.get().max(0) as u64,
            ),
            read_replicas: pg_rest_core::settings::split_conninfos(&string_value(
                &gucs::READ_REPLICAS,
            ))
            .into_iter()
            .map(String::from)
            .collect(),
            read_replica_max_lag: gucs::READ_REPLICA_MAX_LAG.get().max(0) as u64,
            database: string_value(&gucs::DATABASE),
            authenticator: string_value(&gucs::AUTHENTICATOR),
            tls: TlsMaterial::default(),
        }
    }

    /// The default schema: the first of `pg_rest.schemas` (the check hook keeps it non-empty).
    pub fn default_schema(&self) -> &str {
        self.schemas.first().map_or("public", String::as_str)
    }
}

/// Applies the TLS settings to `tls`, logging what changed and, on a bad file, what is wrong
/// and what is served meanwhile (GUC check hooks cannot judge the pair, see docs/tls.md).
fn reload_tls(tls: &mut TlsMaterial) {
    let cert = string_value(&gucs::TLS_CERT_FILE);
    let key = string_value(&gucs::TLS_KEY_FILE);
    match tls.reload(&cert, &key) {
        Ok(Reloaded::Unchanged) => {}
        Ok(Reloaded::Loaded) => crate::quiet_log!(
            "pg_rest: TLS certificate {} and key {} loaded",
            cert.trim(),
            key.trim()
        ),
        Ok(Reloaded::Disabled) => crate::quiet_log!(
            "pg_rest: TLS off (pg_rest.tls_cert_file and pg_rest.tls_key_file are empty): \
             new connections are plain HTTP"
        ),
        Err(e) => match tls.files() {
            Some((old_cert, _)) => crate::quiet_log!(
                "pg_rest: {e}; new TLS connections keep the certificate loaded before, {old_cert}"
            ),
            None => crate::quiet_log!(
                "pg_rest: {e}; no TLS certificate is loaded, so new connections are closed \
                 until this is fixed"
            ),
        },
    }
}
