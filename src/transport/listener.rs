//! Listening sockets: one per address, owned by the server.
//!
//! The postmaster opens them while it loads `shared_preload_libraries` ([`open_at_preload`]),
//! without `SO_REUSEPORT`, and every http worker inherits them when it is forked. So:
//! - a second server configured on a port this one holds cannot bind it: its postmaster
//!   records why, and its supervisor logs it once and starts no http worker — traffic is
//!   never split between two databases, as per-worker `SO_REUSEPORT` sockets would allow
//!   for any two clusters run by the same OS user;
//! - the workers of this server share one accept queue. Each registers the socket with
//!   `EPOLLEXCLUSIVE`, so a new connection wakes one worker waiting in its poll, not all of
//!   them, and not a worker busy with a long request; connections queued while a worker
//!   stops stay queued for the others, and while no worker runs (start, restart) they wait
//!   instead of being refused.

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::OnceLock;

const BACKLOG: i32 = 1024;
/// Descriptors left to PostgreSQL itself: its own file budget (max_files_per_process, 1000 by
/// default, counted from the soft limit it saw at start) plus a margin.
const FDS_FOR_POSTGRES: u64 = 1100;
/// Consecutive failed `accept` calls (other than "queue empty") after which a worker stops
/// accepting until its next tick, so a persistent error cannot spin the loop.
pub const MAX_ACCEPT_ERRORS: usize = 32;

/// What the postmaster achieved at preload; inherited by every forked process.
static LISTENING: OnceLock<Result<Vec<(SocketAddr, RawFd)>, String>> = OnceLock::new();

/// Opens the listening sockets in the postmaster (from `_PG_init` under
/// `shared_preload_libraries`). Never raises: a failure is recorded for the supervisor, which
/// logs it and does not start http workers; the database itself starts as usual.
pub fn open_at_preload(addresses: &[String], port: u16) {
    let result = bind_all(addresses, port).map(|listeners| {
        listeners
            .into_iter()
            .map(|(addr, socket)| (addr, socket.into_raw_fd()))
            .collect()
    });
    let _ = LISTENING.set(result.map_err(|e| e.to_string()));
}

/// Why this server does not serve HTTP, if it does not (see [`open_at_preload`]).
pub fn preload_failure() -> Option<&'static str> {
    match LISTENING.get() {
        Some(Err(why)) => Some(why),
        Some(Ok(_)) => None,
        None => Some("pg_rest was not loaded through shared_preload_libraries"),
    }
}

/// This worker's handles on the server's listening sockets (duplicates of the inherited
/// descriptors, so each process closes only its own).
pub fn inherited() -> io::Result<Vec<(SocketAddr, TcpListener)>> {
    let listeners = match LISTENING.get() {
        Some(Ok(l)) => l,
        _ => {
            let why = preload_failure().unwrap_or_default();
            return Err(io::Error::other(why));
        }
    };
    listeners
        .iter()
        .map(|&(addr, fd)| {
            // SAFETY: `fd` is an open listening socket inherited from the postmaster.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `dup` is a fresh descriptor this process owns.
            Ok((addr, unsafe { TcpListener::from_raw_fd(dup) }))
        })
        .collect()
}

