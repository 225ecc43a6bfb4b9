//! The request pipeline, stage by stage (DESIGN.md "One request"):
//! auth → ApiRequest → (transaction: schema cache → Plan → SQL → request context → execute)
//! → Response.
//! Protocol-independent: HTTP/1.1 calls it today, HTTP/2 will call the same. One module per
//! kind of request: `read` (rows, `/`, OPTIONS), `write`, `call`; `timing` and `faults`.

mod call;
mod faults;
mod finish;
mod forward;
mod read;
mod realtime;
mod replicas;
mod timing;
mod write;

use faults::{fault_mode, inject_fault, TEST_FAULT_PREFIX};
use finish::{Finishing, Tail};
use forward::{Forward, Step as Forwarded};
use replicas::{Replicas, Work};
use timing::StageTimer;

use crate::execute::{self, PlanCache, RequestContext};
use crate::schema_cache;
use crate::stats::WorkerSlot;
use crate::transport::conn::Handler;
use crate::transport::upstream::{self, Upstream};
use crate::worker::config::{AuthSettings, Config};
use pg_rest_core::api_request::{self, Access, Action, MediaType, Resource, TxMode};
use pg_rest_core::auth::jspath::{JsPath, Step};
use pg_rest_core::auth::keys::Keys;
use pg_rest_core::auth::{self, AuthConfig, Authenticated, JwtCache};
use pg_rest_core::cors::{Cors, Decision};
use pg_rest_core::error::{ApiError, Code};
use pg_rest_core::realtime::event::parse_lsn;
use pg_rest_core::request::{Reply, Request};
use pg_rest_core::response::{Outcome, Overrides, Response};
use pg_rest_core::schema_cache::{SchemaCache, Volatility};
use pg_rest_core::{context, jsonp, plan, sql};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime};

pub struct App {
    config: Config,
    /// This worker's shared statistics slot.
    slot: &'static WorkerSlot,
    schema_cache: schema_cache::Holder,
    plans: PlanCache,
    /// Keys, audience and role path, read from the settings once per (re)load.
    auth: AuthConfig,
    jwt_cache: JwtCache,
    defaults: RequestDefaults,
    cors: Cors,
    /// This worker's realtime subscriptions and its feed from the realtime worker.
    pub hub: crate::realtime::hub::Hub,
    /// Realtime's visibility statements per group, valid for one generation of the hub's
    /// subscriptions.
    checks: (u64, std::collections::HashMap<u32, realtime::Check>),
    /// The event loop's key of the connection being served (realtime ties subscriptions to
    /// it, a forwarded request its deferred answer).
    conn: usize,
    /// On a hot standby: the links to the primary that writes are forwarded over.
    upstream: Upstream<Work>,
    /// On a primary: the replicas reads may go to (`pg_rest.read_replicas`).
    replicas: Replicas,
    /// While a read a replica failed is answered here: it is not sent to one again.
    local_only: bool,
    /// The last deferred answer's id (unique over the worker's life).
    last_id: u64,
    /// Reads waiting for this standby to replay their client's write (`Pg-Rest-Lsn`).
    waiting: Vec<Waiting>,
    /// While a read whose wait ran out is answered: it goes to the primary.
    to_primary: bool,
}

/// A read held until this standby has replayed to `lsn`, or until `until` (then the primary
/// answers it).
struct Waiting {
    conn: usize,
    id: u64,
    request: Request,
    lsn: u64,
    until: Instant,
}

/// A request's answer: built now, or to come from the primary.
enum Answer {
    Now(Response),
    Forwarded(Box<Forward>),
}

/// What every request's transaction starts with, derived from the settings once per load.
struct RequestDefaults {
    /// Each exposed schema, the default first, with the `search_path` of requests on it: it
    /// first, then `pg_rest.extra_search_path`, as PostgREST sets it.
    search_paths: Vec<(String, String)>,
    /// The `pg_rest.pre_request` call as SQL.
    pre_request: Option<String>,
    statement_timeout_ms: i32,
}

