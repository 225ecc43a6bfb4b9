//! Realtime requests (API.md "Realtime"): the WebSocket protocol's messages, the streamed
//! HTTP endpoints (`/realtime/{schema.table}`, `/realtime/channel/{name}`), and delivering
//! what the feed brings, with one visibility query per (role, claims) group, table and batch.

use super::{limits, refresh_schema_cache, unix_now, App};
use crate::execute::{self, RequestContext};
use crate::realtime::hub::{Push, Session, Sink, Sub, Target};
use pg_rest_core::api_request::{self, Access, TxMode};
use pg_rest_core::auth::{self, Authenticated};
use pg_rest_core::error::ApiError;
use pg_rest_core::preferences::TxEnd;
use pg_rest_core::realtime::event::{parse_lsn, Event, Kind};
use pg_rest_core::realtime::{self as protocol, Events, Op, Refusal};
use pg_rest_core::request::{Reply, Request};
use pg_rest_core::response::{error_response, Response};
use pg_rest_core::schema_cache::{Isolation, QualifiedName};
use pg_rest_core::stream::Format;
use pg_rest_core::{jsonp, plan, sql, websocket};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::SystemTime;

/// Where WebSocket clients connect, and under which the streams are.
pub const PATH: &str = "/realtime";
const CHANNEL_PATH: &str = "/realtime/channel/";
/// Query parameters of a stream that are not filters.
const STREAM_PARAMS: [&str; 4] = ["events", "callback", "since", "access_token"];

/// A group's visibility statement, with the subscriptions its rows number.
pub(super) struct Check {
    members: Vec<usize>,
    stmt: sql::Statement,
    who: Authenticated,
}

/// What a subscription asks for, before it is checked.
struct Wanted<'a> {
    schema: Option<&'a str>,
    name: &'a str,
    events: Events,
    filter: &'a str,
}

impl App {
    /// Whether `request` is realtime's: the WebSocket upgrade or a stream endpoint.
    pub(super) fn is_realtime(request: &Request) -> bool {
        let path = request.path();
        path == PATH || path.starts_with("/realtime/")
    }

    pub(super) fn realtime_request(&mut self, request: &Request) -> Reply {
        let answered = if request.path() == PATH {
            self.upgrade(request)
        } else {
            self.stream_request(request)
        };
        answered.unwrap_or_else(|e| Reply::Response(error_response(&e)))
    }

    /// `GET /realtime` with an upgrade: the token (`?access_token=` or `Authorization`) is
    /// checked now, so a bad one is a 401 before any frame.
    fn upgrade(&mut self, request: &Request) -> Result<Reply, ApiError> {
        if !websocket::wants_upgrade(request) {
            return Err(ApiError::protocol(
                426,
                "GET /realtime is a WebSocket endpoint; streams are at /realtime/{schema.table}",
            ));
        }
        let who = self.authenticate(request)?;
        let response = websocket::accept(request)?;
        self.hub.sessions.insert(self.conn, Session { who });
        Ok(Reply::Upgrade(response))
    }

    fn authenticate(&mut self, request: &Request) -> Result<Authenticated, ApiError> {
        let from_query =
            query_param(request.query(), "access_token").map(|t| format!("Bearer {t}"));
        let authorization = from_query.as_deref().or(request.header("authorization"));
        self.authenticate_header(authorization)
    }

    fn authenticate_header(
        &mut self,
        authorization: Option<&str>,
    ) -> Result<Authenticated, ApiError> {
        auth::authenticate(authorization, &self.auth, &mut self.jwt_cache, unix_now()).cloned()
    }

