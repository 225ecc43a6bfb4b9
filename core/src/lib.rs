//! pg_rest's pure pipeline stages. Nothing here touches PostgreSQL: every function is a
//! function of its input, unit-tested with plain `cargo test -p pg_rest_core`.
//!
//! Stages, in request order (DESIGN.md "One request"):
//! `http1` (bytes ⇄ requests/responses) → `api_request` (URL, headers → what is asked) →
//! `plan` (resolve against the `schema_cache` model) → `sql` (one parameterized statement) →
//! `response` (status, headers, body) → `jsonp` (a JSON body wrapped for `?callback=`).
//! `error` is the one error type all stages share.

pub mod api_request;
pub mod auth;
pub mod conninfo;
pub mod context;
pub mod cors;
pub mod error;
pub mod forward;
pub mod fuzzy;
pub mod http1;
pub mod jsonp;
pub mod lru;
pub mod openapi;
pub mod pgwire;
pub mod plan;
pub mod preferences;
pub mod range;
pub mod realtime;
pub mod request;
pub mod response;
pub mod schema_cache;
pub mod settings;
pub mod sql;
pub mod stream;
pub mod websocket;