impl RequestDefaults {
    fn new(config: &Config) -> RequestDefaults {
        RequestDefaults {
            search_paths: std::iter::once(config.default_schema())
                .chain(config.schemas.iter().skip(1).map(String::as_str))
                .map(|schema| {
                    let path = context::search_path(schema, &config.extra_search_path);
                    (schema.to_owned(), path)
                })
                .collect(),
            pre_request: config
                .pre_request
                .as_deref()
                .map(sql::pre_request_statement),
            statement_timeout_ms: config.statement_timeout_ms,
        }
    }

    /// The `search_path` of a request on `schema`, one of the exposed schemas.
    fn search_path(&self, schema: &str) -> &str {
        self.search_paths
            .iter()
            .find(|(name, _)| name == schema)
            .map_or_else(|| self.default_search_path(), |(_, path)| path)
    }

    /// The `search_path` of requests on the default schema (the first).
    fn default_search_path(&self) -> &str {
        self.search_paths.first().map_or("", |(_, path)| path)
    }
}

impl App {
    pub fn new(config: Config, slot: &'static WorkerSlot) -> App {
        let target = forward::target(&config);
        let replicas = Replicas::new(&config);
        App {
            auth: auth_config(&config.auth),
            jwt_cache: JwtCache::default(),
            defaults: RequestDefaults::new(&config),
            cors: Cors::parse(&config.cors_allowed_origins),
            config,
            slot,
            schema_cache: schema_cache::Holder::default(),
            plans: PlanCache::default(),
            hub: Default::default(),
            checks: Default::default(),
            conn: 0,
            upstream: Upstream::new(0, target),
            replicas,
            local_only: false,
            last_id: 0,
            waiting: Vec::new(),
            to_primary: false,
        }
    }

