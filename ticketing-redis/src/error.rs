//! The adapter's own failures, converted into the core [`Error`] at the port boundary.

use std::time::Duration;

use ticketing_core::Error;
use ticketing_core::domain::EventId;

/// What can go wrong inside the adapter.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisLockError {
    /// Redis refused or failed the command (connection, timeout, script error, OOM…).
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// A script answered something it never answers: a bug, not a backend failure.
    #[error("unexpected reply from the {script} script: {detail}")]
    Reply {
        script: &'static str,
        detail: String,
    },
    /// Another caller's rebuild did not finish in time (or its dead holder's lock did not lapse).
    #[error("the seat lock of event {event} was not rebuilt within {waited:?}")]
    RebuildTimedOut { event: EventId, waited: Duration },
}

impl RedisLockError {
    pub(crate) fn reply(script: &'static str, detail: impl Into<String>) -> Self {
        Self::Reply {
            script,
            detail: detail.into(),
        }
    }
}

impl From<RedisLockError> for Error {
    fn from(err: RedisLockError) -> Self {
        match err {
            RedisLockError::Reply { .. } => Error::internal(err.to_string()),
            RedisLockError::Redis(_) | RedisLockError::RebuildTimedOut { .. } => {
                Error::unavailable("redis", err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_failures_are_retryable_and_bad_replies_internal() {
        let io =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let err = Error::from(RedisLockError::from(io));
        assert!(matches!(
            err,
            Error::Unavailable {
                adapter: "redis",
                ..
            }
        ));
        assert!(err.is_retryable());
        let err = Error::from(RedisLockError::reply("hold", "nonsense"));
        assert!(matches!(err, Error::Internal { .. }));
    }
}
