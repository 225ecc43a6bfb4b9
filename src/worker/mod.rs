//! The background worker processes: the supervisor and the http workers.

pub mod config;
pub mod http;
pub mod signals;
pub mod supervisor;