    /// The connection the next requests and messages come from.
    pub fn set_conn(&mut self, key: usize) {
        self.conn = key;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes new settings after SIGHUP. The schema cache (and the role settings loaded with
    /// it) is reloaded at the next request; verified tokens are forgotten when the auth
    /// settings changed (a rotated secret must not keep old tokens valid).
    pub fn reload(&mut self, config: Config, registry: &mio::Registry) {
        self.schema_cache.invalidate();
        self.upstream.retarget(forward::target(&config), registry);
        self.replicas.reload(&config, registry);
        if config.auth != self.config.auth {
            self.auth = auth_config(&config.auth);
            self.jwt_cache = JwtCache::default();
        }
        self.defaults = RequestDefaults::new(&config);
        self.cors = Cors::parse(&config.cors_allowed_origins);
        self.config = config;
    }
}

impl Handler for App {
    fn handle(&mut self, request: &Request) -> Reply {
        if Self::is_realtime(request) {
            return self.realtime_request(request);
        }
        if let Some(lsn) = self.unreplayed(request) {
            return self.wait(request, lsn);
        }
        match self.serve(request) {
            Answer::Now(response) => match execute::take_unflushed_commit() {
                Some(flush_lsn) => Reply::Pending {
                    response,
                    flush_lsn,
                },
                None => Reply::Response(response),
            },
            Answer::Forwarded(forward) => self.submit(forward),
        }
    }

    fn message(&mut self, text: &str) -> Option<String> {
        self.realtime_message(text)
    }
}

impl App {
    /// Answers one HTTP request, or hands it to the primary. Never panics and never raises:
    /// failures become error responses.
    fn serve(&mut self, request: &Request) -> Answer {
        let trace = self.config.trace_header.as_deref().map(trace_header_name);
        let mut finishing = Finishing::new(request, trace, self.config.log_requests);
        let cors = self.cors.decide(
            &request.method,
            request.header("origin"),
            request.header("access-control-request-method"),
            request.header("access-control-request-headers"),
        );
        let answer = match cors {
            Decision::Preflight(headers) => Ok(Answer::Now(Response {
                status: 200,
                headers,
                body: Vec::new(),
                ..Default::default()
            })),
            Decision::Ordinary(extra) => {
                finishing.cors = extra;
                self.respond(request, &mut finishing)
            }
        };
        match answer {
            Ok(Answer::Forwarded(mut forward)) => {
                forward.finishing = finishing;
                Answer::Forwarded(forward)
            }
            Ok(Answer::Now(response)) => Answer::Now(finishing.apply(Ok(response))),
            Err(e) => Answer::Now(finishing.apply(Err(e))),
        }
    }

    /// The answer to a request; with a JSONP callback every JSON body — errors' too, whatever
    /// stage raised them — is wrapped as `callback(…);` (a bad callback name is itself the
    /// error, unwrapped).
    fn respond(
        &mut self,
        request: &Request,
        finishing: &mut Finishing,
    ) -> Result<Answer, ApiError> {
        finishing.jsonp = jsonp::callback(request.query())?;
        if request
            .header("pg-rest-lsn")
            .is_some_and(|v| parse_lsn(v).is_none())
        {
            return Err(ApiError::protocol(
                400,
                "Pg-Rest-Lsn must be a WAL position, such as 0/16B3748",
            ));
        }
        self.answer(request)
    }

    /// A forwarded request goes to the pool: its answer is deferred, or given at once when
    /// the other server cannot be reached.
    fn submit(&mut self, forward: Box<Forward>) -> Reply {
        let id = self.next_id();
        match self.send(forward, (self.conn, id)) {
            None => Reply::Deferred { id },
            Some(response) => Reply::Response(response),
        }
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Hands a forwarded request to its pool (the primary's, or a read replica's) as the
    /// deferred answer `to`; the answer now when it cannot go.
    fn send(&mut self, forward: Box<Forward>, to: (usize, u64)) -> Option<Response> {
        let now = Instant::now();
        let to_primary = forward.replica.is_none();
        let pool = match forward.replica {
            Some(i) => {
                WorkerSlot::add(&self.slot.replica_reads, 1);
                self.replicas.upstream(i)?
            }
            None => {
                WorkerSlot::add(&self.slot.forwarded, 1);
                &mut self.upstream
            }
        };
        let step = forward.submit(to, pool, now)?;
        if to_primary {
            WorkerSlot::add(&self.slot.forward_failures, 1);
        }
        self.conclude(step, now).map(|(_, _, response)| response)
    }

    /// The position a read asks this node to have replayed (`Pg-Rest-Lsn`, read-your-writes)
    /// when this standby has not yet; None for anything else (on a primary every write is
    /// there; a malformed value is answered by [`App::respond`]).
    fn unreplayed(&self, request: &Request) -> Option<u64> {
        let lsn = parse_lsn(request.header("pg-rest-lsn")?)?;
        let read = matches!(request.method.as_str(), "GET" | "HEAD");
        (read && execute::in_recovery() && execute::replay_lsn() < lsn).then_some(lsn)
    }

    /// Holds a read until this standby has replayed to `lsn` (see [`App::replayed`]).
    fn wait(&mut self, request: &Request, lsn: u64) -> Reply {
        let id = self.next_id();
        WorkerSlot::add(&self.slot.reads_waited, 1);
        self.waiting.push(Waiting {
            conn: self.conn,
            id,
            request: request.clone(),
            lsn,
            until: Instant::now() + self.config.read_your_writes_timeout,
        });
        Reply::Deferred { id }
    }

    /// Whether reads wait for replay (the event loop then looks again within a millisecond).
    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The waiting reads this standby can now answer, answered; those whose wait ran out go
    /// to the primary (their answers come with the forwarded ones).
    fn replayed(&mut self, answers: &mut Vec<(usize, u64, Response)>) {
        if self.waiting.is_empty() {
            return;
        }
        let replayed = execute::replay_lsn();
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.lsn <= replayed || now >= w.until);
        self.waiting = waiting;
        for w in due {
            self.set_conn(w.conn);
            self.to_primary = w.lsn > replayed;
            if self.to_primary {
                WorkerSlot::add(&self.slot.reads_forwarded, 1);
            }
            let answer = self.serve(&w.request);
            self.to_primary = false;
            let response = match answer {
                Answer::Now(response) => response,
                Answer::Forwarded(forward) => match self.send(forward, (w.conn, w.id)) {
                    None => continue,
                    Some(response) => response,
                },
            };
            answers.push((w.conn, w.id, response));
        }
    }

    /// A connection closed: its realtime subscriptions and waiting reads go.
    pub fn forget_conn(&mut self, key: usize) {
        self.hub.drop_conn(key);
        self.waiting.retain(|w| w.conn != key);
    }

    /// The deferred answers ready since the last call: (connection, deferred id, response).
    /// Reads whose wait for replay is over, and forwarded requests that came back (runs that
    /// only opened their transaction are ended first, reads a replica failed are answered
    /// here); replicas' probes are noted.
    pub fn forwarded(&mut self) -> Vec<(usize, u64, Response)> {
        let mut answers = Vec::new();
        self.replayed(&mut answers);
        let now = Instant::now();
        let mut finished: Vec<_> = self
            .upstream
            .take_finished()
            .into_iter()
            .map(|f| (None, f))
            .collect();
        for (i, pool) in self.replicas.upstreams().enumerate() {
            finished.extend(pool.take_finished().into_iter().map(|f| (Some(i), f)));
        }
        for (replica, f) in finished {
            let forward = match (f.tag, replica) {
                (Work::Request(forward), _) => forward,
                (Work::Probe, Some(i)) => {
                    self.replicas.probed(i, f.result, now);
                    continue;
                }
                (Work::Probe, None) => continue,
            };
            let refused = matches!(&f.result, Err(upstream::Failure::Unavailable(_)));
            if refused && replica.is_none() {
                WorkerSlot::add(&self.slot.forward_failures, 1);
            }
            let step = Forward::step(forward, f.result, f.open);
            if let Forwarded::Answer(_, _, _, Some(lsn)) = &step {
                if replica.is_none() {
                    self.slot.primary_lsn.fetch_max(*lsn as i64, Relaxed);
                }
            }
            answers.extend(self.conclude(step, now));
        }
        self.slot
            .primary_links
            .store(self.upstream.links_open() as i64, Relaxed);
        answers
    }

    /// Where a forwarded request's step leads: its answer, now or (the end of an open
    /// transaction sent) later.
    fn conclude(&mut self, step: Forwarded, now: Instant) -> Option<(usize, u64, Response)> {
        match step {
            // Only the primary's pool runs open transactions.
            Forwarded::End(forward, link, run) => {
                match self.upstream.resume(link, run, Work::Request(forward), now) {
                    Ok(()) => None,
                    Err(Work::Request(forward)) => self.conclude(forward.lost(), now),
                    Err(Work::Probe) => None,
                }
            }
            Forwarded::Answer(conn, id, response, _) => Some((conn, id, response)),
            Forwarded::Retry(conn, id, request) => {
                self.set_conn(conn);
                self.local_only = true;
                let answer = self.serve(&request);
                self.local_only = false;
                match answer {
                    Answer::Now(response) => Some((conn, id, response)),
                    // Served here now: nothing is forwarded again.
                    Answer::Forwarded(forward) => self.conclude(forward.lost(), now),
                }
            }
        }
    }

    /// A poll event of a link to the primary or to a replica.
    pub fn upstream_ready(&mut self, token: mio::Token, registry: &mio::Registry) {
        let now = Instant::now();
        if self.upstream.owns(token) {
            self.upstream.ready(token, registry, now);
        } else if let Some(pool) = self.replicas.owner(token) {
            pool.ready(token, registry, now);
        }
    }

    /// Starts what the pools have queued.
    pub fn pump_upstreams(&mut self, registry: &mio::Registry) {
        let now = Instant::now();
        self.upstream.pump(registry, now);
        for pool in self.replicas.upstreams() {
            pool.pump(registry, now);
        }
    }

    /// The pools' deadlines (`limit`: how long a request may run on a link), and on a primary
    /// the replicas' probes.
    pub fn tick_upstreams(&mut self, registry: &mio::Registry, limit: std::time::Duration) {
        let now = Instant::now();
        self.upstream.tick(registry, now, limit);
        for pool in self.replicas.upstreams() {
            pool.tick(registry, now, limit);
        }
        if !self.replicas.is_empty() && !execute::in_recovery() {
            self.replicas.probe(execute::flushed_lsn(), now);
        }
    }

    /// The pipeline, stage by stage (the module's doc).
    fn answer(&mut self, request: &Request) -> Result<Answer, ApiError> {
        let mut timer = StageTimer::new(self.config.server_timing);
        // Authentication first, as in PostgREST: a bad token is 401 whatever the path.
        let who = auth::authenticate(
            request.header("authorization"),
            &self.auth,
            &mut self.jwt_cache,
            unix_now(),
        )?;
        timer.lap("jwt");
        let headers = || {
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
        };
        let headers_json = context::headers_json(headers());
        let cookies_json = context::cookies_json(headers());
        // The isolation level comes from the role's settings as last loaded: it must be chosen
        // before the transaction's first snapshot.
        let isolation = self
            .schema_cache
            .role_settings(&who.role)
            .map(|r| r.isolation);
        let mode = |mut tx: TxMode| {
            tx.isolation = isolation.unwrap_or(tx.isolation);
            tx
        };
        let who = (who, headers_json.as_str(), cookies_json.as_str());
        if self.config.test_faults && request.target.starts_with(TEST_FAULT_PREFIX) {
            let ctx = context(&self.defaults, request, who, mode(fault_mode(request)));
            let fault = &request.target[TEST_FAULT_PREFIX.len()..];
            return inject_fault(&ctx, &mut self.plans, fault).map(Answer::Now);
        }
        if request.method == "OPTIONS" {
            let ctx = context(&self.defaults, request, who, mode(fault_mode(request)));
            let profile = request.header("accept-profile");
            let schema = api_request::choose_schema(profile, &self.config.schemas)?;
            let resource = api_request::resource_of(&request.target)?;
            let (config, cache) = (&self.config, &mut self.schema_cache);
            timer.lap("parse");
            let mut response = execute::in_transaction(&ctx, |_| {
                read::options(cache.current(&config.schemas), &resource, schema)
            })?;
            timer.lap("response");
            if let Some(timing) = timer.header() {
                response.headers.push(("Server-Timing", timing));
            }
            return Ok(Answer::Now(response));
        }
        let mut api_request = api_request::parse_with_body(
            &request.method,
            &request.target,
            headers(),
            &request.body,
        )?;
        let schema =
            api_request::choose_schema(api_request.profile.as_deref(), &self.config.schemas)?;
        timer.lap("parse");
        let mut ctx = context(&self.defaults, request, who, mode(api_request.tx));
        ctx.search_path = self.defaults.search_path(schema);
        let local_only = self.local_only;
        let (config, cache, plans) = (&self.config, &mut self.schema_cache, &mut self.plans);
        refresh_schema_cache(config, cache, &ctx)?;
        resolve_extension(&mut api_request, cache.loaded(), schema);
        if matches!(api_request.media, MediaType::Plan(_)) && !config.plan_enabled {
            let accept = request.header("accept").unwrap_or_default();
            return Err(ApiError::media_type_unavailable(accept));
        }
        ctx.timezone = api_request.preferences.timezone.as_deref();
        let r = &api_request;
        let forwarding = execute::in_recovery;
        let to_primary = self.to_primary;
        let replicas = &mut self.replicas;
        // A replica may answer a read that its one statement answers (not `/`, not a read a
        // replica failed).
        let mut replica_for = |read: bool| {
            let routed = read && !local_only && read::is_one_statement(r);
            routed
                .then(|| replicas.route(request, config.read_replica_max_lag))
                .flatten()
        };
        let replica = replica_for(r.action == Action::Read && r.resource != Resource::Root);
        let answer = match (r.action, &r.resource) {
            (Action::Read, Resource::Root) => {
                // Nothing to plan: the stage is reported (as PostgREST does) with its ~0 time.
                timer.lap("plan");
                let host = request.header("host").unwrap_or("");
                Answer::Now(execute::in_transaction(&ctx, |ctx| {
                    read::describe_api(config, cache, plans, ctx, schema, host)
                })?)
            }
            (Action::Read, _) if (to_primary && read::is_one_statement(r)) || replica.is_some() => {
                let plan = execute::in_transaction(&ctx, |_| {
                    plan_fresh(config, cache, &mut timer, |c, limits| {
                        plan::read_plan(r, c, schema, limits)
                    })
                })?;
                let role = cache.role_settings(ctx.role);
                let location = read::content_location(&request.target);
                let mut forward = Forward::read(&ctx, role, r, plan, location);
                forward.replica = replica;
                forward.fallback = Some(request.clone());
                Answer::Forwarded(forward)
            }
            (Action::Read, _) => {
                let mut response = execute::in_transaction(&ctx, |ctx| {
                    read::read(config, cache, plans, ctx, r, schema, &mut timer)
                })?;
                response
                    .headers
                    .push(("Content-Location", read::content_location(&request.target)));
                Answer::Now(response)
            }
            (Action::Call, _) => {
                let planned = plan::call::call_plan(r, cache.loaded(), schema, &limits(config))?;
                timer.lap("plan");
                // GET, and functions that declare they do not write, run read-only.
                let read_only =
                    request.method != "POST" || planned.volatility != Volatility::Volatile;
                ctx.tx.access = if read_only {
                    Access::ReadOnly
                } else {
                    Access::ReadWrite
                };
                let replica = replica_for(read_only);
                if ((!read_only || to_primary) && forwarding()) || replica.is_some() {
                    let role = cache.role_settings(ctx.role);
                    let mut forward = Forward::call(&ctx, role, r, planned);
                    forward.replica = replica;
                    if read_only {
                        forward.fallback = Some(request.clone());
                    }
                    Answer::Forwarded(forward)
                } else {
                    let mut response = execute::in_transaction(&ctx, |ctx| {
                        call::call(plans, cache, ctx, &planned, read_only)
                    })?;
                    read::warn_legacy_names(&mut response, r, &planned.root);
                    Answer::Now(response)
                }
            }
            _ if forwarding() => {
                // Planned in a local read-only transaction (the cache may need the catalog).
                let mut local = ctx.tx;
                local.access = Access::ReadOnly;
                let planning = RequestContext { tx: local, ..ctx };
                let plan = execute::in_transaction(&planning, |_| {
                    plan_fresh(config, cache, &mut timer, |c, limits| {
                        plan::write::write_plan(r, c, schema, limits)
                    })
                })?;
                let role = cache.role_settings(ctx.role);
                Answer::Forwarded(Forward::write(&ctx, role, r, plan))
            }
            _ => Answer::Now(execute::in_transaction(&ctx, |ctx| {
                write::write(config, cache, plans, ctx, r, schema, &mut timer)
            })?),
        };
        self.slot.plans.store(self.plans.len() as i64, Relaxed);
        let applied = if api_request.preferences.resolution.is_some()
            && !write::resolution_applies(&api_request, self.schema_cache.loaded(), schema)
        {
            let mut honoured = api_request.preferences.clone();
            honoured.resolution = None;
            honoured.applied()
        } else {
            api_request.preferences.applied()
        };
        // With several schemas, PostgREST names the one that answered.
        let profile = (self.config.schemas.len() > 1).then(|| schema.to_string());
        let tail = Tail {
            applied,
            profile,
            timer,
        };
        Ok(match answer {
            Answer::Now(mut response) => {
                tail.apply(&mut response, execute::take_commit_lsn());
                Answer::Now(response)
            }
            Answer::Forwarded(mut forward) => {
                forward.tail = Some(tail);
                Answer::Forwarded(forward)
            }
        })
    }
}

/// `/books.csv` is the relation `books` in CSV unless the schema has a relation (or function)
/// named `books.csv`: a lookup in the cache, only for paths with an extension.
fn resolve_extension(request: &mut api_request::ApiRequest, cache: &SchemaCache, schema: &str) {
    request.resolve_extension(|whole| match whole {
        Resource::Relation(name) => cache.relation(schema, name).is_some(),
        Resource::Function(name) => !cache.functions(schema, name).is_empty(),
        Resource::Root => false,
    })
}

/// The trace header's name with the lifetime response headers have: leaked once per
/// distinct setting value (a handful over a server's life, one per SIGHUP that changes it).
fn trace_header_name(name: &str) -> &'static str {
    thread_local! {
        static LAST: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
    }
    LAST.with(|last| match last.get() {
        Some(n) if n == name => n,
        _ => {
            let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
            last.set(Some(leaked));
            leaked
        }
    })
}

/// Reloads a stale schema cache in a transaction of its own, before the request's: the
/// request then runs with a fresh snapshot and none of the catalog reads.
fn refresh_schema_cache(
    config: &Config,
    cache: &mut schema_cache::Holder,
    ctx: &RequestContext,
) -> Result<(), ApiError> {
    // A `NOTIFY pgrst` that arrived since the last wake-up counts for this request.
    schema_cache::absorb_notifications();
    if !cache.is_stale(&config.schemas) {
        return Ok(());
    }
    execute::in_transaction(ctx, |_| {
        cache.current(&config.schemas);
        Ok(())
    })
}

/// The request as its transaction sees it: `who` is the caller with the request's headers and
/// cookies as JSON.
fn context<'a>(
    defaults: &'a RequestDefaults,
    request: &'a Request,
    who: (&'a Authenticated, &'a str, &'a str),
    tx: TxMode,
) -> RequestContext<'a> {
    let (who, headers, cookies) = who;
    RequestContext {
        role: &who.role,
        authenticated: who.authenticated,
        claims: &who.claims,
        headers,
        cookies,
        method: &request.method,
        path: request.target.split('?').next().unwrap_or(""),
        search_path: defaults.default_search_path(),
        pre_request: defaults.pre_request.as_deref(),
        statement_timeout_ms: defaults.statement_timeout_ms,
        timezone: None,
        tx,
    }
}

