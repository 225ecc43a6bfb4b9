//! A request's transaction as a [`pgwire`] run, for a standby that executes it on its primary
//! (docs/replicas.md): the same settings the local path gives the transaction through the C
//! API (`execute::begin_request_sql`), here as one `set_config` statement with every name and
//! value a parameter; the optional `pg_rest.pre_request` call; the request's one statement
//! with its parameters; the end the request chose (commit, or rollback for `Prefer:
//! tx=rollback`); and a WAL position at or past the commit, for `Pg-Rest-Lsn`. One round
//! trip, and the statement's row decoded into the same [`Outcome`] as a local run.

use crate::api_request::{Access, TxMode};
use crate::pgwire::{Query, Row};
use crate::preferences::TxEnd;
use crate::response::Outcome;
use crate::schema_cache::Isolation;
use crate::sql::Statement;

/// Where the request's statement is in the run: after BEGIN and the settings, and the
/// pre-request call when there is one.
fn statement_index(pre_request: bool) -> usize {
    2 + usize::from(pre_request)
}

/// The run of one request: `settings` in the order the local path sets them (search path,
/// the role's settings, time zone, role, `request.*`, statement timeout).
pub fn run(
    tx: TxMode,
    settings: &[(&str, &str)],
    pre_request: Option<&str>,
    statement: &Statement,
) -> Vec<Query> {
    let mut run = open_run(tx, settings, pre_request, statement);
    run.extend(end_run(tx));
    run
}

/// The run up to and with the statement, the transaction left open: for a request whose
/// row decides whether it commits (a singular response, `max-affected`), ended by
/// [`end_run`] in a second round trip.
pub fn open_run(
    tx: TxMode,
    settings: &[(&str, &str)],
    pre_request: Option<&str>,
    statement: &Statement,
) -> Vec<Query> {
    let mut run = Vec::with_capacity(6);
    run.push(Query::new(begin(tx), vec![]));
    run.push(set_config(settings));
    if let Some(call) = pre_request {
        run.push(Query::new(call, vec![]));
    }
    let params = statement.params.iter().cloned().map(Some).collect();
    run.push(Query::new(statement.sql.clone(), params));
    run
}

/// COMMIT or ROLLBACK (as `tx.end` says), then, for a read-write transaction, the WAL
/// position: after the COMMIT, in a transaction of its own, so the insert position is at or
/// past the commit record and a node that has replayed to it has the request's writes. (A
/// read-only run may go to a standby, where WAL positions cannot be asked for.)
pub fn end_run(tx: TxMode) -> Vec<Query> {
    let end = match tx.end {
        TxEnd::Commit => "COMMIT",
        TxEnd::Rollback => "ROLLBACK",
    };
    let mut run = vec![Query::new(end, vec![])];
    if tx.access == Access::ReadWrite {
        run.push(Query::new(
            "SELECT pg_catalog.pg_current_wal_insert_lsn()::text",
            vec![],
        ));
    }
    run
}

fn begin(tx: TxMode) -> String {
    let isolation = match tx.isolation {
        Isolation::ReadCommitted => "READ COMMITTED",
        Isolation::RepeatableRead => "REPEATABLE READ",
        Isolation::Serializable => "SERIALIZABLE",
    };
    let access = match tx.access {
        Access::ReadOnly => "READ ONLY",
        Access::ReadWrite => "READ WRITE",
    };
    format!("BEGIN ISOLATION LEVEL {isolation} {access}")
}

/// `SELECT set_config($1, $2, true), set_config($3, $4, true), …`: transaction-local, in
/// order, names and values all parameters.
fn set_config(settings: &[(&str, &str)]) -> Query {
    let mut sql = String::from("SELECT ");
    let mut params = Vec::with_capacity(settings.len() * 2);
    for (i, (name, value)) in settings.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let n = i * 2 + 1;
        sql.push_str(&format!("pg_catalog.set_config(${n}, ${}, true)", n + 1));
        params.push(Some(name.to_string()));
        params.push(Some(value.to_string()));
    }
    if settings.is_empty() {
        sql.push_str("NULL");
    }
    Query::new(sql, params)
}

/// The statement's outcome from a run's results (whole or open).
pub fn outcome(results: &[Vec<Row>], pre_request: bool) -> Result<Outcome, String> {
    let row = results
        .get(statement_index(pre_request))
        .and_then(|rows| rows.first())
        .ok_or("the forwarded statement returned no row")?;
    let column = |n: usize| row.get(n - 1).cloned().flatten();
    Outcome::from_tail(|n| int8(column(n), n), column)
}

/// The WAL position after the commit: the last statement's value of a run that ended with
/// [`end_run`].
pub fn lsn(results: &[Vec<Row>]) -> Option<u64> {
    let text = results.last()?.first()?.first()?.as_ref()?;
    crate::realtime::event::parse_lsn(std::str::from_utf8(text).ok()?)
}

