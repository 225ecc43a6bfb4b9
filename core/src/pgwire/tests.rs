use super::*;

/// A backend message: tag, length, body.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn auth(code: i32, rest: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(rest);
    msg(b'R', &body)
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn row_description(columns: usize) -> Vec<u8> {
    let mut body = (columns as i16).to_be_bytes().to_vec();
    for i in 0..columns {
        body.extend_from_slice(format!("c{i}\0").as_bytes());
        body.extend_from_slice(&0i32.to_be_bytes()); // table
        body.extend_from_slice(&0i16.to_be_bytes()); // column
        body.extend_from_slice(&25i32.to_be_bytes()); // type
        body.extend_from_slice(&(-1i16).to_be_bytes()); // size
        body.extend_from_slice(&(-1i32).to_be_bytes()); // modifier
        body.extend_from_slice(&1i16.to_be_bytes()); // format
    }
    msg(b'T', &body)
}

fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut body = (values.len() as i16).to_be_bytes().to_vec();
    for v in values {
        match v {
            Some(v) => {
                body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                body.extend_from_slice(v);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &body)
}

fn error(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in fields {
        body.push(*t);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    msg(b'E', &body)
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', format!("{tag}\0").as_bytes())
}

/// A statement without rows answered: ParseComplete, BindComplete, NoData, CommandComplete.
fn no_rows(tag: &str) -> Vec<u8> {
    [
        msg(b'1', &[]),
        msg(b'2', &[]),
        msg(b'n', &[]),
        complete(tag),
    ]
    .concat()
}

/// The tags of the frontend messages in `out` (after the startup message, which has none).
fn tags(out: &[u8]) -> Vec<u8> {
    let mut tags = Vec::new();
    let mut rest = out;
    while rest.len() >= 5 {
        let len = i32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        tags.push(rest[0]);
        rest = &rest[1 + len..];
    }
    tags
}

fn params() -> Params {
    Params {
        user: "authenticator".into(),
        password: Some("secret".into()),
        database: "app".into(),
        application_name: "pg_rest forward".into(),
    }
}

/// Takes what the client has queued, as a socket write would.
fn drain(c: &mut Client) -> Vec<u8> {
    let out = c.output().to_vec();
    c.wrote(out.len());
    out
}

/// A client past a trust startup, its output taken.
fn ready_client() -> Client {
    let mut c = Client::new(&params());
    drain(&mut c);
    let events = c.received(&[auth(0, &[]), ready(b'I')].concat());
    assert_eq!(events, vec![Event::Ready]);
    c
}

#[test]
fn the_startup_message_names_user_database_and_application() {
    let c = Client::new(&params());
    let out = c.output();
    let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
    assert_eq!(len, out.len());
    assert_eq!(&out[4..8], &196608i32.to_be_bytes(), "protocol 3.0");
    let text = String::from_utf8_lossy(&out[8..]);
    for part in [
        "user\0authenticator\0",
        "database\0app\0",
        "application_name\0pg_rest forward\0",
    ] {
        assert!(text.contains(part), "{part:?} in {text:?}");
    }
    assert!(!c.is_idle());
}

#[test]
fn trust_startup_is_ready_and_keeps_the_cancel_key() {
    let mut c = Client::new(&params());
    let mut key = 4242i32.to_be_bytes().to_vec();
    key.extend_from_slice(&7i32.to_be_bytes());
    let status = msg(b'S', b"server_version\x0015.20\x00");
    let bytes = [auth(0, &[]), status, msg(b'K', &key), ready(b'I')].concat();
    assert_eq!(c.received(&bytes), vec![Event::Ready]);
    assert!(c.is_idle());
    assert_eq!(c.cancel_key, Some((4242, 7)));
}

#[test]
fn md5_authentication_answers_the_salted_hash() {
    let mut c = Client::new(&params());
    drain(&mut c);
    assert!(c.received(&auth(5, &[1, 2, 3, 4])).is_empty());
    let out = c.output().to_vec();
    assert_eq!(tags(&out), vec![b'p']);
    let expected = md5_hash(b"authenticator", b"secret", [1, 2, 3, 4]);
    assert!(expected.starts_with("md5"));
    assert_eq!(&out[5..out.len() - 1], expected.as_bytes());
    assert_eq!(out[out.len() - 1], 0);
}

#[test]
fn cleartext_authentication_sends_the_password() {
    let mut c = Client::new(&params());
    drain(&mut c);
    assert!(c.received(&auth(3, &[])).is_empty());
    assert_eq!(c.output(), &msg(b'p', b"secret\0")[..]);
}

#[test]
fn scram_starts_with_a_client_first_message() {
    let mut c = Client::new(&params());
    drain(&mut c);
    assert!(c.received(&auth(10, b"SCRAM-SHA-256\0\0")).is_empty());
    let out = c.output().to_vec();
    assert_eq!(tags(&out), vec![b'p']);
    let text = String::from_utf8_lossy(&out[5..]);
    assert!(text.starts_with("SCRAM-SHA-256\0"), "{text:?}");
    assert!(
        text.contains("n,,n=,r="),
        "a GS2 header without channel binding: {text:?}"
    );
}

#[test]
fn a_sasl_server_without_scram_sha_256_breaks_the_connection() {
    let mut c = Client::new(&params());
    let events = c.received(&auth(10, b"SCRAM-SHA-256-PLUS\0\0"));
    assert!(matches!(&events[..], [Event::Broken(why)] if why.contains("SCRAM-SHA-256")));
    assert!(c.is_broken());
}

#[test]
fn gss_authentication_is_refused_by_name() {
    let mut c = Client::new(&params());
    let events = c.received(&auth(7, &[]));
    assert!(matches!(&events[..], [Event::Broken(why)] if why.contains("GSSAPI")));
}

#[test]
fn a_refused_login_breaks_with_the_servers_words() {
    let mut c = Client::new(&params());
    let refusal = error(&[
        (b'S', "FATAL"),
        (b'C', "28P01"),
        (
            b'M',
            "password authentication failed for user \"authenticator\"",
        ),
    ]);
    let events = c.received(&refusal);
    assert!(
        matches!(&events[..], [Event::Broken(why)] if why.contains("password authentication failed") && why.contains("28P01")),
        "{events:?}"
    );
}

#[test]
fn a_run_is_parse_bind_describe_execute_per_statement_then_one_sync() {
    let mut c = ready_client();
    let run = [
        Query::new("BEGIN", vec![]),
        Query::new("SELECT $1, $2", vec![Some("a".into()), None]),
        Query::new("COMMIT", vec![]),
    ];
    assert!(c.run(&run));
    let out = c.output().to_vec();
    assert_eq!(tags(&out), b"PBDEPBDEPBDES".to_vec());
    // The second Parse types both parameters text (oid 25).
    let parse = out.windows(13).any(|w| w == b"SELECT $1, $2");
    assert!(parse);
    let text_twice = [
        &2i16.to_be_bytes()[..],
        &25u32.to_be_bytes(),
        &25u32.to_be_bytes(),
    ]
    .concat();
    assert!(out.windows(text_twice.len()).any(|w| w == text_twice));
    // Its Bind sends "a" and a NULL (-1), and asks for binary results.
    let bound = [
        &1i32.to_be_bytes()[..],
        b"a",
        &(-1i32).to_be_bytes(),
        &1i16.to_be_bytes(),
        &1i16.to_be_bytes(),
    ]
    .concat();
    assert!(
        out.windows(bound.len()).any(|w| w == bound),
        "Bind values and result format"
    );
    assert!(!c.run(&run), "one run at a time");
}

/// A statement's answer when it was bound to a prepared statement: no ParseComplete.
fn no_rows_prepared(tag: &str) -> Vec<u8> {
    [msg(b'2', &[]), msg(b'n', &[]), complete(tag)].concat()
}

#[test]
fn a_repeated_statement_is_bound_by_name_without_a_parse() {
    let mut c = ready_client();
    let run = [Query::new("UPDATE t SET a = $1", vec![Some("1".into())])];
    assert!(c.run(&run));
    let first = drain(&mut c);
    assert_eq!(tags(&first), b"PBDES");
    assert!(
        first.windows(10).any(|w| w == b"pg_rest_1\0"),
        "a named Parse"
    );
    c.received(&[no_rows("UPDATE 1"), ready(b'I')].concat());
    assert!(c.run(&run));
    let second = drain(&mut c);
    assert_eq!(tags(&second), b"BDES", "bound to the prepared statement");
    assert!(second.windows(10).any(|w| w == b"pg_rest_1\0"));
    let events = c.received(&[no_rows_prepared("UPDATE 1"), ready(b'I')].concat());
    assert_eq!(events, vec![Event::Done(Ok(vec![vec![]]))]);
}

#[test]
fn statements_first_parsed_by_a_failed_run_are_closed_and_parsed_again() {
    let mut c = ready_client();
    let run = [
        Query::new("SELECT 1", vec![]),
        Query::new("SELEC 2", vec![]),
    ];
    assert!(c.run(&run));
    drain(&mut c);
    // The first statement ran, the second's Parse failed: the server skipped to the Sync.
    let reply = [no_rows("SELECT 1"), error(&[(b'C', "42601")]), ready(b'I')].concat();
    assert!(matches!(&c.received(&reply)[..], [Event::Done(Err(_))]));
    assert!(c.run(&run));
    let again = drain(&mut c);
    assert_eq!(
        tags(&again),
        b"CCPBDEPBDES",
        "both closed, both parsed again"
    );
}

#[test]
fn a_run_answers_every_statements_rows_in_order() {
    let mut c = ready_client();
    let run = [
        Query::new("BEGIN", vec![]),
        Query::new("SELECT x", vec![]),
        Query::new("COMMIT", vec![]),
    ];
    assert!(c.run(&run));
    let reply = [
        no_rows("BEGIN"),
        msg(b'1', &[]),
        msg(b'2', &[]),
        row_description(2),
        data_row(&[Some(b"one"), None]),
        data_row(&[Some(b""), Some(b"\x00\x01")]),
        complete("SELECT 2"),
        no_rows("COMMIT"),
        ready(b'I'),
    ]
    .concat();
    // Byte by byte: a message may come in any number of reads.
    let mut events = Vec::new();
    for b in &reply {
        events.extend(c.received(std::slice::from_ref(b)));
    }
    let rows: Vec<Row> = vec![
        vec![Some(b"one".to_vec()), None],
        vec![Some(Vec::new()), Some(vec![0, 1])],
    ];
    assert_eq!(events, vec![Event::Done(Ok(vec![vec![], rows, vec![]]))]);
    assert!(c.is_idle());
}

#[test]
fn an_error_ends_the_run_with_the_servers_fields_and_rolls_back() {
    let mut c = ready_client();
    assert!(c.run(&[
        Query::new("BEGIN", vec![]),
        Query::new("INSERT", vec![]),
        Query::new("COMMIT", vec![])
    ]));
    drain(&mut c);
    let violation = error(&[
        (b'S', "ERROR"),
        (b'C', "23505"),
        (
            b'M',
            "duplicate key value violates unique constraint \"t_pkey\"",
        ),
        (b'D', "Key (id)=(1) already exists."),
        (b'H', "a hint"),
    ]);
    let reply = [
        no_rows("BEGIN"),
        msg(b'1', &[]),
        msg(b'2', &[]),
        msg(b'n', &[]),
        violation,
        ready(b'E'),
    ]
    .concat();
    assert!(
        c.received(&reply).is_empty(),
        "not done before the rollback is answered"
    );
    assert_eq!(c.output(), &msg(b'Q', b"ROLLBACK\0")[..]);
    assert!(!c.is_idle());
    let events = c.received(&[complete("ROLLBACK"), ready(b'I')].concat());
    let expected = DbError {
        code: "23505".into(),
        message: "duplicate key value violates unique constraint \"t_pkey\"".into(),
        detail: Some("Key (id)=(1) already exists.".into()),
        hint: Some("a hint".into()),
    };
    assert_eq!(events, vec![Event::Done(Err(expected))]);
    assert!(c.is_idle());
}

#[test]
fn a_run_that_leaves_its_transaction_open_is_rolled_back_and_an_error() {
    let mut c = ready_client();
    assert!(c.run(&[Query::new("BEGIN", vec![])]));
    let events = c.received(&[no_rows("BEGIN"), ready(b'T')].concat());
    assert!(events.is_empty());
    let events = c.received(&[complete("ROLLBACK"), ready(b'I')].concat());
    assert!(
        matches!(&events[..], [Event::Done(Err(e))] if e.code == "25000"),
        "{events:?}"
    );
}

#[test]
fn an_open_run_keeps_its_transaction_for_the_run_that_ends_it() {
    let mut c = ready_client();
    assert!(c.run_open(&[Query::new("BEGIN", vec![])]));
    let events = c.received(&[no_rows("BEGIN"), ready(b'T')].concat());
    assert_eq!(events, vec![Event::Done(Ok(vec![vec![]]))]);
    assert!(c.in_transaction() && !c.is_idle());
    drain(&mut c);
    assert!(c.run(&[Query::new("COMMIT", vec![])]));
    assert_eq!(tags(&drain(&mut c)), b"PBDES");
    let events = c.received(&[no_rows("COMMIT"), ready(b'I')].concat());
    assert_eq!(events, vec![Event::Done(Ok(vec![vec![]]))]);
    assert!(c.is_idle());
}

#[test]
fn an_open_run_that_fails_is_still_rolled_back() {
    let mut c = ready_client();
    assert!(c.run_open(&[Query::new("BEGIN", vec![]), Query::new("x", vec![])]));
    drain(&mut c);
    let reply = [no_rows("BEGIN"), error(&[(b'C', "42601")]), ready(b'E')].concat();
    assert!(c.received(&reply).is_empty());
    assert_eq!(tags(&drain(&mut c)), b"Q");
    let events = c.received(&[complete("ROLLBACK"), ready(b'I')].concat());
    assert!(
        matches!(&events[..], [Event::Done(Err(e))] if e.code == "42601"),
        "{events:?}"
    );
}

#[test]
fn an_implicit_transactions_commit_failure_is_the_runs_error() {
    // A deferred constraint fails at the Sync's commit: after the last CommandComplete.
    let mut c = ready_client();
    assert!(c.run(&[Query::new("INSERT", vec![])]));
    let reply = [
        no_rows("INSERT 0 1"),
        error(&[(b'C', "23503"), (b'M', "violates foreign key")]),
        ready(b'I'),
    ]
    .concat();
    let events = c.received(&reply);
    assert!(
        matches!(&events[..], [Event::Done(Err(e))] if e.code == "23503"),
        "{events:?}"
    );
}

#[test]
fn notices_and_notifications_are_ignored_anywhere() {
    let mut c = ready_client();
    let notice = msg(b'N', b"SNOTICE\0Mhello\0\0");
    assert!(c.received(&notice).is_empty());
    assert!(c.is_idle());
}

#[test]
fn a_message_while_idle_or_garbage_breaks_the_connection() {
    let mut c = ready_client();
    assert!(matches!(
        &c.received(&data_row(&[]))[..],
        [Event::Broken(_)]
    ));
    let mut c = ready_client();
    // A length below 4 is no message.
    assert!(matches!(
        &c.received(&[b'Z', 0, 0, 0, 1])[..],
        [Event::Broken(_)]
    ));
    assert!(!c.run(&[Query::new("SELECT 1", vec![])]));
}

#[test]
fn a_nul_in_a_statement_queues_nothing() {
    let mut c = ready_client();
    assert!(!c.run(&[Query::new("SELECT '\0'", vec![])]));
    assert!(c.output().is_empty());
    assert!(c.is_idle());
}

/// The server side of SCRAM-SHA-256 (RFC 5802/7677), enough to check the client's proof.
mod scram_server {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// PBKDF2-HMAC-SHA256 of one block: SCRAM's Hi().
    fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut u = hmac(password, &[salt, &1u32.to_be_bytes()].concat());
        let mut out = u.clone();
        for _ in 1..iterations {
            u = hmac(password, &u);
            out.iter_mut().zip(&u).for_each(|(o, b)| *o ^= b);
        }
        out
    }

    pub struct Server {
        pub client_first_bare: String,
        pub server_first: String,
        salted: Vec<u8>,
    }

    impl Server {
        /// Answers the client-first message (`n,,n=,r=<nonce>`).
        pub fn first(client_first: &str, password: &str) -> Server {
            let bare = client_first
                .strip_prefix("n,,")
                .expect("no channel binding")
                .to_string();
            let nonce = bare.split("r=").nth(1).expect("a nonce");
            let salt = b"pg_rest salt";
            let server_first = format!("r={nonce}server,s={},i=4096", B64.encode(salt));
            Server {
                client_first_bare: bare,
                server_first,
                salted: hi(password.as_bytes(), salt, 4096),
            }
        }

        /// Checks the client-final message's proof; returns the server-final message.
        pub fn last(&self, client_final: &str) -> Result<String, String> {
            let (without_proof, proof) = client_final.split_once(",p=").ok_or("no proof")?;
            let auth = format!(
                "{},{},{without_proof}",
                self.client_first_bare, self.server_first
            );
            let client_key = hmac(&self.salted, b"Client Key");
            let stored = Sha256::digest(&client_key);
            let signature = hmac(&stored, auth.as_bytes());
            let proof = B64.decode(proof).map_err(|e| e.to_string())?;
            let recovered: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
            if Sha256::digest(&recovered)[..] != stored[..] {
                return Err("wrong password".into());
            }
            let server_key = hmac(&self.salted, b"Server Key");
            Ok(format!(
                "v={}",
                B64.encode(hmac(&server_key, auth.as_bytes()))
            ))
        }
    }
}

/// The client's SASL message body after the mechanism name (initial) or whole (response).
fn sasl_payload(out: &[u8], initial: bool) -> String {
    let body = &out[5..];
    if !initial {
        return String::from_utf8(body.to_vec()).unwrap();
    }
    let after_name = body.iter().position(|&b| b == 0).unwrap() + 1;
    String::from_utf8(body[after_name + 4..].to_vec()).unwrap()
}

fn scram_exchange(client_password: &str, tamper_final: bool) -> Vec<Event> {
    let mut c = Client::new(&Params {
        password: Some(client_password.into()),
        ..params()
    });
    drain(&mut c);
    assert!(c.received(&auth(10, b"SCRAM-SHA-256\0\0")).is_empty());
    let server = scram_server::Server::first(&sasl_payload(c.output(), true), "secret");
    drain(&mut c);
    assert!(c
        .received(&auth(11, server.server_first.as_bytes()))
        .is_empty());
    let client_final = sasl_payload(c.output(), false);
    drain(&mut c);
    let server_final = match server.last(&client_final) {
        Ok(v) if tamper_final => v.replace("v=", "v=AAAA"),
        Ok(v) => v,
        Err(why) => {
            let refusal = error(&[(b'C', "28P01"), (b'M', &why)]);
            return c.received(&refusal);
        }
    };
    c.received(&[auth(12, server_final.as_bytes()), auth(0, &[]), ready(b'I')].concat())
}

#[test]
fn scram_sha_256_proves_the_password_and_checks_the_server() {
    assert_eq!(scram_exchange("secret", false), vec![Event::Ready]);
}

#[test]
fn scram_with_a_wrong_password_is_refused_by_the_server() {
    let events = scram_exchange("not the secret", false);
    assert!(
        matches!(&events[..], [Event::Broken(why)] if why.contains("wrong password")),
        "{events:?}"
    );
}

#[test]
fn a_server_that_cannot_prove_the_password_is_not_trusted() {
    let events = scram_exchange("secret", true);
    assert!(
        matches!(&events[..], [Event::Broken(why)] if why.contains("SCRAM")),
        "{events:?}"
    );
}
