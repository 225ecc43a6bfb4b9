//! Forwarding: on a hot standby, writes and volatile calls run on the primary
//! (docs/replicas.md). The request is authenticated, parsed and planned here like any other;
//! its transaction — the same settings, pre-request call and statement text with the same
//! parameters (`core::forward`) — becomes a run on one of the worker's links to the primary
//! (`transport::upstream`), and the client's answer is deferred (`Reply::Deferred`) until
//! the run comes back. Then the code the local path uses turns the statement's row into the
//! response.
//!
//! A request whose row decides whether it may commit (a singular response, `max-affected`
//! with `handling=strict`, and every call, whose function may set `response.status`) runs in
//! two round trips: up to its statement with the transaction left open, then COMMIT or
//! ROLLBACK as the answer built from the row allows. Other writes take one.

use super::finish::{Finishing, Tail};
use super::replicas::Work;
use crate::execute::{self, RequestContext};
use crate::transport::upstream::{Failure, Target, Upstream};
use crate::worker::config::Config;
use pg_rest_core::api_request::{Access, ApiRequest, MediaType, TxMode};
use pg_rest_core::conninfo::Conninfo;
use pg_rest_core::error::ApiError;
use pg_rest_core::pgwire::{Query, Row};
use pg_rest_core::plan::call::CallPlan;
use pg_rest_core::plan::write::WritePlan;
use pg_rest_core::plan::ReadPlan;
use pg_rest_core::preferences::TxEnd;
use pg_rest_core::request::Request;
use pg_rest_core::response::{Outcome, Response};
use pg_rest_core::schema_cache::RoleSettings;
use pg_rest_core::{forward, sql};
use std::time::Instant;

/// A forwarded request on its way: what builds its answer, and where it goes.
pub(crate) struct Forward {
    what: What,
    pre_request: bool,
    /// Its mode (and end: commit, or rollback for `Prefer: tx=rollback`).
    tx: TxMode,
    /// Read-write: a committed answer carries `Pg-Rest-Lsn`.
    writes: bool,
    authenticated: bool,
    stage: Stage,
    /// The run to send first (taken when submitted).
    run: Vec<Query>,
    pub(super) tail: Option<Tail>,
    pub(super) finishing: Finishing,
    /// The client connection's key and the deferred answer's id.
    pub(super) conn: usize,
    pub(super) id: u64,
    /// The read replica it goes to (None: the primary).
    pub(super) replica: Option<usize>,
    /// A read: the request, served here should the other server be unable to run it (reads
    /// go on when a replica or the primary is down).
    pub(super) fallback: Option<Request>,
}

/// The planned request, for building its answer from the statement's row.
enum What {
    Read {
        request: Box<ApiRequest>,
        plan: Box<ReadPlan>,
        /// Its `Content-Location`.
        location: String,
    },
    Write {
        request: Box<ApiRequest>,
        plan: Box<WritePlan>,
    },
    Call {
        request: Box<ApiRequest>,
        plan: Box<CallPlan>,
    },
}

enum Stage {
    /// The whole transaction is one run.
    Whole,
    /// The run up to the statement is out, its transaction left open: the row decides.
    Deciding,
    /// The end of the transaction is out, with the answer to give if it succeeds.
    Ending(Result<Response, ApiError>),
}

/// What a finished run leads to.
pub(super) enum Step {
    /// The client's answer; and the primary's WAL position the run reported, if it did.
    Answer(usize, u64, Response, Option<u64>),
    /// The transaction's end, to send on `link`.
    End(Box<Forward>, usize, Vec<Query>),
    /// The other server could not run a read: the request, to answer here instead.
    Retry(usize, u64, Request),
}

impl Forward {
    /// A read to forward, planned: one whose wait for this standby to replay its client's
    /// write ran out (`Pg-Rest-Lsn`). Read-only, so its row decides nothing.
    pub(super) fn read(
        ctx: &RequestContext,
        role: Option<&RoleSettings>,
        request: &ApiRequest,
        plan: ReadPlan,
        location: String,
    ) -> Box<Forward> {
        let statement = sql::read_statement(&plan);
        let what = What::Read {
            request: Box::new(request.clone()),
            plan: Box::new(plan),
            location,
        };
        Forward::new(ctx, role, &statement, what, false)
    }

    /// A write to forward, planned.
    pub(super) fn write(
        ctx: &RequestContext,
        role: Option<&RoleSettings>,
        request: &ApiRequest,
        plan: WritePlan,
    ) -> Box<Forward> {
        let prefs = &request.preferences;
        let decides = matches!(plan.media, MediaType::Object { .. })
            || (prefs.max_affected.is_some() && prefs.strict == Some(true));
        let statement = sql::write_statement(&plan);
        let what = What::Write {
            request: Box::new(request.clone()),
            plan: Box::new(plan),
        };
        Forward::new(ctx, role, &statement, what, decides)
    }

