//! The request pipeline, stage by stage (DESIGN.md "One request"):
//! ApiRequest → auth → (transaction: schema cache → Plan → SQL → execute) → Response.
//! Protocol-independent: HTTP/1.1 calls it today, HTTP/2 will call the same.

use crate::execute::{self, PlanCache, RequestContext};
use crate::schema_cache;
use crate::stats::WorkerSlot;
use crate::worker::config::Config;
use pg_rest_core::api_request::{self, Access, ApiRequest, TxMode};
use pg_rest_core::error::ApiError;
use pg_rest_core::http1::Request;
use pg_rest_core::preferences::TxEnd;
use pg_rest_core::response::{error_response, read_response, Response};
use pg_rest_core::{plan, sql};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Paths under this prefix inject faults when `pg_rest.test_faults` is on (tests only).
const TEST_FAULT_PREFIX: &str = "/_pg_rest_test/";

pub struct App {
    config: Config,
    /// This worker's shared statistics slot.
    slot: &'static WorkerSlot,
    schema_cache: schema_cache::Holder,
    plans: PlanCache,
}

impl App {
    pub fn new(config: Config, slot: &'static WorkerSlot) -> App {
        App {
            config,
            slot,
            schema_cache: schema_cache::Holder::default(),
            plans: PlanCache::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes new settings after SIGHUP.
    pub fn reload(&mut self, config: Config) {
        if config.schemas != self.config.schemas {
            self.schema_cache.invalidate();
        }
        self.config = config;
    }

    /// Answers one request. Never panics and never raises: failures become error responses.
    pub fn handle(&mut self, request: &Request) -> Response {
        let started = self.config.log_requests.then(Instant::now);
        let response = match self.respond(request) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
        if let Some(t) = started {
            crate::quiet_log!(
                "pg_rest: \"{} {}\" {} {}B {:.3}ms",
                request.method,
                request.target,
                response.status,
                response.body.len(),
                t.elapsed().as_secs_f64() * 1000.0
            );
        }
        response
    }

    fn respond(&mut self, request: &Request) -> Result<Response, ApiError> {
        if self.config.test_faults && request.target.starts_with(TEST_FAULT_PREFIX) {
            return self.inject_fault(request);
        }
        let headers = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let api_request = api_request::parse(&request.method, &request.target, headers)?;
        let role = self
            .config
            .anon_role
            .as_deref()
            .ok_or_else(ApiError::anonymous_disabled)?;
        let ctx = RequestContext {
            role,
            method: &request.method,
            path: request.target.split('?').next().unwrap_or(""),
            statement_timeout_ms: self.config.statement_timeout_ms,
            tx: api_request.tx,
        };
        let (config, cache, plans) = (&self.config, &mut self.schema_cache, &mut self.plans);
        let result =
            execute::in_transaction(&ctx, |ctx| read(config, cache, plans, ctx, &api_request));
        self.slot.plans.store(self.plans.len() as i64, Relaxed);
        let (count, body) = result?;
        let mut response = read_response(count, body);
        if let Some(applied) = api_request.preferences.applied() {
            response.headers.push(("Preference-Applied", applied));
        }
        Ok(response)
    }

    /// Faults injected inside a request's transaction, for the crash-safety tests:
    /// - `panic`: a Rust panic;
    /// - `error_in_log`: a PostgreSQL ERROR raised inside a section that holds interrupts, as
    ///   an ERROR inside a guarded log call would be;
    /// - `deferred_write`: a read-write request whose row fires the fixture's deferred
    ///   constraint trigger (`public.deferred_sleep`, 3 s) at commit.
    fn inject_fault(&mut self, request: &Request) -> Result<Response, ApiError> {
        let role = self.config.anon_role.clone().unwrap_or_default();
        let fault = request.target[TEST_FAULT_PREFIX.len()..].to_string();
        let access = match fault.as_str() {
            "deferred_write" => Access::ReadWrite,
            _ => Access::ReadOnly,
        };
        let ctx = RequestContext {
            role: &role,
            method: &request.method,
            path: &request.target,
            statement_timeout_ms: self.config.statement_timeout_ms,
            tx: TxMode {
                access,
                end: TxEnd::Commit,
            },
        };
        execute::in_transaction(&ctx, |ctx| {
            execute::begin_request_sql(ctx);
            match fault.as_str() {
                "panic" => panic!("fault injected by /_pg_rest_test/panic"),
                "error_in_log" => {
                    crate::log::with_interrupts_held(|| -> Result<Response, ApiError> {
                        pgrx::error!("fault injected by /_pg_rest_test/error_in_log")
                    })
                }
                "deferred_write" => {
                    pgrx::Spi::run("INSERT INTO public.deferred_sleep DEFAULT VALUES")
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    Ok(read_response(0, b"[]".to_vec()))
                }
                _ => Err(ApiError::invalid_path()),
            }
        })
    }
}

/// A read, inside the request's transaction.
fn read(
    config: &Config,
    cache: &mut schema_cache::Holder,
    plans: &mut PlanCache,
    ctx: &RequestContext,
    api_request: &ApiRequest,
) -> Result<(i64, Vec<u8>), ApiError> {
    let schema = config.default_schema();
    let mut plan = plan::read_plan(
        api_request,
        cache.current(&config.schemas),
        schema,
        config.max_rows,
    );
    if matches!(&plan, Err(e) if e.code == "PGRST205") && cache.reload_after_miss(&config.schemas) {
        // Perhaps created since the cache was loaded: CREATE sends no invalidation we watch.
        plan = plan::read_plan(
            api_request,
            cache.current(&config.schemas),
            schema,
            config.max_rows,
        );
    }
    let plan = plan?;
    let statement = sql::read_statement(&plan);
    execute::begin_request_sql(ctx);
    Ok(execute::run_read(plans, &statement))
}