/// Seconds since the Unix epoch, for the token's time claims.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The auth stage's settings. A secret that cannot be used is logged (never its value) and
/// leaves no keys: requests with a token then get 500 PGRST300, as without a secret.
fn auth_config(settings: &AuthSettings) -> AuthConfig {
    let secret = &settings.jwt_secret.0;
    let keys = if secret.is_empty() {
        None
    } else {
        match Keys::parse(secret, settings.jwt_secret_is_base64) {
            Ok(keys) => Some(keys),
            Err(why) => {
                crate::quiet_log!(
                    "pg_rest: pg_rest.jwt_secret cannot be used: {why}; requests with a token \
                     are answered 500 PGRST300"
                );
                None
            }
        }
    };
    AuthConfig {
        keys,
        audience: settings.jwt_aud.clone(),
        // The check hook accepted the path; `.role` is its default.
        role_claim: JsPath::parse(&settings.jwt_role_claim_key).unwrap_or(JsPath {
            steps: vec![Step::Key("role".into())],
        }),
        anon_role: settings.anon_role.clone(),
    }
}

/// Planning settings from the configuration.
fn limits(config: &Config) -> plan::Limits {
    plan::Limits {
        max_rows: config.max_rows,
        aggregates_enabled: config.aggregates_enabled,
    }
}

