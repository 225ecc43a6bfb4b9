//! A PostgreSQL protocol client without I/O, for the transactions a standby forwards to its
//! primary (DESIGN.md "Read/write splitting"). The worker's mio loop moves bytes: it writes
//! [`Client::output`] to the socket (then [`Client::wrote`]) and hands what it read to
//! [`Client::received`], which answers with [`Event`]s. The messages are `postgres-protocol`'s.
//!
//! A run ([`Client::run`]) is a list of statements sent at once with the extended protocol
//! and one Sync, so a whole forwarded transaction costs one round trip. Each statement is
//! parsed unnamed with its parameters typed `text` (as the local path prepares them), its
//! results asked for in binary: a column's bytes are what its type's send function writes,
//! which is what the local path answers with. After an error the server skips to the Sync; a
//! run that leaves an explicit transaction open or failed is rolled back by the client before
//! it reports ready again, so the next run always starts outside a transaction.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

/// Statements a connection keeps prepared (named), one per SQL text; beyond, statements are
/// parsed unnamed each time. Each request shape is a few texts, as in the local plan cache.
const PREPARED_CAPACITY: usize = 256;

/// `text`: every parameter is sent and typed as text, the server casts it (as SPI does here).
const TEXT_OID: u32 = 25;
/// Binary results: the type's send function's bytes.
const BINARY: i16 = 1;

/// Who connects, to what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: String,
}

/// One statement of a run: SQL text and its text parameters (`None`: NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub sql: String,
    pub params: Vec<Option<String>>,
}

impl Query {
    pub fn new(sql: impl Into<String>, params: Vec<Option<String>>) -> Self {
        Query {
            sql: sql.into(),
            params,
        }
    }
}

/// A row: each column's binary value, `None` for NULL.
pub type Row = Vec<Option<Vec<u8>>>;

/// An error the server reported, with what PostgREST's error JSON shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// What the bytes received meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Authenticated and idle: a run may be sent.
    Ready,
    /// A run ended: every statement's rows, in order, or the first error (the transaction
    /// it was in is rolled back).
    Done(Result<Vec<Vec<Row>>, DbError>),
    /// The connection is unusable (the server refused it, or spoke nonsense): drop it.
    Broken(String),
}

#[derive(Debug)]
enum Phase {
    /// Startup sent; authentication or parameter status may follow.
    Startup,
    /// Idle, outside a transaction.
    Idle,
    /// Idle inside the transaction an open run ([`Client::run_open`]) left: only the run
    /// that ends it may follow.
    InTransaction,
    /// A run is out: its results so far; `open`: it may leave its transaction open.
    Running {
        results: Vec<Vec<Row>>,
        error: Option<DbError>,
        open: bool,
    },
    /// A run ended inside a transaction; the ROLLBACK sent for it is answered.
    RollingBack {
        outcome: Result<Vec<Vec<Row>>, DbError>,
    },
    Broken,
}

/// One connection's protocol state.
pub struct Client {
    phase: Phase,
    out: BytesMut,
    inp: BytesMut,
    user: String,
    /// Empty when none is known (a server that asks for one then refuses the login itself).
    password: String,
    scram: Option<sasl::ScramSha256>,
    /// The server's cancel key (process id, secret), for a cancel request on a timeout.
    pub cancel_key: Option<(i32, i32)>,
    prepared: Prepared,
}

/// The statements prepared on the connection, so a repeated text is bound without being
/// parsed and planned again (what `pgbench -M prepared` measures).
#[derive(Default)]
struct Prepared {
    /// SQL text → statement name.
    names: std::collections::HashMap<String, String>,
    /// Texts first parsed by the run under way: if it fails, the server may have skipped
    /// their Parse, so they are forgotten (and closed, in case it did not).
    pending: Vec<String>,
    /// Names to close at the start of the next run.
    closing: Vec<String>,
    next: u64,
}

