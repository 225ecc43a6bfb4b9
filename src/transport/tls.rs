//! TLS for the http port (issue 7), with rustls on the ring provider (aws-lc would need cmake
//! and a C build in every build of the extension).
//!
//! - [`load_server_config`] turns `pg_rest.tls_cert_file` / `tls_key_file` into a
//!   [`ServerConfig`] offering ALPN `h2` then `http/1.1`, with errors that name the setting,
//!   the file and the problem.
//! - [`TlsMaterial`] is what a worker holds across SIGHUPs: a reload that fails keeps the
//!   material loaded before, and one whose files did not change keeps the same `ServerConfig`
//!   (and so its session-resumption state).
//! - [`TlsStream`] is a non-blocking `Read + Write` over a mio `TcpStream` for the worker's
//!   edge-triggered loop: the handshake advances inside `read`/`write`, `WouldBlock` means "wait
//!   for the next edge", and [`TlsStream::wants_write`] tells when TLS bytes still wait for the
//!   socket (so the connection must ask for WRITABLE even with no plaintext of its own left).

use crate::transport::io::Drain;
use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// ALPN protocols offered, in the server's order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Bytes of TLS output (and of plaintext written before the handshake ends) rustls may hold
/// beyond what the socket took; past it `write` answers `WouldBlock`, so the connection's own
/// output buffer and backpressure stay in charge of a slow reader.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// Builds the server configuration from a PEM certificate chain (end-entity first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_server_config(cert_file: &str, key_file: &str) -> Result<Arc<ServerConfig>, String> {
    let cert_pem = read_file("pg_rest.tls_cert_file", cert_file)?;
    let key_pem = read_file("pg_rest.tls_key_file", key_file)?;
    server_config_from_pem(cert_file, &cert_pem, key_file, &key_pem)
}

fn read_file(setting: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{setting} {path}: cannot read it: {e}"))
}

/// [`load_server_config`] on file contents already read; the names are for the messages.
fn server_config_from_pem(
    cert_file: &str,
    cert_pem: &[u8],
    key_file: &str,
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("pg_rest.tls_cert_file {cert_file}: not valid PEM: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "pg_rest.tls_cert_file {cert_file}: no certificate in it \
             (expected a PEM \"BEGIN CERTIFICATE\" block)"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "pg_rest.tls_key_file {key_file}: no private key in it (expected an unencrypted \
             PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" \
             block)"
        ),
        e => format!("pg_rest.tls_key_file {key_file}: not valid PEM: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("pg_rest: no TLS protocol version available: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
                "pg_rest.tls_key_file {key_file}: the key does not match the certificate in \
                 pg_rest.tls_cert_file {cert_file}"
            ),
            e => format!(
                "pg_rest.tls_key_file {key_file} with pg_rest.tls_cert_file {cert_file}: \
                 unusable: {e}"
            ),
        })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How new connections on the http port are to be served.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// No certificate is set: plain HTTP.
    Plain,
    /// TLS with this configuration.
    Tls(Arc<ServerConfig>),
    /// The settings ask for TLS but nothing could ever be loaded (the log says why). New
    /// connections must be closed rather than served in clear text to clients that were
    /// meant to get TLS.
    Unavailable,
}

/// What a successful [`TlsMaterial::reload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// Same settings, same file contents: the same `ServerConfig` is kept.
    Unchanged,
    /// A new certificate and key are in use (for new connections; open ones keep theirs).
    Loaded,
    /// Both settings were emptied: plain HTTP from now on.
    Disabled,
}

/// The TLS material a worker serves with, carried from one settings snapshot to the next.
#[derive(Clone, Default)]
pub struct TlsMaterial {
    /// The settings name a certificate or a key, whether or not it could be loaded.
    wanted: bool,
    loaded: Option<Loaded>,
}

#[derive(Clone)]
struct Loaded {
    cert_file: String,
    key_file: String,
    /// The files' contents at load, to tell an unchanged pair without rebuilding the config
    /// (a file rewritten within one tick of the clock keeps its mtime; its bytes tell).
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    config: Arc<ServerConfig>,
}

