//! Fault injection for the crash-safety tests (`pg_rest.test_faults`).

use crate::execute::{self, PlanCache, RequestContext};
use pg_rest_core::api_request::{Access, TxMode};
use pg_rest_core::error::ApiError;
use pg_rest_core::request::Request;
use pg_rest_core::response::Response;

/// Paths under this prefix inject faults when `pg_rest.test_faults` is on (tests only).
pub(super) const TEST_FAULT_PREFIX: &str = "/_pg_rest_test/";

/// Read-write for the fault that writes, read-only for the others.
pub(super) fn fault_mode(request: &Request) -> TxMode {
    let access = if request.target.ends_with("/deferred_write") {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    TxMode {
        access,
        ..TxMode::for_request("GET", &Default::default())
    }
}

/// Faults injected inside a request's transaction, for the crash-safety tests:
/// - `panic`: a Rust panic;
/// - `error_in_log`: a PostgreSQL ERROR raised inside a section that holds interrupts, as
///   an ERROR inside a guarded log call would be;
/// - `deferred_write`: a read-write request whose row fires the fixture's deferred
///   constraint trigger (`public.deferred_sleep`, 3 s) at commit.
pub(super) fn inject_fault(
    ctx: &RequestContext,
    plans: &mut PlanCache,
    fault: &str,
) -> Result<Response, ApiError> {
    execute::in_transaction(ctx, |ctx| {
        execute::begin_request_sql(ctx, None, plans);
        match fault {
            "panic" => panic!("fault injected by /_pg_rest_test/panic"),
            "error_in_log" => crate::log::with_interrupts_held(|| -> Result<Response, ApiError> {
                pgrx::error!("fault injected by /_pg_rest_test/error_in_log")
            }),
            "deferred_write" => {
                pgrx::Spi::run("INSERT INTO public.deferred_sleep DEFAULT VALUES")
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                Ok(Response::json(200, b"[]".to_vec()))
            }
            _ => Err(ApiError::invalid_path()),
        }
    })
}