impl Prepared {
    /// The name to bind `sql` to, and whether it must be parsed first; "" (unnamed, parsed)
    /// once the connection keeps as many as it may.
    fn name_for(&mut self, sql: &str) -> (String, bool) {
        if let Some(name) = self.names.get(sql) {
            return (name.clone(), false);
        }
        if self.names.len() >= PREPARED_CAPACITY {
            return (String::new(), true);
        }
        self.next += 1;
        let name = format!("pg_rest_{}", self.next);
        self.names.insert(sql.to_string(), name.clone());
        self.pending.push(sql.to_string());
        (name, true)
    }

    /// The run ended; `ok`: its statements' Parses all happened.
    fn settle(&mut self, ok: bool) {
        for sql in self.pending.drain(..) {
            if !ok {
                if let Some(name) = self.names.remove(&sql) {
                    self.closing.push(name);
                }
            }
        }
    }
}

impl Client {
    /// A client whose startup message is queued.
    pub fn new(params: &Params) -> Client {
        let mut out = BytesMut::with_capacity(256);
        let startup = [
            ("user", params.user.as_str()),
            ("database", params.database.as_str()),
            ("application_name", params.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        // Writing to a BytesMut fails only for a NUL in a value: the connection then breaks
        // at once instead of sending a truncated startup.
        let phase = match frontend::startup_message(startup, &mut out) {
            Ok(()) => Phase::Startup,
            Err(_) => Phase::Broken,
        };
        Client {
            phase,
            out,
            inp: BytesMut::with_capacity(8192),
            user: params.user.clone(),
            password: params.password.clone().unwrap_or_default(),
            scram: None,
            cancel_key: None,
            prepared: Prepared::default(),
        }
    }

    /// Bytes waiting to be written to the socket.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of [`Client::output`] were written.
    pub fn wrote(&mut self, n: usize) {
        let _ = self.out.split_to(n.min(self.out.len()));
    }

    /// True when idle outside a transaction: a new transaction's run may be sent.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// True when an open run left its transaction open: the run that ends it is awaited.
    pub fn in_transaction(&self) -> bool {
        matches!(self.phase, Phase::InTransaction)
    }

    pub fn is_broken(&self) -> bool {
        matches!(self.phase, Phase::Broken)
    }

    /// Queues a run that must end outside a transaction (one left open is rolled back and
    /// is the run's error); false (nothing queued) unless idle, or after an open run, or when
    /// a statement cannot be encoded (a NUL byte in its text).
    pub fn run(&mut self, queries: &[Query]) -> bool {
        self.start_run(queries, false)
    }

    /// Queues a run that may leave its transaction open (a request whose result decides
    /// between COMMIT and ROLLBACK); the next [`Client::run`] ends it. A failed transaction
    /// is still rolled back. False as for [`Client::run`].
    pub fn run_open(&mut self, queries: &[Query]) -> bool {
        self.start_run(queries, true)
    }

    fn start_run(&mut self, queries: &[Query], open: bool) -> bool {
        if !matches!(self.phase, Phase::Idle | Phase::InTransaction) {
            return false;
        }
        let start = self.out.len();
        if encode_run(queries, &mut self.prepared, &mut self.out).is_err() {
            self.out.truncate(start);
            self.prepared.settle(false);
            return false;
        }
        self.phase = Phase::Running {
            results: Vec::with_capacity(queries.len()),
            error: None,
            open,
        };
        true
    }

    /// Takes bytes read from the socket; returns what they completed.
    pub fn received(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.inp.extend_from_slice(bytes);
        let mut events = Vec::new();
        loop {
            if self.is_broken() {
                return events;
            }
            let message = match Message::parse(&mut self.inp) {
                Ok(Some(m)) => m,
                Ok(None) => return events,
                Err(e) => {
                    events.push(self.broken(format!("a malformed message from the server: {e}")));
                    return events;
                }
            };
            if let Some(event) = self.step(message) {
                events.push(event);
            }
        }
    }

    fn broken(&mut self, why: String) -> Event {
        self.phase = Phase::Broken;
        Event::Broken(why)
    }

    fn step(&mut self, message: Message) -> Option<Event> {
        match message {
            // Asynchronous messages, in any phase.
            Message::NoticeResponse(_)
            | Message::ParameterStatus(_)
            | Message::NotificationResponse(_) => None,
            Message::BackendKeyData(k) => {
                self.cancel_key = Some((k.process_id(), k.secret_key()));
                None
            }
            message => match self.phase {
                Phase::Startup => self.startup_step(message),
                Phase::Running { .. } => self.run_step(message),
                Phase::RollingBack { .. } => self.rollback_step(message),
                Phase::Idle | Phase::InTransaction | Phase::Broken => Some(self.broken(format!(
                    "an unexpected message from the server ({})",
                    tag_of(&message)
                ))),
            },
        }
    }

    fn startup_step(&mut self, message: Message) -> Option<Event> {
        let sent = match message {
            Message::AuthenticationOk => return None,
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(self.password.as_bytes(), &mut self.out)
            }
            Message::AuthenticationMd5Password(body) => {
                let password = self.password.as_bytes();
                let hash = md5_hash(self.user.as_bytes(), password, body.salt());
                frontend::password_message(hash.as_bytes(), &mut self.out)
            }
            Message::AuthenticationSasl(body) => {
                let offers_scram = body
                    .mechanisms()
                    .any(|m| Ok(m == sasl::SCRAM_SHA_256))
                    .unwrap_or(false);
                if !offers_scram {
                    return Some(self.broken(
                        "the server asks for a SASL mechanism other than SCRAM-SHA-256".into(),
                    ));
                }
                let scram = sasl::ScramSha256::new(
                    self.password.as_bytes(),
                    sasl::ChannelBinding::unsupported(),
                );
                let sent = frontend::sasl_initial_response(
                    sasl::SCRAM_SHA_256,
                    scram.message(),
                    &mut self.out,
                );
                self.scram = Some(scram);
                sent
            }
            Message::AuthenticationSaslContinue(body) => match self.scram.as_mut() {
                Some(scram) => match scram.update(body.data()) {
                    Ok(()) => frontend::sasl_response(scram.message(), &mut self.out),
                    Err(e) => return Some(self.broken(format!("SCRAM authentication: {e}"))),
                },
                None => return Some(self.broken("SASL continue without a SASL start".into())),
            },
            Message::AuthenticationSaslFinal(body) => {
                let verified = self.scram.take().map(|mut s| s.finish(body.data()));
                return match verified {
                    Some(Ok(())) => None,
                    Some(Err(e)) => Some(self.broken(format!("SCRAM authentication: {e}"))),
                    None => Some(self.broken("SASL final without a SASL start".into())),
                };
            }
            Message::ReadyForQuery(_) => {
                self.phase = Phase::Idle;
                return Some(Event::Ready);
            }
            Message::ErrorResponse(body) => {
                let e = db_error(&body);
                return Some(self.broken(format!("{} ({})", e.message, e.code)));
            }
            other => {
                return Some(self.broken(format!(
                    "the server asks for an authentication pg_rest does not speak ({})",
                    tag_of(&other)
                )))
            }
        };
        match sent {
            Ok(()) => None,
            Err(e) => Some(self.broken(format!("cannot encode the password message: {e}"))),
        }
    }

    fn run_step(&mut self, message: Message) -> Option<Event> {
        let Phase::Running {
            results,
            error,
            open,
        } = &mut self.phase
        else {
            return None;
        };
        match message {
            Message::ParseComplete | Message::BindComplete | Message::CloseComplete => {}
            // Each statement is described: a row description or none, then its rows.
            Message::RowDescription(_) | Message::NoData => results.push(Vec::new()),
            Message::DataRow(body) => {
                let row = match data_row(&body) {
                    Ok(row) => row,
                    Err(e) => return Some(self.broken(format!("a malformed data row: {e}"))),
                };
                match results.last_mut() {
                    Some(rows) => rows.push(row),
                    None => return Some(self.broken("a data row without a description".into())),
                }
            }
            Message::CommandComplete(_) | Message::EmptyQueryResponse => {}
            // After an error the server skips to the Sync: the first error is the run's.
            Message::ErrorResponse(body) => {
                if error.is_none() {
                    *error = Some(db_error(&body));
                }
            }
            Message::ReadyForQuery(body) => {
                let open = *open;
                self.prepared.settle(error.is_none());
                let outcome = match error.take() {
                    Some(e) => Err(e),
                    None => Ok(std::mem::take(results)),
                };
                return self.run_ended(body.status(), outcome, open);
            }
            other => {
                return Some(self.broken(format!(
                    "an unexpected message in a run ({})",
                    tag_of(&other)
                )))
            }
        }
        None
    }

    /// A run's ReadyForQuery: idle ('I') ends it, as does an open transaction ('T') after an
    /// open run; otherwise a transaction left open ('T') or failed ('E') is rolled back first,
    /// so a new transaction's run always starts outside one.
    fn run_ended(
        &mut self,
        status: u8,
        outcome: Result<Vec<Vec<Row>>, DbError>,
        open: bool,
    ) -> Option<Event> {
        match status {
            b'I' => {
                self.phase = Phase::Idle;
                Some(Event::Done(outcome))
            }
            b'T' if open && outcome.is_ok() => {
                self.phase = Phase::InTransaction;
                Some(Event::Done(outcome))
            }
            b'T' | b'E' => {
                if frontend::query("ROLLBACK", &mut self.out).is_err() {
                    return Some(self.broken("cannot encode ROLLBACK".into()));
                }
                let outcome = outcome.and(Err(DbError {
                    code: "25000".into(),
                    message: "a forwarded transaction was left open; it was rolled back".into(),
                    ..Default::default()
                }));
                self.phase = Phase::RollingBack { outcome };
                None
            }
            _ => Some(self.broken("an unknown transaction status".into())),
        }
    }

    fn rollback_step(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::ReadyForQuery(body) if body.status() == b'I' => {
                let Phase::RollingBack { outcome } =
                    std::mem::replace(&mut self.phase, Phase::Idle)
                else {
                    return None;
                };
                Some(Event::Done(outcome))
            }
            Message::ReadyForQuery(_) => Some(self.broken("ROLLBACK left a transaction".into())),
            _ => None,
        }
    }
}

