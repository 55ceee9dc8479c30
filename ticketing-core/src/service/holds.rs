//! Talking to the seat lock: holding with a rebuild when the lock lost its state, and the source a
//! rebuild reads from.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{EventId, Order, OrderId, TicketId, TicketStatus, Zone, ZoneCode};
use crate::ports::{
    ActiveHold, BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldPage,
    HoldRequest, HoldSource, LockSnapshot, SeatLock, TicketRepository,
};
use crate::{Error, Result};

/// Most outbox entries a rebuild's catch-up reads; a longer gap is left to the deadlines.
const CATCH_UP_LIMIT: u32 = 10_000;

/// Rebuilds seat-lock state from the repository's active tickets, read in pages of
/// [`ServiceConfig::rebuild_page`](super::ServiceConfig::rebuild_page) tickets by ticket id: unpaid
/// tickets are held until their deadline + grace, paid ones are sold.
///
/// It also notes the outbox head before reading the first page, so that the rebuilder can catch up afterwards
/// with the orders that changed while the lock was being rebuilt (a payment whose `mark_sold`
/// found the event not loaded, an order committed after the read).
///
/// The services make their own; build one to reload a lock by hand (e.g.
/// `RedisSeatLock::reload` after repairing Redis), then call [`RepositoryHolds::catch_up`].
/// To load an event before an on-sale, [`TicketService::load_seat_lock`](super::TicketService::load_seat_lock)
/// is simpler.
pub struct RepositoryHolds {
    tickets: Arc<dyn TicketRepository>,
    grace: TimeDelta,
    capacities: HashMap<ZoneCode, u32>,
    page_size: u32,
    read_at: Mutex<Option<u64>>,
}

impl RepositoryHolds {
    /// A source over `tickets`; `grace` is the services' [`hold_grace`](super::ServiceConfig::hold_grace)
    /// and `capacities` are the event's general-admission zone capacities.
    pub fn new(
        tickets: Arc<dyn TicketRepository>,
        grace: Duration,
        capacities: HashMap<ZoneCode, u32>,
    ) -> Self {
        Self {
            tickets,
            grace: super::grace_span(grace),
            capacities,
            page_size: super::DEFAULT_REBUILD_PAGE,
            read_at: Mutex::new(None),
        }
    }

    /// Reads `tickets` active tickets per page instead of the default
    /// ([`ServiceConfig::rebuild_page`](super::ServiceConfig::rebuild_page)); 0 is taken as 1.
    #[must_use]
    pub fn with_page_size(mut self, tickets: u32) -> Self {
        self.page_size = tickets.max(1);
        self
    }

