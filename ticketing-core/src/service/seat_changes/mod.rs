//! The live seat map: the changes of seats and places of each event, in outbox order, for
//! subscribers that keep a seat map current without reading it again (the example server streams
//! them as Server-Sent Events). docs/DESIGN.md, "The live seat map", argues the design.
//!
//! A [`SeatChangeFeed`] turns outbox entries into [`SeatChange`]s, each labelled with its entry's
//! sequence number, keeps the recent ones in a bounded ring for subscribers that resume after a
//! position, and hands new ones to live subscribers. Seats carry their new state (free, held,
//! sold) and general-admission zones a reading of their places, both absolute: applying a change
//! twice, or one older than the map it is applied to, is harmless, so a subscriber that
//! subscribes, then reads the seat map, then applies every change in order converges to the
//! repository's state. When the feed cannot give a subscriber every change after its position
//! (the position is older than what the ring keeps, the subscriber fell behind, the feed missed
//! entries), the subscription says [`SeatChangeItem::Reset`] instead of skipping: the subscriber
//! reads the seat map again.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::Result;
use crate::domain::{EventId, OutboxEntry, OutboxKind, ZoneCode};
use crate::ports::EventSink;

use super::Backends;
use super::catalog::EventCache;
use super::seat_map::{GeneralAvailability, SeatAvailability, SeatView};

/// Entries read from the repository per call of [`SeatChangeFeed::follow_outbox`].
const FOLLOW_BATCH: u32 = 500;

/// Longest pause of [`SeatChangeFeed::follow_outbox`] after failed reads in a row.
const FOLLOW_BACKOFF_CAP: Duration = Duration::from_secs(10);

/// The bounds of a [`SeatChangeFeed`]. `Default` gives production values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatChangeFeedConfig {
    /// Changes kept for subscribers that resume after a position (all events together); a
    /// position older than the oldest one kept is answered with a reset. 0 is taken as 1.
    pub retained: usize,
    /// Changes a live subscriber may fall behind by before it is reset (per event). 0 is taken
    /// as 1.
    pub live_buffer: usize,
    /// How far back a new subscription (one without a position) replays the event's changes
    /// before the live ones, by the time the feed received them. It covers a seat map that was
    /// read before the subscription started (a map reused for up to
    /// [`ServiceConfig::seat_map_max_age`](super::ServiceConfig::seat_map_max_age)) and the moment
    /// between a commit and the service's seat-lock update: a change in that span is replayed, and
    /// replaying a change the map already shows is harmless.
    pub fresh_replay: Duration,
}

/// The default [`SeatChangeFeedConfig::retained`]: at a sale's 1,000 orders a second, the last
/// ten seconds, about 4 MB of changes.
pub const DEFAULT_RETAINED_CHANGES: usize = 10_000;

impl Default for SeatChangeFeedConfig {
    fn default() -> Self {
        Self {
            retained: DEFAULT_RETAINED_CHANGES,
            live_buffer: 1_024,
            fresh_replay: Duration::from_secs(5),
        }
    }
}

/// What one outbox entry changed on an event's seat map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatChange {
    /// The outbox entry's sequence number: the change's position, increasing.
    pub seq: u64,
    /// The event.
    pub event: EventId,
    /// What happened to the order.
    pub kind: OutboxKind,
    /// The order's seats with their state after the change.
    pub seats: Vec<SeatView>,
    /// The general-admission zones the order has places in, as the seat lock counted them after
    /// the change (read once per zone per published batch, on the last change of the batch that
    /// touches the zone; other changes of the batch leave it out), by zone code.
    pub places: Vec<GeneralAvailability>,
}

/// What a [`SeatChangeSubscription`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatChangeItem {
    /// The next change of the event.
    Change(Arc<SeatChange>),
    /// The feed cannot give every change after the subscriber's position: read the seat map
    /// again, then apply the changes that follow. They start after `resume_after` (the position
    /// to resume from after a disconnection, `None` when the feed knows no position yet) and
    /// include the recent ones a new subscription replays.
    Reset {
        /// The position the changes that follow the reset come after.
        resume_after: Option<u64>,
    },
}

