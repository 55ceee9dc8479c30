//! The eviction-policy check: a Redis that may evict keys without a TTL can silently empty a
//! seat lock that still says it is loaded.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::{ErrorKind, ServerErrorKind};
use ticketing_core::{Error, Result};

use crate::error::RedisLockError;

/// Checks that Redis' `maxmemory-policy` cannot evict the seat lock's keys, and returns the
/// policy (`None` when Redis would not say).
///
/// The lock's keys carry no TTL. Under an `allkeys-*` policy a full Redis may evict an event's
/// seat hash while its `loaded` marker stays: the lock then shows held and sold seats as free,
/// and since the event still counts as loaded nothing rebuilds it. Buyers are let through to
/// seats that are gone (the database refuses the second sale, but only after a wasted purchase,
/// and the seat map shows them free). Such a policy is [`Error::Config`] naming
/// `maxmemory-policy`. `noeviction` (writes fail when Redis is full, which the lock reports as
/// [`Error::Unavailable`]) and the `volatile-*` policies (they evict only keys with a TTL: here
/// at most a rebuild lock, which lapses anyway) are accepted.
///
/// `conn` is a [`RedisConnection`](crate::RedisConnection) or any redis-rs async connection.
/// On a Redis Cluster the node the command is routed to answers; give every node the same
/// policy.
///
/// Managed Redis services often refuse `CONFIG`: then a warning is logged and the check passes,
/// since the policy cannot be known (set it in the service's console). A connection failure is
/// [`Error::Unavailable`].
pub async fn check_eviction_policy<C>(conn: &C) -> Result<Option<String>>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    let reply: redis::RedisResult<HashMap<String, String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut conn.clone())
        .await;
    let policy = match reply {
        Ok(mut settings) => settings.remove("maxmemory-policy"),
        Err(e) if !refused(&e) => return Err(RedisLockError::from(e).into()),
        Err(e) => {
            tracing::warn!(error = %e, "Redis refused CONFIG GET maxmemory-policy: cannot check that it never evicts the seat lock's keys; make sure it is noeviction or volatile-*");
            return Ok(None);
        }
    };
    match policy {
        Some(policy) if evicts_any_key(&policy) => Err(Error::config(
            "maxmemory-policy",
            format!(
                "Redis runs with maxmemory-policy {policy}, which may evict the seat lock's keys \
                 (they have no TTL): an event's seats could vanish while it still counts as \
                 loaded, letting buyers through to taken seats. Set it to noeviction (or a \
                 volatile-* policy)"
            ),
        )),
        Some(policy) => Ok(Some(policy)),
        None => {
            tracing::warn!(
                "Redis did not report its maxmemory-policy: cannot check that it never evicts the seat lock's keys"
            );
            Ok(None)
        }
    }
}

/// Whether Redis answered that it will not run the command: `CONFIG` renamed away (an unknown
/// command) or denied by an ACL. Anything else (I/O, a timeout, Redis still loading) is a
/// failure to reach it.
fn refused(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ResponseError | ServerErrorKind::NoPerm)
            | ErrorKind::Extension
    )
}

/// Whether `policy` may evict keys without a TTL.
fn evicts_any_key(policy: &str) -> bool {
    policy.to_ascii_lowercase().starts_with("allkeys-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allkeys_policies_evict_keys_without_a_ttl() {
        for policy in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "ALLKEYS-LRU",
        ] {
            assert!(evicts_any_key(policy), "{policy}");
        }
        for policy in [
            "noeviction",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            assert!(!evicts_any_key(policy), "{policy}");
        }
    }
}
