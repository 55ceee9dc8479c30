//! The flash-sale load generator and its parts: a venue of S seats (or a general-admission zone),
//! N purchase attempts at concurrency C against the real purchase flow (library-direct, over HTTP
//! to the router in process, or over HTTP to separately started servers with `--target`),
//! optionally paid through the signed webhook, a latency and throughput report, an oversell
//! audit (SQL, repository or read API), and the raw limits of Redis and MariaDB re-measured in
//! the same run.
//!
//! The binary is `flash-sale` (`cargo run --release -p ticketing-bench -- --help`); the criterion
//! benches (seat locks; in-memory adapter calls as an event fills up) are in `benches/`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod audit;
pub mod client;
pub mod counting;
pub mod growth;
pub mod http;
pub mod raw;
pub mod rejection;
pub mod remote;
pub mod report;
pub mod scenario;
pub mod seat_map_readers;
pub mod setup;
pub mod webhook;

/// The MySQL/MariaDB server of a run when `TICKETING_MYSQL_URL` is not set.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The PostgreSQL server of a run when `TICKETING_POSTGRES_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The Redis server of a run when `TICKETING_REDIS_URL` is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The MySQL/MariaDB server URL: `TICKETING_MYSQL_URL` or [`DEFAULT_MYSQL_URL`].
pub fn mysql_url() -> String {
    std::env::var("TICKETING_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.into())
}

/// The PostgreSQL server URL: `TICKETING_POSTGRES_URL` or [`DEFAULT_POSTGRES_URL`].
pub fn postgres_url() -> String {
    std::env::var("TICKETING_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// The Redis server URL: `TICKETING_REDIS_URL` or [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var("TICKETING_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into())
}

/// Any failure of the load generator, with a message for the terminal.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