impl TlsMaterial {
    /// Takes the settings' values (`pg_rest.tls_cert_file`, `pg_rest.tls_key_file`). On an
    /// error (one setting without the other, an unreadable or bad file) the material loaded
    /// before stays in use and the message says what is wrong; the caller logs it.
    pub fn reload(&mut self, cert_file: &str, key_file: &str) -> Result<Reloaded, String> {
        let (cert_file, key_file) = (cert_file.trim(), key_file.trim());
        if cert_file.is_empty() && key_file.is_empty() {
            self.wanted = false;
            return Ok(match self.loaded.take() {
                Some(_) => Reloaded::Disabled,
                None => Reloaded::Unchanged,
            });
        }
        self.wanted = true;
        if key_file.is_empty() {
            return Err(format!(
                "pg_rest.tls_cert_file is set ({cert_file}) but pg_rest.tls_key_file is empty"
            ));
        }
        if cert_file.is_empty() {
            return Err(format!(
                "pg_rest.tls_key_file is set ({key_file}) but pg_rest.tls_cert_file is empty"
            ));
        }
        let cert_pem = read_file("pg_rest.tls_cert_file", cert_file)?;
        let key_pem = read_file("pg_rest.tls_key_file", key_file)?;
        if let Some(old) = &mut self.loaded {
            if old.cert_pem == cert_pem && old.key_pem == key_pem {
                old.cert_file = cert_file.to_string();
                old.key_file = key_file.to_string();
                return Ok(Reloaded::Unchanged);
            }
        }
        let config = server_config_from_pem(cert_file, &cert_pem, key_file, &key_pem)?;
        self.loaded = Some(Loaded {
            cert_file: cert_file.to_string(),
            key_file: key_file.to_string(),
            cert_pem,
            key_pem,
            config,
        });
        Ok(Reloaded::Loaded)
    }

    /// How to serve new connections.
    pub fn mode(&self) -> TlsMode {
        match (&self.loaded, self.wanted) {
            (Some(l), true) => TlsMode::Tls(l.config.clone()),
            (None, true) => TlsMode::Unavailable,
            (_, false) => TlsMode::Plain,
        }
    }

    /// The configuration in use, if any.
    pub fn server_config(&self) -> Option<&Arc<ServerConfig>> {
        self.loaded.as_ref().map(|l| &l.config)
    }

    /// The files the material in use was loaded from.
    pub fn files(&self) -> Option<(&str, &str)> {
        self.loaded
            .as_ref()
            .map(|l| (l.cert_file.as_str(), l.key_file.as_str()))
    }
}

/// Paths only: the key's bytes never reach a log line.
impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.loaded, self.wanted) {
            (_, false) => f.write_str("TlsMaterial(off)"),
            (None, true) => f.write_str("TlsMaterial(unavailable)"),
            (Some(l), true) => write!(f, "TlsMaterial({}, {})", l.cert_file, l.key_file),
        }
    }
}

/// A server-side TLS session over a non-blocking socket.
///
/// `read` and `write` never block and never return `WouldBlock` while the socket still has
/// something to give or take, so they fit an edge-triggered loop; the one extra rule for the
/// caller is to keep WRITABLE interest while [`TlsStream::wants_write`] and then call
/// [`TlsStream::flush_tls`] (or `write`) on the edge.
pub struct TlsStream {
    tls: ServerConnection,
    sock: TcpStream,
    /// The session failed (a bad record, an alert): every later `read`/`write` says so again
    /// instead of a `WouldBlock` that would keep a dead session waiting.
    failed: Option<rustls::Error>,
}

impl TlsStream {
    /// Starts the server side of a handshake on an accepted socket; nothing is sent until the
    /// client's hello is read.
    pub fn new(config: Arc<ServerConfig>, sock: TcpStream) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(TlsStream {
            tls,
            sock,
            failed: None,
        })
    }

    /// TLS records (handshake, alerts, encrypted data) wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes pending TLS records until none is left (`Ok(true)`) or the socket is full
    /// (`Ok(false)`: wait for WRITABLE).
    pub fn flush_tls(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The protocol agreed by ALPN (`h2` or `http/1.1`); None before the handshake ends or
    /// when the client offered none (serve HTTP/1.1 then).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Queues a close_notify alert and tries to send it, with the output before it. The
    /// result is [`TlsStream::flush_tls`]'s: with `Ok(false)`, flush on WRITABLE before
    /// shutting the socket, or the client sees a truncated stream.
    pub fn send_close_notify(&mut self) -> io::Result<bool> {
        self.tls.send_close_notify();
        self.flush_tls()
    }

    /// The socket, e.g. for `shutdown` or `peer_addr`.
    pub fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn into_tcp(self) -> TcpStream {
        self.sock
    }

    /// Decrypts what was read and sends what that produced (handshake replies, alerts).
    fn process(&mut self) -> io::Result<()> {
        match self.tls.process_new_packets() {
            Ok(_) => self.flush_tls().map(drop),
            Err(e) => {
                // rustls queued an alert telling the peer why; best effort, we close anyway.
                let _ = self.flush_tls();
                self.failed = Some(e.clone());
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.clone())),
            None => Ok(()),
        }
    }
}

