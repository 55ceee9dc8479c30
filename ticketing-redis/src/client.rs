//! Opening a Redis client the way every connection of this crate needs it.

use redis::io::tcp::TcpSettings;
use redis::{Client, IntoConnectionInfo};
use ticketing_core::{Error, Result};

/// A client for `url` whose TCP connections send each command at once (`TCP_NODELAY`).
///
/// Our connections multiplex the commands of many tasks. With Nagle's algorithm on (redis-rs'
/// default), a command written while an earlier one is unacknowledged waits for that ACK, which
/// the peer may delay by up to 200 ms: on loopback this made about one purchase in ten take
/// 200 ms. A malformed URL is [`Error::Config`].
pub(crate) fn open(url: &str) -> Result<Client> {
    let invalid = |e: redis::RedisError| Error::config("redis_url", e.to_string());
    let info = url
        .into_connection_info()
        .map_err(invalid)?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    Client::open(info).map_err(invalid)
}