/// Plans against the cache, then starts the request's SQL (role, settings, pre_request).
fn plan_and_begin<T>(
    config: &Config,
    cache: &mut schema_cache::Holder,
    plans: &mut PlanCache,
    ctx: &RequestContext,
    timer: &mut StageTimer,
    plan: impl Fn(&SchemaCache, &plan::Limits) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let planned = plan_fresh(config, cache, timer, plan)?;
    execute::begin_request_sql(ctx, cache.role_settings(ctx.role), plans);
    Ok(planned)
}

/// Plans against the cache, in a transaction. A relation the cache does not know (perhaps
/// created while the event triggers were disabled) reloads it once and plans again.
fn plan_fresh<T>(
    config: &Config,
    cache: &mut schema_cache::Holder,
    timer: &mut StageTimer,
    plan: impl Fn(&SchemaCache, &plan::Limits) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let limits = limits(config);
    let mut planned = plan(cache.current(&config.schemas), &limits);
    if matches!(&planned, Err(e) if e.code == Code::TableNotFound)
        && cache.reload_after_miss(&config.schemas)
    {
        planned = plan(cache.current(&config.schemas), &limits);
    }
    timer.lap("plan");
    planned
}

/// The statement's `response.status` / `response.headers` applied; bad values abort the
/// request (PGRST111/PGRST112).
fn finish(mut response: Response, outcome: &Outcome) -> Result<Response, ApiError> {
    Overrides::read(outcome)?.apply(&mut response);
    Ok(response)
}
