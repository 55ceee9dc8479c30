//! How a [`RedisSeatLock`](crate::RedisSeatLock) names its keys and paces its rebuilds.

use std::time::Duration;

use ticketing_core::{Error, Result};

/// Settings of a [`RedisSeatLock`](crate::RedisSeatLock).
///
/// ```
/// use ticketing_redis::RedisSeatLockConfig;
///
/// let config = RedisSeatLockConfig { key_prefix: "tenant-a:".into(), ..Default::default() };
/// assert_eq!(config.key_prefix, "tenant-a:");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSeatLockConfig {
    /// Put in front of every key, e.g. `"tkt:"`, so tenants and tests sharing one Redis stay apart.
    /// It must not contain `{` or `}`: the first `{…}` of a key is its Redis Cluster hash tag,
    /// which has to be the event's `{ev:<id>}`.
    pub key_prefix: String,
    /// How long the rebuild lease lives without being renewed. A rebuild renews it with every
    /// chunk it writes, so it must cover reading one page of active tickets from the database
    /// (`ServiceConfig::rebuild_page`) and writing one chunk; a rebuilder that stalls longer loses
    /// the lease to a waiter, and a dead rebuilder's lease lapses after it.
    pub rebuild_lock_ttl: Duration,
    /// Most holds (seats, or one order's places in a zone) one script call of a rebuild writes,
    /// at least 1. Redis runs one script at a time, so this bounds how long a rebuild holds up
    /// every other call of the server: a chunk's work is linear in its holds (one `HSETNX` per
    /// seat). At the default of 2,000, rebuilding 500,000 active tickets of a 1,000,000-seat
    /// event took 250 chunk calls of 3.6 ms at the median in `SLOWLOG` and 58 ms at the longest,
    /// on a shared 2-core machine whose other work held the CPU (`tests/large_rebuild.rs` in the
    /// workspace, `--ignored`). The rebuild's other scripts are O(1).
    pub rebuild_chunk: usize,
    /// How long [`rebuild`](ticketing_core::ports::SeatLock::rebuild) waits for another caller's
    /// rebuild (or for a dead holder's lock to lapse) before giving up with
    /// [`Error::Unavailable`].
    pub rebuild_wait: Duration,
    /// Pause between two looks at the event while waiting for another caller's rebuild.
    pub rebuild_poll_interval: Duration,
}

impl Default for RedisSeatLockConfig {
    fn default() -> Self {
        Self {
            key_prefix: "tkt:".into(),
            rebuild_lock_ttl: Duration::from_secs(3),
            rebuild_chunk: 2_000,
            rebuild_wait: Duration::from_secs(5),
            rebuild_poll_interval: Duration::from_millis(25),
        }
    }
}

impl RedisSeatLockConfig {
    /// Checks the settings: a prefix without braces, a non-zero lock TTL (at least 1 ms), a
    /// non-zero chunk and a non-zero poll interval.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.key_prefix.contains(['{', '}']) {
            return Err(Error::config(
                "key_prefix",
                "must not contain { or } (the event's hash tag must be the first one in each key)",
            ));
        }
        if self.rebuild_lock_ttl < Duration::from_millis(1) {
            return Err(Error::config("rebuild_lock_ttl", "must be at least 1 ms"));
        }
        if self.rebuild_chunk == 0 {
            return Err(Error::config("rebuild_chunk", "must be at least 1"));
        }
        if self.rebuild_poll_interval.is_zero() {
            return Err(Error::config("rebuild_poll_interval", "must not be zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_in_the_prefix_are_refused() {
        let config = RedisSeatLockConfig {
            key_prefix: "a{b}:".into(),
            ..Default::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::Config {
                setting: "key_prefix",
                ..
            })
        ));
        assert!(RedisSeatLockConfig::default().validate().is_ok());
    }

    #[test]
    fn zero_durations_are_refused() {
        let ttl = RedisSeatLockConfig {
            rebuild_lock_ttl: Duration::ZERO,
            ..Default::default()
        };
        assert!(ttl.validate().is_err());
        let poll = RedisSeatLockConfig {
            rebuild_poll_interval: Duration::ZERO,
            ..Default::default()
        };
        assert!(poll.validate().is_err());
        let chunk = RedisSeatLockConfig {
            rebuild_chunk: 0,
            ..Default::default()
        };
        assert!(matches!(
            chunk.validate(),
            Err(Error::Config {
                setting: "rebuild_chunk",
                ..
            })
        ));
    }
}