    /// One WebSocket text message; the reply, if the op has one now (events come later).
    pub(super) fn realtime_message(&mut self, text: &str) -> Option<String> {
        let op = match protocol::parse_op(text) {
            Ok(op) => op,
            Err(refusal) => return Some(refusal.to_json()),
        };
        let conn = self.conn;
        let Some(session) = self.hub.sessions.get(&conn) else {
            return Some(protocol::error(
                None,
                "no_session",
                "not a realtime connection",
            ));
        };
        let who = session.who.clone();
        let reply = match op {
            Op::Ping => protocol::pong(),
            Op::AccessToken(token) => {
                match self.authenticate_header(Some(&format!("Bearer {token}"))) {
                    Ok(who) => match self.hub.reauthorize(conn, &who) {
                        Ok(()) => {
                            self.hub.sessions.insert(conn, Session { who });
                            protocol::done("access_token", None)
                        }
                        Err(why) => protocol::error(None, "role_changed", &why),
                    },
                    Err(e) => protocol::error(None, e.code.as_str(), &e.message),
                }
            }
            Op::Unsubscribe { id } => match self.hub.socket_sub(conn, &id) {
                Some(key) => {
                    self.hub.unsubscribe(key);
                    protocol::done("unsubscribed", Some(&id))
                }
                None => protocol::error(Some(&id), "unknown_id", "no subscription with this id"),
            },
            Op::Publish { channel, payload } => {
                match self.publish(&who, &channel, &payload.to_string()) {
                    Ok(()) => protocol::done("published", None),
                    Err(e) => protocol::error(None, e.code.as_str(), &e.message),
                }
            }
            Op::Subscribe(s) => {
                if self.hub.socket_sub(conn, &s.id).is_some() {
                    return Some(
                        Refusal::new(
                            Some(&s.id),
                            "duplicate_id",
                            "a subscription with this id exists",
                        )
                        .to_json(),
                    );
                }
                if let Some(why) = crate::realtime::unavailable() {
                    return Some(protocol::error(Some(&s.id), "unavailable", why));
                }
                let sink = Sink::Socket { id: s.id.clone() };
                let subscribed = match &s.target {
                    protocol::Target::Table {
                        schema,
                        name,
                        events,
                        filter,
                    } => self.subscribe_table(
                        who,
                        sink,
                        Wanted {
                            schema: schema.as_deref(),
                            name,
                            events: *events,
                            filter,
                        },
                        s.since,
                    ),
                    protocol::Target::Channel(c) => self.subscribe_channel(who, sink, c, s.since),
                };
                match subscribed {
                    Ok(_) => protocol::subscribed(&s.id),
                    Err(e) => protocol::error(Some(&s.id), e.code.as_str(), &e.message),
                }
            }
        };
        Some(reply)
    }

