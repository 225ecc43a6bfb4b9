//! What the transport's socket tests share: a loopback pair and the limits they run under.

use crate::transport::io::{Shared, Transport};
use pg_rest_core::http1::Limits;

pub const LIMITS: Limits = Limits {
    max_header_size: 16 * 1024,
    max_body_size: 1024 * 1024,
};

/// A connected loopback pair: the server side non-blocking, as the event loop has it, and a
/// blocking client.
pub fn socket_pair() -> (Shared, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    server.set_nonblocking(true).expect("nonblocking");
    let stream = mio::net::TcpStream::from_std(server);
    (Shared::new(Transport::Plain(stream)), client)
}
