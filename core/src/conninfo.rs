//! libpq connection strings, for the connections a standby opens to its primary: both of
//! libpq's forms (`host=/run/pg port=5432 user=x` and `postgresql://x@host:5432/db`), the
//! derivation of `pg_rest.primary_conninfo`'s default from the server's own
//! `primary_conninfo`, and the `.pgpass` look-up libpq would do. Pure: the extension reads the
//! files and opens the sockets.

use crate::pgwire::Params;
use percent_encoding::percent_decode_str;
use std::path::PathBuf;

/// A parsed connection string: its keywords in order (a later one wins, as in libpq).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conninfo {
    pairs: Vec<(String, String)>,
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A UNIX socket file (`<dir>/.s.PGSQL.<port>`).
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
}

/// Keywords a forwarding connection understands; libpq's others that only tune a client
/// (timeouts, keepalives, Kerberos names) are accepted and ignored, anything else refused.
const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "passfile",
    "dbname",
    "application_name",
    "sslmode",
];
const IGNORED: &[&str] = &[
    "connect_timeout",
    "channel_binding",
    "sslcompression",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "client_encoding",
    "options",
    "fallback_application_name",
];

impl Conninfo {
    /// Parses either form; the error says what is wrong, for a check hook's DETAIL.
    pub fn parse(text: &str) -> Result<Conninfo, String> {
        let text = text.trim();
        let info = if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            parse_uri(text)?
        } else {
            parse_pairs(text)?
        };
        for (k, _) in &info.pairs {
            if !KNOWN.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()) {
                return Err(format!("invalid connection option \"{k}\""));
            }
        }
        Ok(info)
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key`, replacing earlier values.
    pub fn set(&mut self, key: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_string(), value.to_string()));
    }

    /// `pg_rest.primary_conninfo`'s default: the server's `primary_conninfo` (which names a
    /// replication user and no database) with pg_rest's database and authenticator.
    pub fn for_api(mut self, database: &str, authenticator: &str) -> Conninfo {
        self.set("dbname", database);
        self.set("user", authenticator);
        self
    }

    /// The first host's endpoint (a list of hosts is libpq's failover; a standby follows one
    /// primary). A host starting with `/` is a socket directory.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let port = self.get("port").unwrap_or("5432");
        let port = first(port);
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid port number: \"{port}\""))?;
        let host = self.get("hostaddr").or(self.get("host")).map(first);
        match host {
            None | Some("") => Err("no host is given (a socket directory or a host name)".into()),
            Some(dir) if dir.starts_with('/') => Ok(Endpoint::Unix(
                PathBuf::from(dir).join(format!(".s.PGSQL.{port}")),
            )),
            Some(host) => Ok(Endpoint::Tcp {
                host: host.to_string(),
                port,
            }),
        }
    }

    /// Refuses what forwarding cannot honour: TLS demanded (the connection is plain; use a
    /// socket or a trusted network).
    pub fn check_supported(&self) -> Result<(), String> {
        match self.get("sslmode").unwrap_or("prefer") {
            "disable" | "allow" | "prefer" => Ok(()),
            mode @ ("require" | "verify-ca" | "verify-full") => Err(format!(
                "sslmode={mode}: pg_rest connects to the primary without TLS (use a UNIX \
                 socket or a trusted network, with sslmode=prefer or disable)"
            )),
            other => Err(format!("invalid sslmode value: \"{other}\"")),
        }
    }

    /// The startup parameters; the password from the string, else from `pgpass` (the
    /// passfile's contents, when the extension could read one).
    pub fn params(&self, application_name: &str, pgpass: Option<&str>) -> Params {
        let user = self.get("user").unwrap_or("postgres").to_string();
        let database = self.get("dbname").unwrap_or(&user).to_string();
        let password = self.get("password").map(str::to_string).or_else(|| {
            let host = self.get("host").map(first).unwrap_or("localhost");
            let port = first(self.get("port").unwrap_or("5432"));
            pgpass.and_then(|text| pgpass_lookup(text, host, port, &database, &user))
        });
        Params {
            user,
            password,
            database,
            application_name: self
                .get("application_name")
                .unwrap_or(application_name)
                .to_string(),
        }
    }
}

fn first(list: &str) -> &str {
    list.split(',').next().unwrap_or("").trim()
}

/// `keyword = value …`, values bare (backslash escapes) or single-quoted.
fn parse_pairs(text: &str) -> Result<Conninfo, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(Conninfo { pairs });
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted string in connection info".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// `postgresql://[user[:password]@][host][:port][/dbname][?keyword=value&…]`.
fn parse_uri(text: &str) -> Result<Conninfo, String> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let rest = text.split_once("://").map_or("", |(_, r)| r);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, dbname) = rest.split_once('/').unwrap_or((rest, ""));
    let mut pairs = Vec::new();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                pairs.push(("user".to_string(), decode(user)));
            }
            if let Some(p) = password {
                pairs.push(("password".to_string(), decode(p)));
            }
            hostport
        }
        None => authority,
    };
    let (host, port) = match hostport.strip_prefix('[') {
        // An IPv6 address: [::1]:5432.
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or("an IPv6 host without its closing \"]\"")?;
            (addr, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if !host.is_empty() {
        pairs.push(("host".to_string(), decode(host)));
    }
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        pairs.push(("port".to_string(), decode(port)));
    }
    if !dbname.is_empty() {
        pairs.push(("dbname".to_string(), decode(dbname)));
    }
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = param
            .split_once('=')
            .ok_or_else(|| format!("missing \"=\" in URI query parameter \"{param}\""))?;
        pairs.push((decode(k), decode(v)));
    }
    Ok(Conninfo { pairs })
}