/// The seat and place changes of every event, from the outbox: an [`EventSink`] (for the
/// relay's [`FanOutSink`](super::FanOutSink)) that can also follow the repository's outbox by
/// itself ([`follow_outbox`](Self::follow_outbox)), so every server of a deployment has one.
///
/// It keeps nothing durable ([`high_water_mark`](EventSink::high_water_mark) is `None`), ignores
/// entries at or below the highest sequence number it has, and treats a jump in sequence numbers
/// as lost entries: every subscriber gets a reset.
pub struct SeatChangeFeed {
    hub: Arc<Hub>,
    backends: Backends,
    events: EventCache,
    /// One publisher at a time: the place readings of a batch are taken before its changes are
    /// published, and a second batch must not overtake the first.
    publishing: tokio::sync::Mutex<()>,
}

/// What the feed shares with its subscriptions.
struct Hub {
    config: SeatChangeFeedConfig,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// The highest sequence number received.
    top: Option<u64>,
    /// Every entry after it, up to `top`, was received and its change (if any) is in `ring`.
    floor: Option<u64>,
    ring: VecDeque<Retained>,
    /// The live subscribers, per event.
    live: HashMap<EventId, broadcast::Sender<Arc<SeatChange>>>,
}

struct Retained {
    received: Instant,
    change: Arc<SeatChange>,
}

impl SeatChangeFeed {
    /// A feed reading the place counts from `backends`' seat lock (and the zones from its
    /// catalog).
    pub fn new(backends: Backends, config: SeatChangeFeedConfig) -> Self {
        let config = SeatChangeFeedConfig {
            retained: config.retained.max(1),
            live_buffer: config.live_buffer.max(1),
            ..config
        };
        Self {
            hub: Arc::new(Hub {
                config,
                state: Mutex::new(FeedState {
                    top: None,
                    floor: None,
                    ring: VecDeque::new(),
                    live: HashMap::new(),
                }),
            }),
            backends,
            events: EventCache::default(),
            publishing: tokio::sync::Mutex::new(()),
        }
    }

    /// The highest sequence number the feed received (or started at), `None` before any.
    pub fn position(&self) -> Option<u64> {
        self.hub.lock().top
    }

    /// Starts the feed at `position` if it has none yet: the entries up to it happened before
    /// the feed, and a subscriber resuming at or after it is served exactly.
    pub fn start_at(&self, position: u64) {
        let mut state = self.hub.lock();
        if state.top.is_none() {
            state.top = Some(position);
            state.floor = Some(position);
        }
    }

    /// The changes of `event` after `after` (the SSE `Last-Event-ID`), then every new one as it
    /// comes. With `after` the subscription starts with exactly the retained changes after it,
    /// or with a [`SeatChangeItem::Reset`] when the feed does not hold all of them; without it,
    /// with the changes of the last [`fresh_replay`](SeatChangeFeedConfig::fresh_replay). No
    /// change is given twice or left out between the replay and the live ones.
    pub fn subscribe(&self, event: EventId, after: Option<u64>) -> SeatChangeSubscription {
        Hub::subscribe(&self.hub, event, after, false)
    }

    /// Reads the repository's outbox after the feed's position and publishes it to the feed,
    /// every `poll` (at once while it reads full batches), until `shutdown` completes. A feed
    /// without a position starts at the repository's newest entry. A failed read is logged and
    /// retried after a pause that doubles per failure (at most ten seconds).
    ///
    /// Every server can run one: it reads what the relay publishes, whichever server holds the
    /// relay's lease, from any repository (in memory, MySQL, PostgreSQL) and whatever the event
    /// sink.
    pub async fn follow_outbox(&self, poll: Duration, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let delay = match self.follow_once().await {
                Ok(read) if read >= FOLLOW_BATCH as usize => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    poll
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = poll
                        .saturating_mul(1 << failures.min(16))
                        .min(FOLLOW_BACKOFF_CAP.max(poll));
                    tracing::warn!(%error, failures, retry_in = ?delay, "following the outbox for seat changes failed");
                    delay
                }
            };
            // A zero timeout still polls `shutdown` once before it elapses.
            if tokio::time::timeout(delay, &mut shutdown).await.is_ok() {
                return;
            }
        }
    }

    /// One read of [`follow_outbox`](Self::follow_outbox): publishes the repository's outbox
    /// entries after the feed's position (up to 500) and answers how many it read.
    pub async fn follow_once(&self) -> Result<usize> {
        let tickets = self.backends.tickets();
        let after = match self.position() {
            Some(position) => position,
            None => {
                let head = tickets.outbox_head().await?.unwrap_or(0);
                self.start_at(head);
                self.position().unwrap_or(head)
            }
        };
        let entries = tickets.outbox_after(after, FOLLOW_BATCH).await?;
        self.publish(&entries).await?;
        Ok(entries.len())
    }

    /// The seat lock's count of `zone`'s places now; `None` when the lock has not loaded the
    /// event (the next change brings a reading) or the zone is not a general-admission zone of
    /// the event's venue.
    async fn reading(
        &self,
        event: EventId,
        zone: &ZoneCode,
    ) -> Result<Option<GeneralAvailability>> {
        let info = self.events.get(&**self.backends.catalog(), event).await?;
        let (Some(capacity), Some(layout)) = (info.capacities.get(zone), info.venue.zone(zone))
        else {
            return Ok(None);
        };
        let snapshot = self
            .backends
            .seat_lock()
            .zone_snapshot(event, layout, self.backends.now())
            .await?;
        Ok(snapshot.map(|snapshot| {
            let taken = snapshot
                .general
                .get(zone)
                .copied()
                .unwrap_or(0)
                .min(*capacity);
            GeneralAvailability {
                zone: zone.clone(),
                capacity: *capacity,
                taken,
                remaining: capacity - taken,
            }
        }))
    }
}

