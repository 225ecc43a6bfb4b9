//! Reads a primary sends to its streaming replicas (`pg_rest.read_replicas`, docs/replicas.md),
//! for clients that can only reach the primary. Each replica is a pool of links
//! (`transport::upstream`) and a probe: every tick the worker asks each replica how far it has
//! replayed (`pg_last_wal_replay_lsn()`), and compares that with what the primary had flushed
//! when it asked. A read goes to the next replica, in turn, that answered its last probe within
//! [`PROBE_FRESH`], is reachable, is at most `pg_rest.read_replica_max_lag` behind, and has
//! replayed the client's `Pg-Rest-Lsn` if it sent one; with none such it is served here.

use super::forward::Forward;
use crate::transport::upstream::{Failure, Target, Upstream};
use crate::worker::config::Config;
use mio::{Registry, Token};
use pg_rest_core::conninfo::Conninfo;
use pg_rest_core::pgwire::{Query, Row};
use pg_rest_core::realtime::event::parse_lsn;
use pg_rest_core::request::Request;
use std::time::{Duration, Instant};

/// A replica whose last probe answer is older than this gets no reads (it may be cut off).
const PROBE_FRESH: Duration = Duration::from_secs(1);

/// What a link runs: a client's request, or a replica's probe.
pub(crate) enum Work {
    Request(Box<Forward>),
    Probe,
}

struct Replica {
    upstream: Upstream<Work>,
    /// The connection string it was made from (a reload that keeps it keeps the replica).
    conninfo: String,
    /// Its replay position at the last probe answer, and how far behind the primary's flushed
    /// position it then was (None: no answer yet, or not a standby).
    replayed: Option<u64>,
    behind: u64,
    answered: Option<Instant>,
    /// The probe out, with the primary's flushed position when it was sent.
    probing: Option<u64>,
}

/// The primary's read replicas.
#[derive(Default)]
pub(super) struct Replicas {
    list: Vec<Replica>,
    /// Where the round-robin resumes.
    next: usize,
}

impl Replicas {
    /// The replicas the settings name (pool `1 + i` each: pool 0 is the primary's).
    pub fn new(config: &Config) -> Replicas {
        Replicas {
            list: config
                .read_replicas
                .iter()
                .enumerate()
                .map(|(i, c)| Replica::new(i, c, config))
                .collect(),
            next: 0,
        }
    }

    /// After a reload: replicas whose string is unchanged are kept, the rest closed.
    pub fn reload(&mut self, config: &Config, registry: &Registry) {
        let old = std::mem::take(&mut self.list);
        let mut kept: Vec<Option<Replica>> = old.into_iter().map(Some).collect();
        for (i, conninfo) in config.read_replicas.iter().enumerate() {
            let same = kept
                .iter_mut()
                .position(|r| r.as_ref().is_some_and(|r| &r.conninfo == conninfo));
            let replica = match same.and_then(|at| kept[at].take()) {
                Some(mut r) if r.upstream.index() == i + 1 => {
                    r.upstream.retarget(target(conninfo, config), registry);
                    r
                }
                Some(mut r) => {
                    r.upstream.close_all(registry);
                    Replica::new(i, conninfo, config)
                }
                None => Replica::new(i, conninfo, config),
            };
            self.list.push(replica);
        }
        for mut gone in kept.into_iter().flatten() {
            gone.upstream.close_all(registry);
        }
        self.next = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The replica a read goes to, if one may take it (on a primary only: a standby serves
    /// its reads itself).
    pub fn route(&mut self, request: &Request, max_lag: u64) -> Option<usize> {
        if self.list.is_empty() || crate::execute::in_recovery() {
            return None;
        }
        let needed = request.header("pg-rest-lsn").and_then(parse_lsn);
        self.pick(needed, max_lag, Instant::now())
    }

    /// The replica the next read goes to, if one may take it: `needed`, the position the
    /// client asked for (`Pg-Rest-Lsn`).
    fn pick(&mut self, needed: Option<u64>, max_lag: u64, now: Instant) -> Option<usize> {
        let n = self.list.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.list[i].takes(needed, max_lag, now) {
                self.next = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// Replica `i`'s pool.
    pub fn upstream(&mut self, i: usize) -> Option<&mut Upstream<Work>> {
        self.list.get_mut(i).map(|r| &mut r.upstream)
    }

    /// Every replica's pool.
    pub fn upstreams(&mut self) -> impl Iterator<Item = &mut Upstream<Work>> {
        self.list.iter_mut().map(|r| &mut r.upstream)
    }

    /// The pool a token belongs to.
    pub fn owner(&mut self, token: Token) -> Option<&mut Upstream<Work>> {
        self.upstreams().find(|u| u.owns(token))
    }

    /// Sends a probe to each replica without one out (the tick's part).
    pub fn probe(&mut self, primary_flushed: u64, now: Instant) {
        for r in &mut self.list {
            if r.probing.is_none() && r.upstream.unavailable(now).is_none() {
                let run = vec![Query::new(
                    "SELECT pg_catalog.pg_last_wal_replay_lsn()::text",
                    vec![],
                )];
                r.upstream.submit(run, false, Work::Probe, now);
                r.probing = Some(primary_flushed);
            }
        }
    }

    /// Replica `i`'s probe came back.
    pub fn probed(&mut self, i: usize, result: Result<Vec<Vec<Row>>, Failure>, now: Instant) {
        let Some(r) = self.list.get_mut(i) else {
            return;
        };
        let sent_at = r.probing.take().unwrap_or(0);
        let replayed = result.ok().and_then(|rows| {
            let text = rows.first()?.first()?.first()?.clone()?;
            parse_lsn(std::str::from_utf8(&text).ok()?)
        });
        // NULL: the server is no standby (promoted, or misnamed); it gets no reads.
        r.replayed = replayed;
        r.behind = replayed.map_or(u64::MAX, |lsn| sent_at.saturating_sub(lsn));
        r.answered = replayed.map(|_| now);
    }
}

impl Replica {
    fn new(i: usize, conninfo: &str, config: &Config) -> Replica {
        Replica {
            upstream: Upstream::new(i + 1, target(conninfo, config)),
            conninfo: conninfo.to_string(),
            replayed: None,
            behind: u64::MAX,
            answered: None,
            probing: None,
        }
    }

    fn takes(&self, needed: Option<u64>, max_lag: u64, now: Instant) -> bool {
        let fresh = self
            .answered
            .is_some_and(|t| now.duration_since(t) < PROBE_FRESH);
        let has_needed = match (needed, self.replayed) {
            (Some(needed), Some(replayed)) => replayed >= needed,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        fresh && has_needed && self.behind <= max_lag && self.upstream.unavailable(now).is_none()
    }
}

/// A replica's target: its connection string, with pg_rest's database and authenticator
/// where it names none.
fn target(conninfo: &str, config: &Config) -> Result<Target, String> {
    let mut info = Conninfo::parse(conninfo)?;
    if info.get("dbname").is_none() {
        info.set("dbname", &config.database);
    }
    if info.get("user").is_none() && !config.authenticator.is_empty() {
        info.set("user", &config.authenticator);
    }
    let pgpass = super::forward::pgpass(&info);
    Target::from_conninfo(&info, pgpass.as_deref())
}
