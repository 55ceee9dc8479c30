//! The start-up check of Redis' `maxmemory-policy`: `allkeys-*` policies may evict the lock's
//! keys (which have no TTL) and are refused; `noeviction` and `volatile-*` are accepted; a Redis
//! that refuses `CONFIG` (a managed service) is accepted with a warning.
//!
//! Each test changes the policy with `CONFIG SET`, so it runs on a `redis-server` of its own
//! rather than the shared one: other tests connecting meanwhile must not meet the policy. The
//! guard puts the policy back anyway, also when an assertion fails, so the check is never left
//! to see a policy of an earlier test.

mod common;

use common::*;
use ticketing_core::Error;
use ticketing_redis::redis::{self, aio::ConnectionManager};
use ticketing_redis::{RedisSeatLock, check_eviction_policy};

/// Sets `maxmemory-policy` and restores the one before on drop (also while a failed test
/// unwinds).
struct PolicyGuard {
    url: String,
    before: String,
}

impl PolicyGuard {
    async fn set(conn: &mut ConnectionManager, url: &str, policy: &str) -> Self {
        let before: (String, String) = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(conn)
            .await
            .expect("CONFIG GET");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .query_async(conn)
            .await
            .expect("CONFIG SET");
        Self {
            url: url.to_owned(),
            before: before.1,
        }
    }
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        // Synchronous, so it runs during unwinding too.
        let restored = redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection())
            .and_then(|mut conn| {
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory-policy")
                    .arg(&self.before)
                    .query::<()>(&mut conn)
            });
        if let Err(e) = restored {
            eprintln!("could not restore maxmemory-policy {}: {e}", self.before);
        }
    }
}

#[tokio::test]
async fn allkeys_policies_are_refused_with_a_config_error() {
    let server = PrivateRedis::start().await;
    let url = server.url();
    let mut conn = connect(&url).await;
    for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let _guard = PolicyGuard::set(&mut conn, &url, policy).await;
        let refused = RedisSeatLock::connect(&url, TestRedis::on(url.clone()).config()).await;
        match refused {
            Err(Error::Config { setting, reason }) => {
                assert_eq!(setting, "maxmemory-policy");
                assert!(reason.contains(policy), "{reason}");
                assert!(reason.contains("noeviction"), "says what to do: {reason}");
            }
            other => panic!("{policy}: expected Error::Config, got {other:?}"),
        }
        assert!(matches!(
            check_eviction_policy(&conn).await,
            Err(Error::Config { .. })
        ));
    }
}

#[tokio::test]
async fn noeviction_and_volatile_policies_are_accepted() {
    let server = PrivateRedis::start().await;
    let url = server.url();
    let mut conn = connect(&url).await;
    for policy in [
        "noeviction",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let _guard = PolicyGuard::set(&mut conn, &url, policy).await;
        let lock = RedisSeatLock::connect(&url, TestRedis::on(url.clone()).config())
            .await
            .unwrap_or_else(|e| panic!("{policy} is safe for the lock: {e}"));
        lock.ping_scripts().await.expect("the lock works");
        assert_eq!(
            check_eviction_policy(&conn).await.expect("checked"),
            Some(policy.to_owned())
        );
    }
}

#[tokio::test]
async fn a_redis_that_refuses_config_is_accepted() {
    // Managed Redis services rename or forbid CONFIG; the policy cannot be known there.
    let server = PrivateRedis::start_with(&["--rename-command", "CONFIG", ""]).await;
    let url = server.url();
    let conn = connect(&url).await;
    assert_eq!(
        check_eviction_policy(&conn).await.expect("not an error"),
        None
    );
    let lock = RedisSeatLock::connect(&url, TestRedis::on(url.clone()).config())
        .await
        .expect("connects without knowing the policy");
    lock.ping_scripts().await.expect("the lock works");
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_accepted() {
    let mut server = PrivateRedis::start().await;
    let conn = connect(&server.url()).await;
    server.kill();
    assert!(matches!(
        check_eviction_policy(&conn).await,
        Err(Error::Unavailable {
            adapter: "redis",
            ..
        })
    ));
}
