//! The flash-sale load generator and its parts: a venue of S seats, N purchase attempts at
//! concurrency C against the real purchase flow (library-direct or over HTTP), a latency and
//! throughput report, an oversell audit counted with SQL, and the raw limits of Redis and
//! MariaDB re-measured in the same run.
//!
//! The binary is `flash-sale` (`cargo run --release -p ticketing-bench -- --help`); the criterion
//! benches (seat locks; in-memory adapter calls as an event fills up) are in `benches/`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod audit;
pub mod counting;
pub mod http;
pub mod raw;
pub mod report;
pub mod scenario;
pub mod setup;

/// The MySQL/MariaDB server of a run when `TICKETING_MYSQL_URL` is not set.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The Redis server of a run when `TICKETING_REDIS_URL` is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The MySQL/MariaDB server URL: `TICKETING_MYSQL_URL` or [`DEFAULT_MYSQL_URL`].
pub fn mysql_url() -> String {
    std::env::var("TICKETING_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.into())
}

/// The Redis server URL: `TICKETING_REDIS_URL` or [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var("TICKETING_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into())
}

/// Any failure of the load generator, with a message for the terminal.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