impl TlsStream {
    /// Plaintext from the peer (see the `Read` impl); the socket is not read again once
    /// `drain` found it empty, but plaintext rustls already decrypted is still returned.
    pub fn read_with(&mut self, buf: &mut [u8], drain: &Drain) -> io::Result<usize> {
        self.check_failed()?;
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if drain.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // No plaintext buffered (so rustls' receive buffer has room): pull records.
            let mut sock = Measured {
                sock: &mut self.sock,
                drain,
            };
            match self.tls.read_tls(&mut sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // After an EOF (read_tls Ok(0)) this settles what is left, then the reader
            // answers Ok(0) on the next turn.
            self.process()?;
        }
    }
}

/// The socket as rustls reads it, telling `drain` whether a read came back short.
struct Measured<'a> {
    sock: &'a mut TcpStream,
    drain: &'a Drain,
}

impl Read for Measured<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.drain.saw_read(n, buf.len());
        Ok(n)
    }
}

impl Read for TlsStream {
    /// Plaintext from the peer. `Ok(0)`: the peer closed, with close_notify or (as many
    /// clients do) with a bare TCP EOF; HTTP's own framing tells a truncated message.
    /// `WouldBlock`: the socket is drained and no whole record is left to decrypt.
    /// An error: a TLS failure (a bad hello, a bad record, an alert), so close.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf, &Drain::untrusted())
    }
}

impl Write for TlsStream {
    /// Encrypts what rustls' bounded buffer takes and pushes records to the socket; returns
    /// `WouldBlock` when the buffer is full because the socket is.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_failed()?;
        if buf.is_empty() {
            return Ok(0);
        }
        // Make room first: what the socket took no longer counts against the limit.
        self.flush_tls()?;
        let n = self.tls.writer().write(buf)?;
        self.flush_tls()?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// `WouldBlock` while records still wait for the socket.
    fn flush(&mut self) -> io::Result<()> {
        if self.flush_tls()? {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
}

/// Registration goes to the socket, so the event loop treats both transports alike.
impl Source for TlsStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const DEADLINE: Duration = Duration::from_secs(20);

    /// A self-signed certificate for `localhost`, made now: no key is ever committed.
    struct Pki {
        cert_pem: String,
        key_pem: String,
        cert_der: CertificateDer<'static>,
    }

    fn pki() -> Result<Pki, rcgen::Error> {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        Ok(Pki {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
            cert_der: ck.cert.der().clone(),
        })
    }

    /// A directory removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> io::Result<TempDir> {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pg_rest_tls_test_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir)?;
            Ok(TempDir(dir))
        }