    /// `GET /realtime/{schema.table}` and `GET|POST /realtime/channel/{name}`.
    fn stream_request(&mut self, request: &Request) -> Result<Reply, ApiError> {
        let path = request.path();
        let query = request.query();
        let who = self.authenticate(request)?;
        let channel = path
            .strip_prefix(CHANNEL_PATH)
            .map(|c| api_request::decode_text(c, false));
        if request.method == "POST" {
            let Some(channel) = channel else {
                return Err(ApiError::unsupported_method("POST"));
            };
            let payload = std::str::from_utf8(&request.body)
                .ok()
                .filter(|b| serde_json::from_str::<serde_json::Value>(b).is_ok())
                .ok_or_else(|| ApiError::invalid_body("the body must be JSON"))?;
            self.publish(&who, &channel?, payload)?;
            return Ok(Reply::Response(Response {
                status: 202,
                ..Default::default()
            }));
        }
        if request.method != "GET" {
            return Err(ApiError::unsupported_method(&request.method));
        }
        if let Some(why) = crate::realtime::unavailable() {
            return Err(ApiError::protocol(503, why));
        }
        let since = match query_param(query, "since")
            .or(request.header("last-event-id").map(str::to_string))
        {
            None => None,
            Some(lsn) => Some(parse_lsn(&lsn).ok_or_else(|| {
                ApiError::parse_error("Invalid LSN", format!("not a position: {lsn}"))
            })?),
        };
        let format = match jsonp::callback(query)? {
            Some(cb) => Format::JsonpLines(cb),
            None if request
                .header("accept")
                .is_some_and(|a| a.contains("text/event-stream")) =>
            {
                Format::EventStream
            }
            None => Format::Ndjson,
        };
        let stream = self.hub.new_stream_id();
        let content_type = format.content_type();
        let sink = Sink::Stream {
            stream,
            format: format.clone(),
        };
        match channel {
            Some(channel) => self.subscribe_channel(who, sink, &channel?, since)?,
            None => {
                let resource = api_request::decode_text(&path[PATH.len() + 1..], false)?;
                let (schema, name) = protocol::split_table(&resource);
                let events = Events::parse_list(
                    query_param(query, "events")
                        .unwrap_or_default()
                        .split(',')
                        .filter(|e| !e.is_empty()),
                )
                .map_err(|m| ApiError::parse_error("Unknown event", m))?;
                let filter = filter_params(query);
                let wanted = Wanted {
                    schema: schema.as_deref(),
                    name: &name,
                    events,
                    filter: &filter,
                };
                self.subscribe_table(who, sink, wanted, since)?
            }
        };
        let mut head = Response {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                ("Cache-Control", "no-cache".into()),
                ("X-Accel-Buffering", "no".into()),
            ],
            ..Default::default()
        };
        // A first piece, so the client knows at once the stream is live.
        format.keepalive(&mut head.body);
        Ok(Reply::Stream { head, id: stream })
    }

    /// Checks a table subscription as its role, then registers it with the realtime worker.
    fn subscribe_table(
        &mut self,
        who: Authenticated,
        sink: Sink,
        w: Wanted,
        since: Option<u64>,
    ) -> Result<usize, ApiError> {
        let schema = api_request::choose_schema(w.schema, &self.config.schemas)?.to_string();
        let target = format!(
            "/{}?{}",
            percent_encoding::utf8_percent_encode(w.name, percent_encoding::NON_ALPHANUMERIC),
            w.filter
        );
        let request = api_request::parse("GET", &target, [])?;
        let ctx = context(&self.defaults, &who);
        refresh_schema_cache(&self.config, &mut self.schema_cache, &ctx)?;
        let cache = self.schema_cache.loaded();
        let planned = plan::read_plan(&request, cache, &schema, &limits(&self.config))?;
        let relation = cache.relation_or_not_found(&schema, w.name)?;
        let table = QualifiedName::new(&relation.schema, &relation.name);
        let primary_key = relation.primary_key.clone();
        let check = sql::subscribe_check_statement(&table, &planned.root);
        let plans = &mut self.plans;
        let columns = execute::in_transaction(&ctx, |ctx| {
            execute::begin_request_sql(ctx, None, plans);
            Ok(execute::run_column(plans, &check, true))
        })?;
        let columns: Vec<String> = columns.into_iter().flatten().collect();
        if columns.is_empty() {
            return Err(ApiError::from_postgres(
                "42501",
                &format!("permission denied for table {}", relation.name),
                None,
                None,
                who.authenticated,
            ));
        }
        let target = Target::Table {
            table,
            events: w.events,
            node: Box::new(planned.root),
            primary_key,
            columns,
        };
        self.add_sub(who, sink, target, since)
    }

    fn subscribe_channel(
        &mut self,
        who: Authenticated,
        sink: Sink,
        channel: &str,
        since: Option<u64>,
    ) -> Result<usize, ApiError> {
        self.channel_allowed(&who, channel, "subscribe")?;
        self.add_sub(who, sink, Target::Channel(channel.to_string()), since)
    }

    fn add_sub(
        &mut self,
        who: Authenticated,
        sink: Sink,
        target: Target,
        resume: Option<u64>,
    ) -> Result<usize, ApiError> {
        let sub = Sub {
            conn: self.conn,
            sink,
            target,
            who,
            live: false,
            token: 0,
            resume,
            after: 0,
            group: 0,
            expires: None,
            sent: 0,
            dropped: 0,
            since: SystemTime::now(),
        };
        self.hub
            .subscribe(sub)
            .map_err(|why| ApiError::protocol(503, &why))
    }

    /// `pg_rest.channel_check` (and, to publish, EXECUTE on `pg_rest.publish`) as the role.
    fn channel_allowed(
        &mut self,
        who: &Authenticated,
        channel: &str,
        action: &str,
    ) -> Result<(), ApiError> {
        let check = self.config.channel_check.clone();
        let stmt = sql::channel_check_statement(check.as_deref(), channel, action);
        let ctx = context(&self.defaults, who);
        let plans = &mut self.plans;
        let allowed = execute::in_transaction(&ctx, |ctx| {
            execute::begin_request_sql(ctx, None, plans);
            Ok(execute::run_text(plans, &stmt))
        })?;
        if allowed.as_deref() == Some("true") {
            return Ok(());
        }
        Err(ApiError::from_postgres(
            "42501",
            &format!("permission denied to {action} on channel \"{channel}\""),
            None,
            None,
            who.authenticated,
        ))
    }

    /// `pg_rest.publish(channel, payload)` in a transaction of its own, as the role: the
    /// message is delivered once it commits.
    fn publish(
        &mut self,
        who: &Authenticated,
        channel: &str,
        payload: &str,
    ) -> Result<(), ApiError> {
        self.channel_allowed(who, channel, "publish")?;
        let stmt = sql::Statement {
            sql: "SELECT pg_rest.publish($1::text, $2::jsonb)::text".into(),
            params: vec![channel.to_string(), payload.to_string()],
        };
        let mut ctx = context(&self.defaults, who);
        ctx.tx.access = Access::ReadWrite;
        let plans = &mut self.plans;
        execute::in_transaction(&ctx, |ctx| {
            execute::begin_request_sql(ctx, None, plans);
            execute::run_text(plans, &stmt);
            Ok(())
        })?;
        // A publish commits without waiting for its flush only if told so; the realtime
        // worker reads flushed WAL, so flush now and wake it.
        if let Some(lsn) = execute::take_unflushed_commit() {
            execute::flush_wal(lsn);
        }
        crate::realtime::wake_if_wanted();
        Ok(())
    }

    /// Reads the feed and delivers its events, batch by batch.
    /// A subscription goes live at its answer's place in the feed; one that resumes first
    /// gets what it missed from the ring (or an explicit gap).
    pub fn process_feed(&mut self) {
        while let Some((events, acked)) = self.hub.next_batch() {
            self.deliver_batch(&events, None);
            match acked.and_then(|a| self.hub.make_live(a.token, a.gap)) {
                Some((key, Ok(missed))) => self.deliver_batch(&missed, Some(key)),
                Some((key, Err(since))) => self.hub.push_gap(key, since),
                None => {}
            }
        }
    }

    /// Delivers one batch in commit order: channel messages as they are; row changes after
    /// one visibility query per (table, role, claims) group.
    fn deliver_batch(&mut self, events: &[Rc<Event>], only: Option<usize>) {
        let routes = self.hub.routes();
        if self.checks.0 != self.hub.generation {
            self.checks = (self.hub.generation, HashMap::new());
        }
        // (event index, subscription) pairs to deliver, and per group those still to check.
        let mut out: Vec<(usize, usize)> = Vec::new();
        let mut groups: HashMap<u32, Vec<(usize, usize)>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let listening = match e.kind {
                Kind::Message => routes.channels.get(&e.channel),
                _ => routes.tables.get(&(e.schema.clone(), e.table.clone())),
            };
            for &key in listening.into_iter().flatten() {
                if only.is_some_and(|o| o != key) || !self.hub.wants(key, e) {
                    continue;
                }
                match (e.kind, self.hub.subs.get(key)) {
                    (Kind::Message, _) => out.push((i, key)),
                    (_, Some(sub)) => groups.entry(sub.group).or_default().push((i, key)),
                    (_, None) => {}
                }
            }
        }
        for (group, pairs) in groups {
            out.extend(self.visible(events, group, &pairs));
        }
        out.sort_unstable();
        for (i, key) in out {
            self.hub.deliver(key, &events[i]);
        }
    }

    /// The visibility statement of `group` (its live subscriptions, in key order), built once
    /// per change of the subscriptions, so its text — and its kept plan — stay the same from
    /// batch to batch; its first parameter is the batch.
    fn group_check(&mut self, group: u32, member: usize) -> Option<&Check> {
        if !self.checks.1.contains_key(&group) {
            let Target::Table {
                table, primary_key, ..
            } = &self.hub.subs.get(member)?.target
            else {
                return None;
            };
            let members: Vec<usize> = self
                .hub
                .subs
                .iter()
                .filter(|(_, s)| s.live && s.group == group)
                .map(|(k, _)| k)
                .collect();
            let nodes: Vec<_> = members
                .iter()
                .filter_map(|k| match &self.hub.subs.get(*k)?.target {
                    Target::Table { node, .. } => Some(&**node),
                    Target::Channel(_) => None,
                })
                .collect();
            let stmt = sql::visibility_statement(table, primary_key, &nodes, String::new());
            let who = self.hub.subs.get(member)?.who.clone();
            self.checks.1.insert(group, Check { members, stmt, who });
        }
        self.checks.1.get(&group)
    }

    /// Which of `pairs` (event, subscription of `group`) the group may see.
    fn visible(
        &mut self,
        events: &[Rc<Event>],
        group: u32,
        pairs: &[(usize, usize)],
    ) -> Vec<(usize, usize)> {
        let mut event_ids: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        let Some(check) = self.group_check(group, pairs[0].1) else {
            return Vec::new();
        };
        let mut stmt = check.stmt.clone();
        stmt.params[0] = events_json(events, &event_ids);
        let (members, who) = (check.members.clone(), check.who.clone());
        let ctx = context(&self.defaults, &who);
        let plans = &mut self.plans;
        let rows = execute::in_transaction(&ctx, |ctx| {
            execute::begin_request_sql(ctx, None, plans);
            Ok(execute::run_column(plans, &stmt, true))
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                crate::quiet_log!(
                    "pg_rest realtime: visibility check for role \"{}\" failed: {}",
                    who.role,
                    e.message
                );
                return Vec::new();
            }
        };
        let wanted: HashSet<&(usize, usize)> = pairs.iter().collect();
        rows.into_iter()
            .flatten()
            .filter_map(|row| {
                let (ord, i) = row.split_once(' ')?;
                let e = event_ids.get(ord.parse::<usize>().ok()?.checked_sub(1)?)?;
                let key = members.get(i.parse::<usize>().ok()?)?;
                // The pair was a candidate: the subscription wants this event's type.
                wanted.contains(&(*e, *key)).then_some((*e, *key))
            })
            .collect()
    }

    /// Hands the pushes queued by the hub to the event loop.
    pub fn take_pushes(&mut self) -> Vec<(usize, usize, Push)> {
        std::mem::take(&mut self.hub.pushes)
    }
}

