//! How long a projection has been stuck before a gap in the sequence numbers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The gap a consumer last met (the sequence it expected) and since when, so that a gap that
/// outlasts `replay_after` without the model moving makes the consumer replay.
#[derive(Debug, Default)]
pub(crate) struct GapWatch {
    since: Mutex<Option<(u64, Instant)>>,
}

impl GapWatch {
    fn since(&self) -> std::sync::MutexGuard<'_, Option<(u64, Instant)>> {
        self.since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a gap before `expected` (the first time it is met).
    pub(crate) fn note(&self, expected: u64) {
        let mut since = self.since();
        if since.is_none_or(|(seq, _)| seq != expected) {
            *since = Some((expected, Instant::now()));
        }
    }

    /// Forgets the gap: the model moved.
    pub(crate) fn clear(&self) {
        *self.since() = None;
    }

    /// Whether a gap was met and has lasted `after` (and then forgets it).
    pub(crate) fn outlasted(&self, after: Duration) -> bool {
        let mut since = self.since();
        if since.is_some_and(|(_, at)| at.elapsed() >= after) {
            *since = None;
            return true;
        }
        false
    }
}