#[async_trait]
impl EventSink for SeatChangeFeed {
    /// Turns the entries above the feed's position into changes, reads the places of the
    /// general-admission zones they touch (once per zone per batch), and publishes them to the
    /// ring and the live subscribers. A failed reading fails the batch, which is published again.
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        let _turn = self.publishing.lock().await;
        let top = self.position();
        let fresh: Vec<&OutboxEntry> = entries
            .iter()
            .filter(|entry| top.is_none_or(|top| entry.seq > top))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let mut changes: Vec<(u64, Option<SeatChange>)> = fresh
            .iter()
            .map(|entry| (entry.seq, seat_change(entry)))
            .collect();
        // The last change of the batch touching each general-admission zone carries its reading.
        let mut last_touch: HashMap<(EventId, ZoneCode), usize> = HashMap::new();
        for (index, (_, change)) in changes.iter().enumerate() {
            if let Some(change) = change {
                for line in fresh[index].event.lines.iter().filter(|l| l.seat.is_none()) {
                    last_touch.insert((change.event, line.zone.clone()), index);
                }
            }
        }
        for ((event, zone), index) in last_touch {
            if let Some(reading) = self.reading(event, &zone).await?
                && let Some(change) = &mut changes[index].1
            {
                change.places.push(reading);
            }
        }
        let mut state = self.hub.lock();
        for (seq, change) in changes {
            state.receive(seq, change, &self.hub.config);
        }
        Ok(())
    }

    /// The feed is memory only: it cannot tell the relay of a loss.
    async fn high_water_mark(&self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// The change `entry` makes to its event's seats; `None` when it changes no seat's state (a
/// rejected payment, an extended hold).
fn seat_change(entry: &OutboxEntry) -> Option<SeatChange> {
    let state = match entry.event.kind {
        OutboxKind::TicketReserved => SeatAvailability::Held,
        OutboxKind::TicketPaid => SeatAvailability::Sold,
        OutboxKind::TicketExpired | OutboxKind::TicketCancelled | OutboxKind::TicketRefunded => {
            SeatAvailability::Free
        }
        // The event names only the released seats without an active ticket: free now.
        OutboxKind::ChannelSeatsReleased => SeatAvailability::Free,
        // A rejected payment changes no ticket; an extended hold keeps its seats held (the map
        // shows no deadlines).
        // A waiting-list offer's seats were shown held by its order's `TicketReserved`.
        OutboxKind::PaymentRejected | OutboxKind::HoldExtended | OutboxKind::WaitingListOffered => {
            return None;
        }
    };
    let seats = entry
        .event
        .lines
        .iter()
        .filter_map(|line| line.seat.clone())
        // Version-1 payloads have no lines, only the seats.
        .chain(if entry.event.lines.is_empty() {
            entry.event.seats.clone()
        } else {
            Vec::new()
        })
        .map(|seat| SeatView { seat, state })
        .collect();
    Some(SeatChange {
        seq: entry.seq,
        event: entry.event.event_id,
        kind: entry.event.kind,
        seats,
        places: Vec::new(),
    })
}

impl FeedState {
    /// Takes in entry `seq` and its change, in sequence order.
    fn receive(&mut self, seq: u64, change: Option<SeatChange>, config: &SeatChangeFeedConfig) {
        if self.top.is_some_and(|top| seq <= top) {
            return;
        }
        if let Some(top) = self.top
            && seq > top + 1
        {
            // Entries were lost: nobody can be served exactly across the hole. Dropping the
            // senders ends every live subscription, which then resets.
            tracing::warn!(
                from = top + 1,
                to = seq - 1,
                "the seat-change feed missed outbox entries; resetting its subscribers"
            );
            self.ring.clear();
            self.live.clear();
            self.floor = Some(seq - 1);
        }
        self.top = Some(seq);
        if self.floor.is_none() {
            self.floor = Some(seq - 1);
        }
        let Some(change) = change else { return };
        let change = Arc::new(change);
        if let Some(sender) = self.live.get(&change.event)
            && sender.send(change.clone()).is_err()
        {
            // Nobody listens to this event any more.
            self.live.remove(&change.event);
        }
        self.ring.push_back(Retained {
            received: Instant::now(),
            change,
        });
        while self.ring.len() > config.retained {
            if let Some(oldest) = self.ring.pop_front() {
                self.floor = Some(self.floor.unwrap_or(0).max(oldest.change.seq));
            }
        }
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A subscription to `event` after `after`; `reset` starts it with a reset whatever `after`.
    fn subscribe(
        hub: &Arc<Self>,
        event: EventId,
        after: Option<u64>,
        reset: bool,
    ) -> SeatChangeSubscription {
        let mut state = hub.lock();
        let of_event = |r: &&Retained| r.change.event == event;
        let exact = match (after, state.floor) {
            (Some(after), Some(floor)) if after >= floor && !reset => Some(after),
            _ => None,
        };
        let (replay, pending_reset, delivered): (VecDeque<_>, _, _) = match exact {
            Some(after) => (
                state
                    .ring
                    .iter()
                    .filter(of_event)
                    .filter(|r| r.change.seq > after)
                    .map(|r| r.change.clone())
                    .collect(),
                None,
                after,
            ),
            None => {
                // A window longer than the process has run covers everything retained.
                let since = Instant::now().checked_sub(hub.config.fresh_replay);
                let replay: VecDeque<_> = state
                    .ring
                    .iter()
                    .filter(of_event)
                    .filter(|r| since.is_none_or(|since| r.received >= since))
                    .map(|r| r.change.clone())
                    .collect();
                let resume_after = replay.front().map(|c| c.seq - 1).or(state.top);
                // A subscriber that gave a position the feed cannot serve is reset; a new one
                // simply starts.
                let reset = (after.is_some() || reset).then_some(resume_after);
                (replay, reset, 0)
            }
        };
        let live = state
            .live
            .entry(event)
            .or_insert_with(|| broadcast::channel(hub.config.live_buffer).0)
            .subscribe();
        drop(state);
        SeatChangeSubscription {
            hub: hub.clone(),
            event,
            pending_reset,
            replay,
            live,
            delivered,
        }
    }
}

/// The changes of one event for one subscriber: [`next`](Self::next) yields them in order.
/// Dropping it unsubscribes.
pub struct SeatChangeSubscription {
    hub: Arc<Hub>,
    event: EventId,
    pending_reset: Option<Option<u64>>,
    replay: VecDeque<Arc<SeatChange>>,
    live: broadcast::Receiver<Arc<SeatChange>>,
    /// The position of the last change given; live changes at or below it are skipped.
    delivered: u64,
}

impl SeatChangeSubscription {
    /// The event subscribed to.
    pub fn event(&self) -> EventId {
        self.event
    }

    /// The next change, waiting for it; or a reset when this subscriber fell more than
    /// [`live_buffer`](SeatChangeFeedConfig::live_buffer) changes behind or the feed lost
    /// entries (then the subscription starts again as a new one, with the recent changes).
    pub async fn next(&mut self) -> SeatChangeItem {
        loop {
            if let Some(resume_after) = self.pending_reset.take() {
                return SeatChangeItem::Reset { resume_after };
            }
            if let Some(change) = self.replay.pop_front() {
                self.delivered = change.seq;
                return SeatChangeItem::Change(change);
            }
            match self.live.recv().await {
                Ok(change) if change.seq <= self.delivered => {}
                Ok(change) => {
                    self.delivered = change.seq;
                    return SeatChangeItem::Change(change);
                }
                Err(RecvError::Lagged(_) | RecvError::Closed) => {
                    *self = Hub::subscribe(&self.hub, self.event, None, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