    /// After this source was read by a rebuild (the services call it right after
    /// [`SeatLock::rebuild`]): mirrors into the lock the current state of every
    /// order of `event` that changed since the read began. Orders are read again from the
    /// repository, so the lock converges to the truth whatever order the changes came in.
    /// Failures are logged: the rebuild itself succeeded, and deadlines bound what is missed.
    pub async fn catch_up(&self, lock: &dyn SeatLock, event: EventId, now: DateTime<Utc>) {
        let Some(mark) = self
            .read_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return; // Another caller rebuilt, or the repository keeps no outbox head.
        };
        if let Err(error) = self.try_catch_up(lock, event, mark, now).await {
            tracing::warn!(%event, %error, "catching up after a seat-lock rebuild failed");
        }
    }

    async fn try_catch_up(
        &self,
        lock: &dyn SeatLock,
        event: EventId,
        mark: u64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let changed: BTreeSet<OrderId> = self
            .tickets
            .outbox_after(mark, CATCH_UP_LIMIT)
            .await?
            .into_iter()
            .filter(|entry| entry.event.event_id == event)
            .map(|entry| entry.event.order_id)
            .collect();
        for id in changed {
            if let Some(order) = self.tickets.order(id).await? {
                mirror_order(lock, &order, &self.capacities, self.grace, now).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl HoldSource for RepositoryHolds {
    async fn active_holds(&self, event: EventId, after: Option<TicketId>) -> Result<HoldPage> {
        if after.is_none() {
            // A new pass: what changes from here on is caught up with afterwards.
            let head = self.tickets.outbox_head().await?;
            *self.read_at.lock().unwrap_or_else(|e| e.into_inner()) = head;
        }
        let tickets = self
            .tickets
            .active_tickets_page(event, after, self.page_size)
            .await?;
        let next = match tickets.last() {
            Some(last) if tickets.len() >= self.page_size as usize => Some(last.id),
            _ => None,
        };
        let mut holds = Vec::with_capacity(tickets.len());
        let mut general: HashMap<(OrderId, ZoneCode), ActiveHold> = HashMap::new();
        for ticket in tickets {
            let until = match ticket.status {
                TicketStatus::Paid => None,
                _ => Some(ticket.expires_at + self.grace),
            };
            match ticket.seat {
                Some(seat) => holds.push(ActiveHold {
                    order: ticket.order_id,
                    item: HoldItem::Seat(seat),
                    until,
                }),
                None => {
                    let capacity = self
                        .capacities
                        .get(&ticket.zone)
                        .copied()
                        .unwrap_or(u32::MAX);
                    let entry = general
                        .entry((ticket.order_id, ticket.zone.clone()))
                        .or_insert(ActiveHold {
                            order: ticket.order_id,
                            item: HoldItem::General {
                                zone: ticket.zone,
                                quantity: 0,
                                capacity,
                            },
                            until,
                        });
                    if let HoldItem::General { quantity, .. } = &mut entry.item {
                        *quantity += 1;
                    }
                }
            }
        }
        holds.extend(general.into_values());
        Ok(HoldPage { holds, next })
    }
}

/// Makes the lock show `order` as the repository has it now: unpaid → held until its deadline +
/// `grace`, paid → sold, terminal → released. Idempotent, so it can be repeated in any order.
pub(crate) async fn mirror_order(
    lock: &dyn SeatLock,
    order: &Order,
    capacities: &HashMap<ZoneCode, u32>,
    grace: TimeDelta,
    now: DateTime<Utc>,
) -> Result<()> {
    let items = items_of(order, capacities);
    if order.status.is_terminal() {
        return lock.release(order.event_id, order.id, &items).await;
    }
    let hold = HoldRequest {
        event: order.event_id,
        order: order.id,
        items: items.clone(),
        now,
        until: order.expires_at + grace,
    };
    let outcome = lock.hold(&hold).await?;
    if order.status == TicketStatus::Paid {
        lock.mark_sold(order.event_id, order.id, &items).await?;
    } else if outcome != HoldOutcome::Held {
        tracing::debug!(order = %order.id, ?outcome, "could not re-hold an unpaid order");
    }
    Ok(())
}

/// The hold items of an existing order: one per seat, or one per general-admission zone.
pub(crate) fn items_of(order: &Order, capacities: &HashMap<ZoneCode, u32>) -> Vec<HoldItem> {
    let mut items = Vec::new();
    let mut general: HashMap<ZoneCode, u32> = HashMap::new();
    for ticket in &order.tickets {
        match &ticket.seat {
            Some(seat) => items.push(HoldItem::Seat(seat.clone())),
            None => *general.entry(ticket.zone.clone()).or_default() += 1,
        }
    }
    items.extend(general.into_iter().map(|(zone, quantity)| {
        let capacity = capacities.get(&zone).copied().unwrap_or(u32::MAX);
        HoldItem::General {
            zone,
            quantity,
            capacity,
        }
    }));
    items
}

/// Holds through the lock, rebuilding it from the repository when it answers `NotLoaded`. The
/// rebuild source is made only then (one per rebuild, so its catch-up mark is its own): the
/// common path, a hold that wins or loses, allocates nothing for it.
pub(crate) async fn hold_with_rebuild(
    lock: &dyn SeatLock,
    source: impl Fn() -> RepositoryHolds,
    request: &HoldRequest,
    attempts: u32,
) -> Result<HoldOutcome> {
    let ask = || async {
        Ok(match lock.hold(request).await? {
            HoldOutcome::NotLoaded => None,
            outcome => Some(outcome),
        })
    };
    ask_with_rebuild(lock, source, request.event, request.now, attempts, ask).await
}

/// [`hold_with_rebuild`] for a best-available hold.
pub(crate) async fn best_available_with_rebuild(
    lock: &dyn SeatLock,
    source: impl Fn() -> RepositoryHolds,
    request: &BestAvailableRequest,
    attempts: u32,
) -> Result<BestAvailableOutcome> {
    let ask = || async {
        Ok(match lock.hold_best_available(request).await? {
            BestAvailableOutcome::NotLoaded => None,
            outcome => Some(outcome),
        })
    };
    ask_with_rebuild(lock, source, request.event, request.now, attempts, ask).await
}

/// Asks the lock (`None`: not loaded), rebuilding `event` from a fresh source and catching up
/// after each `None`, at most `attempts` times.
async fn ask_with_rebuild<T, Fut>(
    lock: &dyn SeatLock,
    source: impl Fn() -> RepositoryHolds,
    event: EventId,
    now: DateTime<Utc>,
    attempts: u32,
    ask: impl Fn() -> Fut,
) -> Result<T>
where
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    for _ in 0..=attempts {
        match ask().await? {
            Some(answer) => return Ok(answer),
            None => {
                tracing::info!(%event, "seat lock not loaded, rebuilding from the repository");
                let source = source();
                lock.rebuild(event, &source).await?;
                source.catch_up(lock, event, now).await;
            }
        }
    }
    Err(not_loaded(event))
}

/// The lock's snapshot of an event, or of one `zone` of it, rebuilding it first when it is not
/// loaded.
pub(crate) async fn snapshot_with_rebuild(
    lock: &dyn SeatLock,
    source: impl Fn() -> RepositoryHolds,
    event: EventId,
    zone: Option<&Zone>,
    now: DateTime<Utc>,
    attempts: u32,
) -> Result<LockSnapshot> {
    for _ in 0..=attempts {
        let snapshot = match zone {
            Some(zone) => lock.zone_snapshot(event, zone, now).await?,
            None => lock.snapshot(event, now).await?,
        };
        match snapshot {
            Some(snapshot) => return Ok(snapshot),
            None => {
                let source = source();
                lock.rebuild(event, &source).await?;
                source.catch_up(lock, event, now).await;
            }
        }
    }
    Err(not_loaded(event))
}

fn not_loaded(event: EventId) -> Error {
    Error::unavailable(
        "seat-lock",
        format!("the seat lock of event {event} stays unloaded after rebuilding"),
    )
}