        fn write(&self, name: &str, content: &str) -> io::Result<String> {
            let path = self.0.join(name);
            std::fs::write(&path, content)?;
            Ok(path.to_string_lossy().into_owned())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>, String> {
        let dir = TempDir::new().map_err(|e| e.to_string())?;
        let cert = dir
            .write("cert.pem", &pki.cert_pem)
            .map_err(|e| e.to_string())?;
        let key = dir
            .write("key.pem", &pki.key_pem)
            .map_err(|e| e.to_string())?;
        load_server_config(&cert, &key)
    }

    fn client_config(pki: &Pki, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(pki.cert_der.clone())?;
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    type Client = StreamOwned<ClientConnection, std::net::TcpStream>;

    fn tls_client(config: Arc<ClientConfig>, sock: std::net::TcpStream) -> io::Result<Client> {
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(StreamOwned::new(conn, sock))
    }

    /// The server end under test, driven only by mio's edge-triggered events: a `read` or
    /// `write` that answered `WouldBlock` too early would leave it waiting for an edge that
    /// never comes, and the test would time out.
    struct Server {
        poll: Poll,
        events: Events,
        tls: TlsStream,
        deadline: Instant,
    }

    impl Server {
        /// A loopback pair: the server's non-blocking end, the client's blocking one.
        fn accept(config: Arc<ServerConfig>) -> io::Result<(Server, std::net::TcpStream)> {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let client = std::net::TcpStream::connect(listener.local_addr()?)?;
            client.set_read_timeout(Some(DEADLINE))?;
            client.set_write_timeout(Some(DEADLINE))?;
            let (sock, _) = listener.accept()?;
            sock.set_nonblocking(true)?;
            let poll = Poll::new()?;
            let mut tls = TlsStream::new(config, TcpStream::from_std(sock))?;
            poll.registry().register(
                &mut tls,
                Token(0),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let server = Server {
                poll,
                events: Events::with_capacity(8),
                tls,
                deadline: Instant::now() + DEADLINE,
            };
            Ok((server, client))
        }

        /// Waits for the next edge.
        fn wait(&mut self) -> io::Result<()> {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.poll.poll(&mut self.events, Some(left))
        }

        /// Reads until `want` bytes came or the peer closed.
        fn read_up_to(&mut self, want: usize) -> io::Result<Vec<u8>> {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            while got.len() < want {
                match self.tls.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait()?,
                    Err(e) => return Err(e),
                }
            }
            Ok(got)
        }

        /// Writes everything and flushes it; says whether `write` ever pushed back, and how
        /// much it took before it first did.
        fn write_all(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
            let mut pos = 0;
            let mut first_block = None;
            while pos < data.len() {
                match self.tls.write(&data[pos..]) {
                    Ok(n) => pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        first_block.get_or_insert(pos);
                        self.wait()?;
                    }
                    Err(e) => return Err(e),
                }
            }
            while !self.tls.flush_tls()? {
                self.wait()?;
            }
            Ok(first_block)
        }
    }

    fn join<T>(h: JoinHandle<io::Result<T>>) -> io::Result<T> {
        h.join()
            .map_err(|_| io::Error::other("client thread panicked"))?
    }

    #[test]
    fn handshake_picks_the_offered_protocol() -> TestResult {
        let pki = pki()?;
        let config = server_config(&pki)?;
        // (protocols the client offers, the one agreed)
        type Case = (&'static [&'static [u8]], Option<&'static [u8]>);
        let cases: [Case; 4] = [
            (&[b"h2", b"http/1.1"], Some(b"h2")),
            (&[b"http/1.1", b"h2"], Some(b"h2")),
            (&[b"http/1.1"], Some(b"http/1.1")),
            (&[], None),
        ];
        for (offer, expected) in cases {
            let (mut server, sock) = Server::accept(config.clone())?;
            let mut client = tls_client(client_config(&pki, offer)?, sock)?;
            let client = std::thread::spawn(move || {
                client.write_all(b"ping")?;
                let mut pong = [0u8; 4];
                client.read_exact(&mut pong)?;
                Ok((pong, client.conn.alpn_protocol().map(<[u8]>::to_vec)))
            });
            assert!(server.tls.is_handshaking());
            assert_eq!(server.read_up_to(4)?, b"ping");
            assert!(!server.tls.is_handshaking());
            assert_eq!(server.tls.alpn(), expected, "offer {offer:?}");
            server.write_all(b"pong")?;
            let (pong, client_alpn) = join(client)?;
            assert_eq!(&pong, b"pong");
            assert_eq!(client_alpn.as_deref(), expected);
        }
        Ok(())
    }

    #[test]
    fn large_payloads_both_ways_with_backpressure() -> TestResult {
        const SIZE: usize = 8 << 20;
        let pki = pki()?;
        let (mut server, sock) = Server::accept(server_config(&pki)?)?;
        // Small kernel buffers, so the socket fills long before the payload is out.
        socket2::SockRef::from(server.tls.tcp()).set_send_buffer_size(32 * 1024)?;
        socket2::SockRef::from(&sock).set_recv_buffer_size(32 * 1024)?;
        let payload: Arc<Vec<u8>> = Arc::new((0..SIZE).map(|i| (i % 251) as u8).collect());
        let mut client = tls_client(client_config(&pki, &[b"http/1.1"])?, sock)?;
        let sent = payload.clone();
        let client = std::thread::spawn(move || {
            client.write_all(&sent)?;
            // Read nothing for a while: the server's writes must push back meanwhile.
            std::thread::sleep(Duration::from_millis(300));
            let mut back = vec![0u8; SIZE];
            client.read_exact(&mut back)?;
            Ok(back)
        });
        let got = server.read_up_to(SIZE)?;
        assert!(got == *payload, "the server read what the client sent");
        let first_block = server.write_all(&payload)?;
        let back = join(client)?;
        assert!(back == *payload, "the client read what the server sent");
        let taken = first_block.ok_or("write never answered WouldBlock")?;
        // The kernel's buffers (a few hundred kB at most here) plus rustls' bounded one.
        assert!(
            taken < 1 << 20,
            "{taken} bytes accepted before the first WouldBlock"
        );
        Ok(())
    }

    #[test]
    fn garbage_instead_of_a_client_hello_is_an_error() -> TestResult {
        let pki = pki()?;
        let (mut server, mut sock) = Server::accept(server_config(&pki)?)?;
        sock.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let err = server
            .read_up_to(1)
            .err()
            .ok_or("read accepted plain HTTP")?;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        // Later reads keep failing: the caller cannot mistake the session for a live one.
        let mut buf = [0u8; 16];
        let again = server.tls.read(&mut buf).err().ok_or("read gave data")?;
        assert_eq!(again.kind(), io::ErrorKind::InvalidData);
        let write = server.tls.write(b"x").err().ok_or("write took data")?;
        assert_eq!(write.kind(), io::ErrorKind::InvalidData);
        Ok(())
    }

    #[test]
    fn a_client_offering_only_unknown_protocols_is_refused() -> TestResult {
        let pki = pki()?;
        let (mut server, sock) = Server::accept(server_config(&pki)?)?;
        let mut client = tls_client(client_config(&pki, &[b"spdy/3"])?, sock)?;
        let client = std::thread::spawn(move || Ok(client.write_all(b"x").is_err()));
        let err = server.read_up_to(1).err().ok_or("read gave data")?;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(join(client)?, "the client's handshake failed too");
        Ok(())
    }

    #[test]
    fn a_stalled_handshake_just_waits() -> TestResult {
        let pki = pki()?;
        let (mut server, mut sock) = Server::accept(server_config(&pki)?)?;
        let mut buf = [0u8; 16];
        let silent = server.tls.read(&mut buf).err().ok_or("read gave data")?;
        assert_eq!(silent.kind(), io::ErrorKind::WouldBlock);
        // The start of a handshake record, then nothing.
        sock.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00])?;
        std::thread::sleep(Duration::from_millis(50));
        let partial = server.tls.read(&mut buf).err().ok_or("read gave data")?;
        assert_eq!(partial.kind(), io::ErrorKind::WouldBlock);
        assert!(server.tls.is_handshaking());
        assert!(!server.tls.wants_write());
        Ok(())
    }

    #[test]
    fn close_notify_both_ways() -> TestResult {
        let pki = pki()?;
        let (mut server, sock) = Server::accept(server_config(&pki)?)?;
        let mut client = tls_client(client_config(&pki, &[b"h2"])?, sock)?;
        let client = std::thread::spawn(move || {
            client.write_all(b"hi")?;
            let mut rest = Vec::new();
            // Ok(0) only after close_notify: a bare TCP close is UnexpectedEof here.
            client.read_to_end(&mut rest)?;
            client.conn.send_close_notify();
            client.flush()?;
            Ok(rest)
        });
        assert_eq!(server.read_up_to(2)?, b"hi");
        server.write_all(b"bye")?;
        while !server.tls.send_close_notify()? {
            server.wait()?;
        }
        assert_eq!(join(client)?, b"bye");
        // The client's close_notify: a clean end of stream.
        assert_eq!(server.read_up_to(1)?, b"");
        Ok(())
    }

    #[test]
    fn a_bare_tcp_close_reads_as_end_of_stream() -> TestResult {
        let pki = pki()?;
        // No session tickets: a client closing with them unread would send RST, not FIN.
        let mut config = (*server_config(&pki)?).clone();
        config.send_tls13_tickets = 0;
        let (mut server, sock) = Server::accept(Arc::new(config))?;
        let mut client = tls_client(client_config(&pki, &[b"http/1.1"])?, sock)?;
        let client = std::thread::spawn(move || {
            client.write_all(b"x")?;
            client.flush()?;
            Ok(())
        });
        assert_eq!(server.read_up_to(1)?, b"x");
        join(client)?; // dropped without close_notify
        assert_eq!(server.read_up_to(1)?, b"");
        Ok(())
    }

    #[test]
    fn load_errors_name_the_file_and_the_problem() -> TestResult {
        let (a, b) = (pki()?, pki()?);
        let dir = TempDir::new()?;
        let cert = dir.write("cert.pem", &a.cert_pem)?;
        let key = dir.write("key.pem", &a.key_pem)?;
        let other_key = dir.write("other.pem", &b.key_pem)?;
        let bad_pem = dir.write(
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        )?;
        let missing = dir.0.join("missing.pem").to_string_lossy().into_owned();

        let config = load_server_config(&cert, &key)?;
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );

        let err = |c: &str, k: &str| load_server_config(c, k).err().unwrap_or_default();
        let e = err(&missing, &key);
        assert!(
            e.contains("pg_rest.tls_cert_file") && e.contains(&missing),
            "{e}"
        );
        assert!(e.contains("cannot read"), "{e}");
        let e = err(&cert, &missing);
        assert!(
            e.contains("pg_rest.tls_key_file") && e.contains("cannot read"),
            "{e}"
        );
        let e = err(&key, &key);
        assert!(e.contains(&key) && e.contains("no certificate"), "{e}");
        let e = err(&cert, &cert);
        assert!(e.contains(&cert) && e.contains("no private key"), "{e}");
        let e = err(&bad_pem, &key);
        assert!(e.contains(&bad_pem) && e.contains("not valid PEM"), "{e}");
        let e = err(&cert, &other_key);
        assert!(
            e.contains(&other_key) && e.contains("does not match"),
            "{e}"
        );
        assert!(e.contains(&cert), "{e}");
        Ok(())
    }

    #[test]
    fn reload_keeps_the_old_material_on_a_bad_file() -> TestResult {
        let (a, b) = (pki()?, pki()?);
        let dir = TempDir::new()?;
        let cert = dir.write("cert.pem", &a.cert_pem)?;
        let key = dir.write("key.pem", &a.key_pem)?;
        let mut tls = TlsMaterial::default();
        assert!(matches!(tls.mode(), TlsMode::Plain));
        assert_eq!(tls.reload("", " ")?, Reloaded::Unchanged);

        // Asked for but never loadable: fail closed, not plain text.
        let e = tls.reload(&cert, "").err().unwrap_or_default();
        assert!(e.contains("pg_rest.tls_key_file is empty"), "{e}");
        assert!(matches!(tls.mode(), TlsMode::Unavailable));

        assert_eq!(tls.reload(&cert, &key)?, Reloaded::Loaded);
        let first = tls.server_config().cloned().ok_or("nothing loaded")?;
        assert!(matches!(tls.mode(), TlsMode::Tls(c) if Arc::ptr_eq(&c, &first)));
        assert_eq!(tls.files(), Some((cert.as_str(), key.as_str())));

        // Same files: the same config (and its resumption state) stays.
        assert_eq!(tls.reload(&cert, &key)?, Reloaded::Unchanged);
        let same = tls.server_config().ok_or("lost")?;
        assert!(Arc::ptr_eq(same, &first));

        // A bad new file, one setting missing, a missing file: the old material stays.
        dir.write("key.pem", &b.key_pem)?;
        let e = tls.reload(&cert, &key).err().unwrap_or_default();
        assert!(e.contains("does not match"), "{e}");
        let e = tls.reload("", &key).err().unwrap_or_default();
        assert!(e.contains("pg_rest.tls_cert_file is empty"), "{e}");
        let e = tls
            .reload(&cert, "/nonexistent/key.pem")
            .err()
            .unwrap_or_default();
        assert!(e.contains("cannot read"), "{e}");
        assert!(matches!(tls.mode(), TlsMode::Tls(c) if Arc::ptr_eq(&c, &first)));

        // Fixed: the new pair replaces the old one.
        dir.write("cert.pem", &b.cert_pem)?;
        assert_eq!(tls.reload(&cert, &key)?, Reloaded::Loaded);
        let second = tls.server_config().ok_or("lost")?;
        assert!(!Arc::ptr_eq(second, &first));

        // Both emptied: plain HTTP again.
        assert_eq!(tls.reload("", "")?, Reloaded::Disabled);
        assert!(matches!(tls.mode(), TlsMode::Plain));
        assert!(!format!("{tls:?}").contains("PRIVATE"));
        Ok(())
    }
}