/// The password `.pgpass` gives (`host:port:database:user:password` lines, `*` matching
/// anything, `\` escaping `:` and `\`), as libpq looks it up; a socket directory matches
/// `localhost`, as in libpq.
pub fn pgpass_lookup(
    contents: &str,
    host: &str,
    port: &str,
    database: &str,
    user: &str,
) -> Option<String> {
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let wanted = [host, port, database, user];
    contents
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            let [h, p, d, u, password] = &fields[..] else {
                return None;
            };
            let matches = [h, p, d, u]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f.as_str() == "*" || f.as_str() == w);
            matches.then(|| password.clone())
        })
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let c = match c {
            // The fifth field (the password) is the rest of the line.
            ':' if fields.len() < 5 => {
                fields.push(String::new());
                continue;
            }
            '\\' => match chars.next() {
                Some(escaped) => escaped,
                None => break,
            },
            c => c,
        };
        if let Some(field) = fields.last_mut() {
            field.push(c);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `pg_basebackup -R` writes (PostgreSQL 15, Debian).
    const BASEBACKUP: &str = "user=postgres passfile='/var/lib/postgresql/.pgpass' \
        channel_binding=prefer host='/work/main/target/dev-pg/data' port=54328 sslmode=prefer \
        sslcompression=0 sslsni=1 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer \
        krbsrvname=postgres target_session_attrs=any";

    #[test]
    fn a_basebackup_primary_conninfo_becomes_the_api_connection() {
        let info = Conninfo::parse(BASEBACKUP)
            .unwrap()
            .for_api("app", "authenticator");
        assert_eq!(
            info.endpoint().unwrap(),
            Endpoint::Unix("/work/main/target/dev-pg/data/.s.PGSQL.54328".into())
        );
        assert!(info.check_supported().is_ok());
        assert_eq!(info.get("passfile"), Some("/var/lib/postgresql/.pgpass"));
        let p = info.params("pg_rest forward", None);
        assert_eq!(
            (p.user.as_str(), p.database.as_str(), p.password),
            ("authenticator", "app", None)
        );
        assert_eq!(p.application_name, "pg_rest forward");
    }

    #[test]
    fn quoted_values_keep_spaces_and_escapes() {
        let info =
            Conninfo::parse(r"host = db.example  password='it\'s a \\secret' port=6543").unwrap();
        assert_eq!(info.get("password"), Some(r"it's a \secret"));
        assert_eq!(
            info.endpoint().unwrap(),
            Endpoint::Tcp {
                host: "db.example".into(),
                port: 6543
            }
        );
        assert_eq!(
            Conninfo::parse(r"password=a\ b").unwrap().get("password"),
            Some("a b")
        );
    }

    #[test]
    fn bad_strings_say_what_is_wrong() {
        let err = |s: &str| Conninfo::parse(s).unwrap_err();
        assert!(err("host").contains("missing \"=\" after \"host\""));
        assert!(err("password='open").contains("unterminated"));
        assert!(err("hots=x").contains("invalid connection option \"hots\""));
        let no_host = Conninfo::parse("port=5432").unwrap();
        assert!(no_host.endpoint().unwrap_err().contains("no host"));
        let bad_port = Conninfo::parse("host=x port=fifty").unwrap();
        assert!(bad_port.endpoint().unwrap_err().contains("fifty"));
    }

    #[test]
    fn demanding_tls_is_refused_with_the_way_out() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let info = Conninfo::parse(&format!("host=x sslmode={mode}")).unwrap();
            let why = info.check_supported().unwrap_err();
            assert!(why.contains(mode) && why.contains("without TLS"), "{why}");
        }
        let odd = Conninfo::parse("host=x sslmode=sometimes").unwrap();
        assert!(odd.check_supported().unwrap_err().contains("sometimes"));
    }

    #[test]
    fn uris_are_read_like_libpq_reads_them() {
        let info =
            Conninfo::parse("postgresql://rest:p%40ss@primary.local:5433/app?sslmode=disable")
                .unwrap();
        assert_eq!(info.get("user"), Some("rest"));
        assert_eq!(info.get("password"), Some("p@ss"));
        assert_eq!(info.get("dbname"), Some("app"));
        assert_eq!(info.get("sslmode"), Some("disable"));
        assert_eq!(
            info.endpoint().unwrap(),
            Endpoint::Tcp {
                host: "primary.local".into(),
                port: 5433
            }
        );
        let socket = Conninfo::parse("postgres://%2Frun%2Fpostgresql/app").unwrap();
        assert_eq!(
            socket.endpoint().unwrap(),
            Endpoint::Unix("/run/postgresql/.s.PGSQL.5432".into())
        );
        let v6 = Conninfo::parse("postgresql://[::1]:6000").unwrap();
        assert_eq!(
            v6.endpoint().unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 6000
            }
        );
    }

    #[test]
    fn a_host_list_connects_to_the_first() {
        let info = Conninfo::parse("host=a,b port=1,2").unwrap();
        assert_eq!(
            info.endpoint().unwrap(),
            Endpoint::Tcp {
                host: "a".into(),
                port: 1
            }
        );
    }

    #[test]
    fn pgpass_gives_the_first_matching_line() {
        let pgpass = "# comment\n\
            other:5432:*:*:wrong\n\
            localhost:54328:app:authenticator:s\\:cret\\\\\n\
            *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(pgpass, "/tmp/sock", "54328", "app", "authenticator").as_deref(),
            Some("s:cret\\")
        );
        assert_eq!(
            pgpass_lookup(pgpass, "db", "1", "x", "y").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup("a:b:c\n", "a", "b", "c", "d"), None);
        let info =
            Conninfo::parse("host=/tmp/sock port=54328 dbname=app user=authenticator").unwrap();
        assert_eq!(
            info.params("x", Some(pgpass)).password.as_deref(),
            Some("s:cret\\")
        );
        let explicit = Conninfo::parse("host=h password=given").unwrap();
        assert_eq!(
            explicit.params("x", Some(pgpass)).password.as_deref(),
            Some("given")
        );
    }
}