/// A binary `int8` column (`n`: its position, for the error).
fn int8(value: Option<Vec<u8>>, n: usize) -> Result<Option<i64>, String> {
    value
        .map(|bytes| {
            let bytes: [u8; 8] = bytes[..]
                .try_into()
                .map_err(|_| format!("column {n} is not an int8"))?;
            Ok(i64::from_be_bytes(bytes))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(access: Access, end: TxEnd) -> TxMode {
        TxMode {
            access,
            end,
            isolation: Isolation::ReadCommitted,
        }
    }

    fn insert() -> Statement {
        Statement {
            sql: "WITH pgrst_source AS (INSERT … $1 …) SELECT …".into(),
            params: vec![r#"{"id":1}"#.into()],
        }
    }

    #[test]
    fn a_run_begins_sets_runs_ends_and_asks_for_the_position() {
        let settings = [("role", "web_user"), ("request.method", "POST")];
        let run = run(
            tx(Access::ReadWrite, TxEnd::Commit),
            &settings,
            None,
            &insert(),
        );
        let sql: Vec<&str> = run.iter().map(|q| q.sql.as_str()).collect();
        assert_eq!(
            sql,
            vec![
                "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE",
                "SELECT pg_catalog.set_config($1, $2, true), pg_catalog.set_config($3, $4, true)",
                "WITH pgrst_source AS (INSERT … $1 …) SELECT …",
                "COMMIT",
                "SELECT pg_catalog.pg_current_wal_insert_lsn()::text",
            ]
        );
        let values = |q: &Query| q.params.iter().flatten().cloned().collect::<Vec<_>>();
        assert_eq!(
            values(&run[1]),
            vec!["role", "web_user", "request.method", "POST"]
        );
        assert_eq!(values(&run[2]), vec![r#"{"id":1}"#]);
    }

    #[test]
    fn user_input_is_never_in_the_settings_text() {
        let settings = [("request.jwt.claims", r#"{"sub":"x'); DROP TABLE t; --"}"#)];
        let run = run(
            tx(Access::ReadWrite, TxEnd::Commit),
            &settings,
            None,
            &insert(),
        );
        assert!(!run[1].sql.contains("DROP"));
    }

    #[test]
    fn rollback_pre_request_and_isolation_are_honoured() {
        let mode = TxMode {
            access: Access::ReadWrite,
            end: TxEnd::Rollback,
            isolation: Isolation::Serializable,
        };
        let run = run(mode, &[], Some(r#"SELECT "api"."check"()"#), &insert());
        assert_eq!(run[0].sql, "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE");
        assert_eq!(run[1].sql, "SELECT NULL");
        assert_eq!(run[2].sql, r#"SELECT "api"."check"()"#);
        assert_eq!(run[4].sql, "ROLLBACK");
    }

    #[test]
    fn the_statements_row_decodes_like_a_local_one() {
        let row: Row = vec![
            Some(3i64.to_be_bytes().to_vec()),
            None,
            Some(br#"[{"id":1}]"#.to_vec()),
            Some(br#"[{"X-A":"b"}]"#.to_vec()),
            Some(b"201".to_vec()),
            Some(b"[1]".to_vec()),
            Some(1i64.to_be_bytes().to_vec()),
        ];
        let results = vec![
            vec![],
            vec![vec![Some(Vec::new())]],
            vec![row],
            vec![],
            vec![vec![Some(b"0/16B3748".to_vec())]],
        ];
        let (outcome, lsn) = (outcome(&results, false).unwrap(), lsn(&results));
        assert_eq!(
            outcome,
            Outcome {
                rows: 3,
                total: None,
                body: Some(br#"[{"id":1}]"#.to_vec()),
                response_headers: Some(r#"[{"X-A":"b"}]"#.into()),
                response_status: Some("201".into()),
                location: Some("[1]".into()),
                inserted: Some(1),
            }
        );
        assert_eq!(lsn, Some(0x16B3748));
    }

    #[test]
    fn a_missing_row_or_a_bad_int8_is_an_error() {
        assert!(outcome(&[vec![], vec![]], false).is_err());
        let bad: Row = vec![Some(vec![1, 2, 3])];
        let results = vec![vec![], vec![], vec![], vec![bad]];
        assert!(outcome(&results, true).unwrap_err().contains("int8"));
    }

    #[test]
    fn an_open_run_stops_at_the_statement_and_the_end_run_finishes_it() {
        let open = open_run(tx(Access::ReadWrite, TxEnd::Commit), &[], None, &insert());
        let whole = run(tx(Access::ReadWrite, TxEnd::Commit), &[], None, &insert());
        assert_eq!(open.len(), 3);
        assert_eq!(&whole[..3], &open[..]);
        assert_eq!(
            &whole[3..],
            &end_run(tx(Access::ReadWrite, TxEnd::Commit))[..]
        );
        let rolled_back = end_run(tx(Access::ReadWrite, TxEnd::Rollback));
        assert_eq!(rolled_back[0].sql, "ROLLBACK");
        assert_eq!(lsn(&[vec![vec![None]]]), None);
    }

    #[test]
    fn a_read_only_run_asks_for_no_wal_position() {
        // It may run on a standby, where pg_current_wal_insert_lsn() raises.
        let whole = run(tx(Access::ReadOnly, TxEnd::Commit), &[], None, &insert());
        assert_eq!(whole.last().map(|q| q.sql.as_str()), Some("COMMIT"));
        assert_eq!(end_run(tx(Access::ReadOnly, TxEnd::Commit)).len(), 1);
    }
}
