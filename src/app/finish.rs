//! What every answer gets after the pipeline, whether it is built at once or when a forwarded
//! transaction comes back from the primary: the success headers of the request's stages
//! ([`Tail`]) and the connection-level finish ([`Finishing`]: JSONP, CORS, trace header, log
//! line). One place, so both paths answer alike.

use super::timing::StageTimer;
use pg_rest_core::error::ApiError;
use pg_rest_core::jsonp;
use pg_rest_core::realtime::event::format_lsn;
use pg_rest_core::request::Request;
use pg_rest_core::response::{error_response, Response};
use std::time::Instant;

/// A successful answer's headers: preferences honoured, the schema that answered, the commit
/// position, the stages' times.
pub(super) struct Tail {
    pub applied: Option<String>,
    /// `Content-Profile`, when several schemas are exposed.
    pub profile: Option<String>,
    pub timer: StageTimer,
}

impl Tail {
    /// Adds the headers; `lsn`: where the request's commit ended (`Pg-Rest-Lsn`), if it wrote.
    pub fn apply(mut self, response: &mut Response, lsn: Option<u64>) {
        self.timer.lap("transaction");
        if let Some(applied) = self.applied {
            response.headers.push(("Preference-Applied", applied));
        }
        if let Some(schema) = self.profile {
            response.headers.push(("Content-Profile", schema));
        }
        if let Some(lsn) = lsn {
            response.headers.push(("Pg-Rest-Lsn", format_lsn(lsn)));
        }
        self.timer.lap("response");
        if let Some(timing) = self.timer.header() {
            response.headers.push(("Server-Timing", timing));
        }
    }
}

/// The connection-level finish of one request's answer.
#[derive(Default)]
pub(super) struct Finishing {
    /// The JSONP callback the answer (errors too) is wrapped in.
    pub jsonp: Option<String>,
    /// CORS headers of an ordinary (not preflight) request.
    pub cors: Vec<(&'static str, String)>,
    /// `pg_rest.trace_header`'s name and the request's value.
    pub trace: Option<(&'static str, String)>,
    /// With `pg_rest.log_requests`: when it started, and "METHOD target".
    pub log: Option<(Instant, String)>,
}

impl Finishing {
    pub fn new(request: &Request, trace_header: Option<&'static str>, log: bool) -> Finishing {
        Finishing {
            trace: trace_header.and_then(|name| Some((name, request.header(name)?.to_string()))),
            log: log.then(|| {
                (
                    Instant::now(),
                    format!("{} {}", request.method, request.target),
                )
            }),
            ..Default::default()
        }
    }

    /// The response for `answer`: an error as PostgREST's JSON, wrapped for JSONP, with the
    /// CORS and trace headers; logged when asked for.
    pub fn apply(self, answer: Result<Response, ApiError>) -> Response {
        let mut response = answer.unwrap_or_else(|e| error_response(&e));
        if let Some(callback) = &self.jsonp {
            response = jsonp::wrap(response, callback);
        }
        response.headers.extend(self.cors);
        if let Some(trace) = self.trace {
            response.headers.push(trace);
        }
        if let Some((started, line)) = self.log {
            crate::quiet_log!(
                "pg_rest: \"{line}\" {} {}B {:.3}ms",
                response.status,
                response.body.len(),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        response
    }
}