    /// A call to forward, planned: a volatile one, or a read-only one whose wait ran out.
    pub(super) fn call(
        ctx: &RequestContext,
        role: Option<&RoleSettings>,
        request: &ApiRequest,
        plan: CallPlan,
    ) -> Box<Forward> {
        let statement = sql::call_statement(&plan);
        let what = What::Call {
            request: Box::new(request.clone()),
            plan: Box::new(plan),
        };
        Forward::new(ctx, role, &statement, what, true)
    }

    fn new(
        ctx: &RequestContext,
        role: Option<&RoleSettings>,
        statement: &sql::Statement,
        what: What,
        decides: bool,
    ) -> Box<Forward> {
        let mut settings = Vec::with_capacity(12);
        crate::settings::request_settings(ctx, role, |name, value, _| settings.push((name, value)));
        let timeout = execute::statement_timeout_ms(ctx.statement_timeout_ms).to_string();
        settings.push(("statement_timeout", &timeout));
        let run = if decides {
            forward::open_run(ctx.tx, &settings, ctx.pre_request, statement)
        } else {
            forward::run(ctx.tx, &settings, ctx.pre_request, statement)
        };
        Box::new(Forward {
            what,
            pre_request: ctx.pre_request.is_some(),
            tx: ctx.tx,
            writes: ctx.tx.access == Access::ReadWrite,
            authenticated: ctx.authenticated,
            stage: if decides {
                Stage::Deciding
            } else {
                Stage::Whole
            },
            run,
            tail: None,
            finishing: Finishing::default(),
            conn: 0,
            id: 0,
            replica: None,
            fallback: None,
        })
    }

    /// Hands the request to the pool as connection `conn`'s deferred answer `id`; when the
    /// server cannot be reached, what to do instead: answer 503, or serve a read here.
    pub(super) fn submit(
        mut self: Box<Forward>,
        (conn, id): (usize, u64),
        upstream: &mut Upstream<Work>,
        now: Instant,
    ) -> Option<Step> {
        self.conn = conn;
        self.id = id;
        if let Some(why) = upstream.unavailable(now) {
            return Some(self.refused(Failure::Unavailable(why)));
        }
        let run = std::mem::take(&mut self.run);
        let open = matches!(self.stage, Stage::Deciding);
        upstream.submit(run, open, Work::Request(self), now);
        None
    }

    /// The server could not run the request: a read is served here, anything else answered
    /// with the failure.
    fn refused(mut self: Box<Forward>, failure: Failure) -> Step {
        match self.fallback.take() {
            Some(request) => Step::Retry(self.conn, self.id, request),
            None => {
                let e = self.failure(failure);
                self.answered(Err(e), None, false)
            }
        }
    }

    /// Where a finished run leads: the answer, or (after an open run) the transaction's end.
    pub(super) fn step(
        mut f: Box<Forward>,
        result: Result<Vec<Vec<Row>>, Failure>,
        open: Option<usize>,
    ) -> Step {
        let result = match result {
            Err(e @ Failure::Unavailable(_)) => return f.refused(e),
            result => result,
        };
        match std::mem::replace(&mut f.stage, Stage::Whole) {
            Stage::Whole => {
                let committed = f.writes && f.tx.end == TxEnd::Commit;
                let lsn = result.as_ref().ok().and_then(|r| forward::lsn(r));
                let answer = f.rows(result).and_then(|rows| f.answer(&rows));
                f.answered(answer, lsn, committed)
            }
            Stage::Deciding => {
                let answer = f.rows(result).and_then(|rows| f.answer(&rows));
                let Some(link) = open else {
                    // The run failed (and was rolled back) or ended its own transaction.
                    let answer = answer.and(Err(ApiError::internal(
                        "the forwarded transaction ended before pg_rest ended it",
                    )));
                    return f.answered(answer, None, false);
                };
                let end = if answer.is_ok() {
                    f.tx.end
                } else {
                    TxEnd::Rollback
                };
                f.stage = Stage::Ending(answer);
                let run = forward::end_run(TxMode { end, ..f.tx });
                Step::End(f, link, run)
            }
            Stage::Ending(answer) => {
                let committed = answer.is_ok() && f.writes && f.tx.end == TxEnd::Commit;
                match result {
                    Ok(rows) => f.answered(answer, forward::lsn(&rows), committed),
                    // The end itself failed: a deferred constraint at COMMIT is the client's
                    // error, as it is locally.
                    Err(e) if answer.is_ok() => {
                        let e = f.failure(e);
                        f.answered(Err(e), None, false)
                    }
                    Err(_) => f.answered(answer, None, false),
                }
            }
        }
    }