/// `[{"r": row, "d": true?}, …]` for the events `ids`.
fn events_json(events: &[Rc<Event>], ids: &[usize]) -> String {
    let mut out = String::from("[");
    for (n, i) in ids.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let e = &events[*i];
        out.push_str("{\"r\":");
        match e.row() {
            Some(row) => row.push_json(&mut out, None),
            None => out.push_str("null"),
        }
        if e.kind == Kind::Delete {
            out.push_str(",\"d\":true");
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// The transaction context realtime's queries run in: the subscriber's role and claims,
/// read-only, no `pre_request`.
fn context<'a>(defaults: &'a super::RequestDefaults, who: &'a Authenticated) -> RequestContext<'a> {
    RequestContext {
        role: &who.role,
        authenticated: who.authenticated,
        claims: &who.claims,
        headers: "{}",
        cookies: "{}",
        method: "GET",
        path: PATH,
        search_path: defaults.default_search_path(),
        pre_request: None,
        statement_timeout_ms: defaults.statement_timeout_ms,
        timezone: None,
        tx: TxMode {
            access: Access::ReadOnly,
            end: TxEnd::Commit,
            isolation: Isolation::ReadCommitted,
        },
    }
}

/// A query parameter's decoded value.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| api_request::decode_text(v, true).ok())?
    })
}

/// The query without a stream's own parameters: the REST filters.
fn filter_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !pair.is_empty() && !STREAM_PARAMS.contains(&key)
        })
        .collect::<Vec<_>>()
        .join("&")
}
