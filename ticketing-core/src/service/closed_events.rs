//! `ClosedEventSweep`: drops the seat-lock and waiting-room state of events that are over.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Backends, ServiceConfig};
use crate::Result;
use crate::domain::{EventId, HoldExtension};

/// Event ids read from the catalog per call.
const PAGE: u32 = 100;

/// Forgets the seat lock's state of each event once nothing can need it any more: its sale
/// closed, plus its hold time (the last purchase's payment deadline; with hold extensions on, the
/// extension policy's cap if that is longer), plus the hold grace (the last hold's end). The lock's keys carry no TTL, so without this every event ever sold keeps
/// its seat hash in Redis. The event's waiting room goes with it (its queue may still hold every
/// buyer who was never admitted).
///
/// It walks the events in order of their sale's end from a cursor kept in memory: each call
/// forgets what became due since the last one. A new sweep (a restart) walks from the first
/// event again, which only repeats deletes of absent keys. A read of a forgotten event (a late
/// seat map) rebuilds its state from the repository, like after a Redis data loss, and that
/// state stays until the next restart's walk.
pub struct ClosedEventSweep {
    backends: Backends,
    grace: TimeDelta,
    /// The extension policy, which can move the last payment deadline past the hold time.
    extension: HoldExtension,
    /// The (sale end, id) of the last event forgotten.
    cursor: Mutex<Option<(DateTime<Utc>, EventId)>>,
}

impl std::fmt::Debug for ClosedEventSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosedEventSweep")
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl ClosedEventSweep {
    /// A sweep over `backends` with the hold grace of `config`.
    pub fn new(backends: Backends, config: &ServiceConfig) -> Self {
        Self {
            backends,
            grace: config.grace(),
            extension: config.hold_extension,
            cursor: Mutex::new(None),
        }
    }

    /// Forgets every event whose sale closed at least its longest hold plus the hold grace ago and
    /// that this sweep has not forgotten yet; returns how many it forgot. It stops at the first
    /// event not yet due (a longer hold time than the next one's), so the cursor never passes
    /// an event that still needs its state.
    pub async fn forget_closed_events(&self) -> Result<u32> {
        let b = &self.backends;
        let now = b.now();
        let mut forgotten = 0;
        loop {
            let after = *self.cursor.lock().unwrap_or_else(|e| e.into_inner());
            let page = b
                .catalog
                .events_closed(after, now - self.grace, PAGE)
                .await?;
            for id in &page {
                let event = b.catalog.event(*id).await?.ok_or_else(|| {
                    crate::Error::internal(format!("closed event {id} is not in the catalog"))
                })?;
                let last_deadline = self.extension.longest_hold(event.hold_time());
                if event.sale_closes() + last_deadline + self.grace > now {
                    return Ok(forgotten);
                }
                b.seat_lock.forget(*id).await?;
                b.waiting_room.forget(*id).await?;
                forgotten += 1;
                *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((event.sale_closes(), *id));
            }
            if page.len() < PAGE as usize {
                return Ok(forgotten);
            }
        }
    }
}
