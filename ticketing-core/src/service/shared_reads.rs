//! One read shared by every caller that asks for the same thing within a short time: a stampede
//! of seat-map readers costs the seat lock one snapshot, not one per reader.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::{Error, Result};

/// Results by key, each shared for `max_age` from the moment its read began: callers that ask
/// while the read runs wait for it, and callers that ask afterwards, within `max_age`, get its
/// result without reading. A failed read is shared with the callers that waited for it, and the
/// next caller reads again. With a zero `max_age` every caller reads for itself.
///
/// Ages are measured on tokio's monotonic clock, not the services' `Clock`: this is how long a
/// cached answer may be reused, a property of the process, like a timeout, not a domain time.
pub(crate) struct SharedReads<K, V> {
    max_age: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

struct Slot<V> {
    started: Instant,
    result: Arc<OnceCell<Result<V, Arc<Error>>>>,
}

impl<K: Eq + Hash, V: Clone> SharedReads<K, V> {
    pub(crate) fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The result of `read` for `key`: a result whose read began less than `max_age` ago, or the
    /// one running now, or a new read.
    pub(crate) async fn get<F>(&self, key: K, read: F) -> Result<V>
    where
        F: Future<Output = Result<V>>,
    {
        if self.max_age.is_zero() {
            return read.await;
        }
        let cell = self.slot(key);
        match cell
            .get_or_init(|| async { read.await.map_err(Arc::new) })
            .await
        {
            Ok(value) => Ok(value.clone()),
            Err(error) => Err(shared_failure(error)),
        }
    }

    /// Drops the result kept for `key`, so the next caller reads again: for a caller that
    /// learned the value changed (an event in the outbox said so).
    pub(crate) fn forget(&self, key: &K) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.remove(key);
    }

    /// The cell of a fresh slot for `key`, made (and stale slots dropped) when there is none.
    fn slot(&self, key: K) -> Arc<OnceCell<Result<V, Arc<Error>>>> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |slot: &Slot<V>| {
            now.duration_since(slot.started) < self.max_age
                && !matches!(slot.result.get(), Some(Err(_)))
        };
        if let Some(slot) = slots.get(&key).filter(|slot| fresh(slot)) {
            return slot.result.clone();
        }
        slots.retain(|_, slot| fresh(slot));
        let result = Arc::new(OnceCell::new());
        slots.insert(
            key,
            Slot {
                started: now,
                result: result.clone(),
            },
        );
        result
    }
}

/// A failure handed to every caller that shared the read: the same kind (so a `503` stays a
/// `503`), with the original error as its source.
fn shared_failure(error: &Arc<Error>) -> Error {
    match &**error {
        Error::Unavailable { adapter, .. } => Error::Unavailable {
            adapter,
            source: Box::new(Shared(error.clone())),
        },
        Error::Backend { adapter, .. } => Error::Backend {
            adapter,
            source: Box::new(Shared(error.clone())),
        },
        Error::NotFound { what, id } => Error::NotFound {
            what,
            id: id.clone(),
        },
        Error::Config { setting, reason } => Error::Config {
            setting,
            reason: reason.clone(),
        },
        other => Error::internal(other.to_string()),
    }
}

/// The driver error of a shared [`Error::Unavailable`] or [`Error::Backend`].
#[derive(Debug)]
struct Shared(Arc<Error>);

impl Shared {
    fn driver(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        match &*self.0 {
            Error::Unavailable { source, .. } | Error::Backend { source, .. } => &**source,
            other => other,
        }
    }
}

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.driver(), f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.driver().source()
    }
}
