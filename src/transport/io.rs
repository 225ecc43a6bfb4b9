//! The byte stream under a connection's protocol: plain TCP or TLS (rustls), shared between
//! the connection, which registers it with the poller, and the protocol layer that reads and
//! writes it (the `h2` crate keeps its own handle to it).

use crate::transport::tls::TlsStream;
use mio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

/// The byte stream of one connection.
pub enum Transport {
    Plain(TcpStream),
    Tls {
        stream: Box<TlsStream>,
        /// Write side to shut once close_notify has reached the socket.
        fin_pending: bool,
    },
}

impl Transport {
    pub fn tls(stream: TlsStream) -> Transport {
        Transport::Tls {
            stream: Box::new(stream),
            fin_pending: false,
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Transport::Plain(s) => s.as_raw_fd(),
            Transport::Tls { stream, .. } => stream.tcp().as_raw_fd(),
        }
    }

    /// Stops sending: a FIN after what is written (over TLS, after close_notify).
    pub fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Transport::Tls {
                stream,
                fin_pending,
            } => match stream.send_close_notify() {
                Ok(true) | Err(_) => {
                    let _ = stream.tcp().shutdown(Shutdown::Write);
                }
                Ok(false) => *fin_pending = true,
            },
        }
    }

    /// Writes what the transport itself holds (TLS records), and a FIN waiting for them.
    pub fn flush_transport(&mut self) {
        if let Transport::Tls {
            stream,
            fin_pending,
        } = self
        {
            let flushed = !stream.wants_write() || matches!(stream.flush_tls(), Ok(true) | Err(_));
            if flushed && std::mem::take(fin_pending) {
                let _ = stream.tcp().shutdown(Shutdown::Write);
            }
        }
    }

    /// Bytes of the transport's own (TLS records) still waiting for the socket.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls { stream, .. } => stream.wants_write(),
        }
    }
}

impl Transport {
    /// Reads (plaintext, over TLS), keeping `drain` (see [`Drain`]).
    fn read_with(&mut self, buf: &mut [u8], drain: &Drain) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => {
                if drain.empty.get() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = s.read(buf)?;
                drain.saw_read(n, buf.len());
                Ok(n)
            }
            Transport::Tls { stream, .. } => stream.read_with(buf, drain),
        }
    }
}

/// What the reads of one `drive` learnt of the socket. A read that returns less than it asked
/// for found the socket empty, and bytes arriving later bring a new poller edge (and a new
/// `drive`), so reading it again before then would only cost a syscall returning
/// `WouldBlock` (one per request, before this). Not trusted once the poller reports the peer
/// closing: its FIN may sit behind the bytes just read and brings no edge of its own.
#[derive(Debug)]
pub struct Drain {
    empty: Cell<bool>,
    trusted: Cell<bool>,
}

impl Drain {
    pub fn trusted() -> Drain {
        Drain {
            empty: Cell::new(false),
            trusted: Cell::new(true),
        }
    }

    /// Never concludes anything (reads until `WouldBlock`).
    pub fn untrusted() -> Drain {
        Drain {
            empty: Cell::new(false),
            trusted: Cell::new(false),
        }
    }

    /// The socket gave `n` of the `asked` bytes.
    pub fn saw_read(&self, n: usize, asked: usize) {
        if self.trusted.get() && n > 0 && n < asked {
            self.empty.set(true);
        }
    }

    /// The socket was found empty in this drive.
    pub fn is_empty(&self) -> bool {
        self.empty.get()
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls { stream, .. } => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls { stream, .. } => stream.flush(),
        }
    }
}

/// One transport, held by the connection and by its protocol layer. Single-threaded: a
/// worker's event loop is one thread, and no borrow outlives one read or write call.
#[derive(Clone)]
pub struct Shared(Rc<RefCell<Transport>>, Rc<Drain>);

impl Shared {
    pub fn new(t: Transport) -> Shared {
        Shared(Rc::new(RefCell::new(t)), Rc::new(Drain::trusted()))
    }

    /// A `drive` begins: an edge may have brought bytes, so the socket is read again.
    pub fn begin_drive(&self) {
        self.1.empty.set(false);
    }

    /// The poller saw the peer close (or the socket fail): read until `WouldBlock` from now.
    pub fn peer_closing(&self) {
        self.1.trusted.set(false);
        self.1.empty.set(false);
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.borrow().raw_fd()
    }

    pub fn shutdown_write(&self) {
        self.0.borrow_mut().shutdown_write()
    }

    pub fn wants_write(&self) -> bool {
        self.0.borrow().wants_write()
    }

    pub fn flush_transport(&self) {
        self.0.borrow_mut().flush_transport()
    }

    /// Reads, without a syscall when this drive already found the socket empty (see
    /// [`Drain`]).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read_with(buf, &self.1)
    }

    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }

    pub fn flush(&self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// What a protocol crate's I/O adapter saw (`h2` and `tungstenite` own their adapters), read
/// by the connection between polls.
#[derive(Default, Clone)]
pub struct Counters {
    bytes_in: Rc<Cell<u64>>,
    bytes_out: Rc<Cell<u64>>,
    /// The last write met a full socket: ask the poller for WRITABLE.
    write_blocked: Rc<Cell<bool>>,
}

impl Counters {
    pub fn read(&self, n: usize) {
        self.bytes_in.set(self.bytes_in.get() + n as u64);
    }

    pub fn wrote(&self, n: usize) {
        self.write_blocked.set(false);
        self.bytes_out.set(self.bytes_out.get() + n as u64);
    }

    pub fn blocked(&self) {
        self.write_blocked.set(true);
    }

    pub fn write_blocked(&self) -> bool {
        self.write_blocked.get()
    }

    /// Bytes in and out since the last call.
    pub fn take_counts(&self) -> (u64, u64) {
        (self.bytes_in.replace(0), self.bytes_out.replace(0))
    }
}
