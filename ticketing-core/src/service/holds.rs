//! Talking to the seat lock: holding with a rebuild when the lock lost its state, and the source a
//! rebuild reads from.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;

use crate::domain::{EventId, Order, OrderId, TicketStatus, ZoneCode};
use crate::ports::{
    ActiveHold, HoldItem, HoldOutcome, HoldRequest, HoldSource, LockSnapshot, SeatLock,
    TicketRepository,
};
use crate::{Error, Result};

/// Rebuilds seat-lock state from the repository's active tickets: unpaid tickets are held until
/// their deadline + grace, paid ones are sold.
pub struct RepositoryHolds {
    tickets: Arc<dyn TicketRepository>,
    grace: TimeDelta,
    capacities: HashMap<ZoneCode, u32>,
}

impl RepositoryHolds {
    /// A source over `tickets`; `capacities` are the event's general-admission zone capacities.
    pub fn new(
        tickets: Arc<dyn TicketRepository>,
        grace: TimeDelta,
        capacities: HashMap<ZoneCode, u32>,
    ) -> Self {
        Self {
            tickets,
            grace,
            capacities,
        }
    }
}

#[async_trait]
impl HoldSource for RepositoryHolds {
    async fn active_holds(&self, event: EventId) -> Result<Vec<ActiveHold>> {
        let tickets = self.tickets.active_tickets(event).await?;
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
        Ok(holds)
    }
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

/// Holds through the lock, rebuilding it from the repository when it answers `NotLoaded`.
pub(crate) async fn hold_with_rebuild(
    lock: &dyn SeatLock,
    source: &Arc<RepositoryHolds>,
    request: &HoldRequest,
    attempts: u32,
) -> Result<HoldOutcome> {
    for _ in 0..=attempts {
        match lock.hold(request).await? {
            HoldOutcome::NotLoaded => {
                tracing::info!(event = %request.event, "seat lock not loaded, rebuilding from the repository");
                lock.rebuild(request.event, source.clone()).await?;
            }
            outcome => return Ok(outcome),
        }
    }
    Err(not_loaded(request.event))
}

/// The lock's snapshot of an event, rebuilding it first when it is not loaded.
pub(crate) async fn snapshot_with_rebuild(
    lock: &dyn SeatLock,
    source: &Arc<RepositoryHolds>,
    event: EventId,
    now: chrono::DateTime<chrono::Utc>,
    attempts: u32,
) -> Result<LockSnapshot> {
    for _ in 0..=attempts {
        match lock.snapshot(event, now).await? {
            Some(snapshot) => return Ok(snapshot),
            None => lock.rebuild(event, source.clone()).await?,
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