/// Registers a listening socket with `poll`'s epoll instance, level-triggered and
/// `EPOLLEXCLUSIVE` — which mio's `Interest` cannot express; mio reads the token back from
/// the event's data as for its own registrations.
pub fn register_exclusive(
    poll: &mio::Poll,
    listener: &TcpListener,
    token: mio::Token,
) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
        u64: token.0 as u64,
    };
    // SAFETY: both descriptors are open; `event` outlives the call.
    let rc = unsafe {
        libc::epoll_ctl(
            poll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            listener.as_raw_fd(),
            &mut event,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes a socket registered by [`register_exclusive`].
pub fn deregister(poll: &mio::Poll, listener: &TcpListener) {
    // SAFETY: both descriptors are open; DEL ignores the event argument.
    unsafe {
        libc::epoll_ctl(
            poll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            listener.as_raw_fd(),
            std::ptr::null_mut(),
        )
    };
}

/// How one round of [`accept_some`] ended.
#[derive(Debug)]
pub enum AcceptEnd {
    /// The queue is empty.
    Drained,
    /// `budget` connections taken; more may wait (the level-triggered registration reports
    /// the socket again at the next poll).
    Budget,
    /// Accepting must pause until the next tick: out of descriptors or memory, or
    /// [`MAX_ACCEPT_ERRORS`] failures in a row. Carries the last error, for one log line.
    Pause(io::Error),
}

/// Accepts up to `budget` connections into `out`. Connections that died in the queue
/// (ECONNABORTED, EINTR …) are skipped, but only [`MAX_ACCEPT_ERRORS`] in a row.
pub fn accept_some(listener: &TcpListener, budget: usize, out: &mut Vec<TcpStream>) -> AcceptEnd {
    let mut errors = 0;
    let mut taken = 0;
    while taken < budget {
        match listener.accept() {
            Ok((stream, _)) => {
                out.push(stream);
                taken += 1;
                errors = 0;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return AcceptEnd::Drained,
            Err(e) if out_of_resources(&e) => return AcceptEnd::Pause(e),
            Err(e) => {
                errors += 1;
                if errors >= MAX_ACCEPT_ERRORS {
                    return AcceptEnd::Pause(e);
                }
            }
        }
    }
    AcceptEnd::Budget
}

/// Accept errors that mean "no room now" rather than "this connection failed".
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Raises this process's soft descriptor limit to the hard one — client sockets then live
/// above the range PostgreSQL budgeted for its own files — and returns how many connections
/// fit. PostgreSQL's file manager keeps to the budget it computed at start.
pub fn raise_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
        .saturating_sub(FDS_FOR_POSTGRES)
        .min(usize::MAX as u64) as usize
}

/// Binds and listens on every address of `pg_rest.listen_addresses`. An address this machine
/// does not have (e.g. `::1` where IPv6 is off) is skipped as long as another can be bound;
/// an address that is in use fails the whole server, since half the addresses would split
/// traffic with whoever holds the other half.
fn bind_all(addresses: &[String], port: u16) -> io::Result<Vec<(SocketAddr, Socket)>> {
    let mut listeners = Vec::new();
    let mut unavailable = None;
    for addr in resolve(addresses, port)? {
        match bind(addr) {
            Ok(s) => listeners.push((addr, s)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on address {} port {port}: {e}; another server holds it \
                         (perhaps another PostgreSQL cluster with pg_rest): free the port or \
                         change pg_rest.port, then restart",
                        addr.ip()
                    ),
                ));
            }
            Err(e) => {
                unavailable.get_or_insert(io::Error::new(
                    e.kind(),
                    format!("cannot listen on address {} port {port}: {e}", addr.ip()),
                ));
            }
        }
    }
    match (listeners.is_empty(), unavailable) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "pg_rest.listen_addresses names no address to listen on",
        )),
        _ => Ok(listeners),
    }
}

fn resolve(addresses: &[String], port: u16) -> io::Result<Vec<SocketAddr>> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addresses {
        let found: Vec<SocketAddr> = if a == "*" {
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            ]
        } else if let Ok(ip) = a.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            (a.as_str(), port).to_socket_addrs()?.collect()
        };
        for addr in found {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

/// One listening socket: `SO_REUSEADDR` (a restart is not blocked by connections in
/// TIME_WAIT; Linux still refuses a second listener on the same address), never
/// `SO_REUSEPORT`; non-blocking and close-on-exec (programs the server runs do not inherit it).
fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_port(socket: &Socket) -> io::Result<u16> {
        socket
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("not an inet socket"))
    }

    #[test]
    fn star_means_both_families_and_duplicates_collapse() -> io::Result<()> {
        let addrs = resolve(&["*".into(), "0.0.0.0".into()], 8080)?;
        assert_eq!(addrs.len(), 2);
        assert!(addrs.iter().all(|a| a.port() == 8080));
        Ok(())
    }

    #[test]
    fn a_port_in_use_is_refused_with_address_port_and_reason() -> io::Result<()> {
        let first = bind_all(&["127.0.0.1".into()], 0)?;
        let port = bound_port(&first[0].1)?;
        let e = bind_all(&["127.0.0.1".into()], port).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        let text = e.to_string();
        assert!(
            text.contains(&format!("address 127.0.0.1 port {port}")),
            "{text}"
        );
        assert!(text.contains("in use"), "{text}");
        Ok(())
    }

    #[test]
    fn persistent_accept_errors_pause_instead_of_spinning() -> io::Result<()> {
        // A bound socket that is not listening fails every accept with EINVAL.
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        // SAFETY: taking over the descriptor from `socket`.
        let listener = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
        let mut out = Vec::new();
        match accept_some(&listener, usize::MAX, &mut out) {
            AcceptEnd::Pause(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
            other => panic!("expected a pause, got {other:?}"),
        }
        assert!(out.is_empty());
        Ok(())
    }

    #[test]
    fn accept_takes_at_most_its_budget() -> io::Result<()> {
        let (_, socket) = bind_all(&["127.0.0.1".into()], 0)?.remove(0);
        let addr = SocketAddr::from(([127, 0, 0, 1], bound_port(&socket)?));
        // SAFETY: taking over the descriptor from `socket`.
        let listener = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr))
            .collect::<io::Result<_>>()?;
        // Loopback handshakes complete in the kernel during connect; a moment for safety.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut out = Vec::new();
        assert!(matches!(
            accept_some(&listener, 2, &mut out),
            AcceptEnd::Budget
        ));
        assert_eq!(out.len(), 2);
        out.clear();
        assert!(matches!(
            accept_some(&listener, 2, &mut out),
            AcceptEnd::Drained
        ));
        assert_eq!(out.len(), 1);
        drop(clients);
        Ok(())
    }
}
