//! Transport: listening sockets, the event loop, and per-connection protocol state machines.

pub mod conn;
pub mod event_loop;
pub mod http1;
pub mod http2;
pub mod io;
pub mod listener;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod unavailable;
pub mod upstream;
pub mod websocket;
