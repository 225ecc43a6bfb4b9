//! Listening sockets. Every http worker binds its own socket on the same address and port with
//! `SO_REUSEPORT`, so the kernel spreads new connections over the workers — no accept mutex.

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

const BACKLOG: i32 = 1024;
/// Descriptors left to PostgreSQL itself: its own file budget (max_files_per_process, 1000 by
/// default, counted from the soft limit it saw at start) plus a margin.
const FDS_FOR_POSTGRES: u64 = 1100;

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

/// Binds every address of `pg_rest.listen_addresses`. Addresses that cannot be bound are
/// skipped (e.g. `::1` where IPv6 is off) as long as one can; otherwise the first error.
pub fn bind_all(addresses: &[String], port: u16) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut first_error = None;
    for addr in resolve(addresses, port)? {
        match bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                first_error.get_or_insert(io::Error::new(e.kind(), format!("{addr}: {e}")));
            }
        }
    }
    match (listeners.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no address to listen on",
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

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_means_both_families_and_duplicates_collapse() -> io::Result<()> {
        let addrs = resolve(&["*".into(), "0.0.0.0".into()], 8080)?;
        assert_eq!(addrs.len(), 2);
        assert!(addrs.iter().all(|a| a.port() == 8080));
        Ok(())
    }

    #[test]
    fn two_sockets_share_a_port() -> io::Result<()> {
        let a = bind_all(&["127.0.0.1".into()], 0)?;
        let port = a[0].local_addr()?.port();
        let b = bind_all(&["127.0.0.1".into()], port)?;
        assert_eq!(b[0].local_addr()?.port(), port);
        Ok(())
    }
}