/// Close for statements a failed run may have left, then for each query: Parse (unless its
/// text is prepared already), Bind, Describe (so a statement's rows can be told from the next
/// one's) and Execute; then one Sync.
fn encode_run(
    queries: &[Query],
    prepared: &mut Prepared,
    out: &mut BytesMut,
) -> std::io::Result<()> {
    for name in prepared.closing.drain(..) {
        frontend::close(b'S', &name, out)?;
    }
    for q in queries {
        let (name, parse) = prepared.name_for(&q.sql);
        if parse {
            let types = std::iter::repeat_n(TEXT_OID, q.params.len());
            frontend::parse(&name, &q.sql, types, out)?;
        }
        let bound = frontend::bind(
            "",
            &name,
            std::iter::empty(),
            q.params.iter(),
            |value, buf| match value {
                Some(v) => {
                    buf.extend_from_slice(v.as_bytes());
                    Ok(IsNull::No)
                }
                None => Ok(IsNull::Yes),
            },
            std::iter::once(BINARY),
            out,
        );
        bound.map_err(|_| std::io::Error::other("cannot encode a parameter"))?;
        frontend::describe(b'P', "", out)?;
        frontend::execute("", 0, out)?;
    }
    frontend::sync(out);
    Ok(())
}

fn data_row(body: &postgres_protocol::message::backend::DataRowBody) -> std::io::Result<Row> {
    let buffer = body.buffer();
    body.ranges()
        .map(|r| Ok(r.map(|r| buffer[r].to_vec())))
        .collect()
}

fn db_error(body: &ErrorResponseBody) -> DbError {
    let mut e = DbError::default();
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
    }
    e
}

/// A message's name, for a log line.
fn tag_of(message: &Message) -> &'static str {
    match message {
        Message::AuthenticationGss | Message::AuthenticationGssContinue(_) => "GSSAPI",
        Message::AuthenticationSspi => "SSPI",
        Message::AuthenticationKerberosV5 => "Kerberos",
        Message::AuthenticationScmCredential => "SCM credential",
        Message::CopyInResponse(_) | Message::CopyOutResponse(_) | Message::CopyData(_) => "COPY",
        Message::DataRow(_) => "DataRow",
        Message::ReadyForQuery(_) => "ReadyForQuery",
        _ => "another message",
    }
}

#[cfg(test)]
mod tests;