    /// The answer when the end of an open transaction could not be sent (its link is gone).
    pub(super) fn lost(self: Box<Forward>) -> Step {
        let e = ApiError::primary_unavailable(
            "the connection to the primary closed before the transaction ended; it was rolled back",
        );
        self.answered(Err(e), None, false)
    }

    /// The client's answer; `lsn` (the primary's position after the run) is its
    /// `Pg-Rest-Lsn` when the request `committed` a write.
    fn answered(
        self: Box<Forward>,
        answer: Result<Response, ApiError>,
        lsn: Option<u64>,
        committed: bool,
    ) -> Step {
        let (conn, id) = (self.conn, self.id);
        let header = lsn.filter(|_| committed);
        Step::Answer(conn, id, self.finish(answer, header), lsn)
    }

    /// The response as the local path finishes it.
    fn finish(
        self: Box<Forward>,
        answer: Result<Response, ApiError>,
        lsn: Option<u64>,
    ) -> Response {
        let Forward {
            tail, finishing, ..
        } = *self;
        let answer = answer.map(|mut response| {
            if let Some(tail) = tail {
                tail.apply(&mut response, lsn);
            }
            response
        });
        finishing.apply(answer)
    }

    fn rows(&self, result: Result<Vec<Vec<Row>>, Failure>) -> Result<Vec<Vec<Row>>, ApiError> {
        result.map_err(|e| self.failure(e))
    }

    /// A failure as the client sees it: the primary's error mapped exactly as a local one, or
    /// 503 when the primary could not run the request.
    fn failure(&self, failure: Failure) -> ApiError {
        match failure {
            Failure::Db(e) => ApiError::from_postgres(
                &e.code,
                &e.message,
                e.detail.as_deref(),
                e.hint.as_deref(),
                self.authenticated,
            ),
            Failure::Unavailable(why) => ApiError::primary_unavailable(&why),
        }
    }

    /// The response to the statement's row, built by the local path's code.
    fn answer(&self, rows: &[Vec<Row>]) -> Result<Response, ApiError> {
        let outcome: Outcome = forward::outcome(rows, self.pre_request).map_err(|why| {
            ApiError::internal(format!("the primary's answer cannot be read: {why}"))
        })?;
        match &self.what {
            What::Read {
                request,
                plan,
                location,
            } => {
                let total = outcome.total;
                let mut response = super::read::answer(request, plan, outcome, total)?;
                response
                    .headers
                    .push(("Content-Location", location.clone()));
                Ok(response)
            }
            What::Write { request, plan } => super::write::answer(request, plan, outcome),
            What::Call { request, plan } => {
                let mut response = super::call::answer(plan, outcome)?;
                super::read::warn_legacy_names(&mut response, request, &plan.root);
                Ok(response)
            }
        }
    }
}

/// Where a standby forwards to: `pg_rest.primary_conninfo`, else the server's own
/// `primary_conninfo` with the API database and the authenticator role (with
/// `pg_rest.authenticator` empty, the user it names); the password from the string or the
/// passfile libpq would read.
pub(super) fn target(config: &Config) -> Result<Target, String> {
    let (text, derived) = match &config.primary_conninfo {
        Some(text) => (text.as_str(), false),
        None => match &config.server_primary_conninfo {
            Some(text) => (text.as_str(), true),
            None => {
                return Err(
                    "neither pg_rest.primary_conninfo nor the server's primary_conninfo is set"
                        .into(),
                )
            }
        },
    };
    let mut info = Conninfo::parse(text)?;
    if derived {
        let user = match config.authenticator.as_str() {
            "" => info.get("user").unwrap_or("postgres").to_string(),
            name => name.to_string(),
        };
        info = info.for_api(&config.database, &user);
    }
    Target::from_conninfo(&info, pgpass(&info).as_deref())
}

/// The passfile libpq would read for `info` (`passfile=`, `PGPASSFILE`, `~/.pgpass`), if any.
pub(super) fn pgpass(info: &Conninfo) -> Option<String> {
    let passfile = info
        .get("passfile")
        .map(str::to_string)
        .or_else(|| std::env::var("PGPASSFILE").ok())
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.pgpass")));
    passfile.and_then(|path| std::fs::read_to_string(path).ok())
}
