//! The waiting list of a sold-out event (docs/DESIGN.md, "Waiting list"): customers join and
//! leave through [`WaitingListService`]; [`WaitingListOffers`], an [`EventSink`] the outbox relay
//! runs after the seat-lock repair, offers the seats each cancellation, expiry or refund freed
//! to the first entries they can serve, as ordinary pending orders.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;

use crate::domain::{
    CustomerId, EventId, MAX_HOLD_TIME, MIN_HOLD_TIME, Order, OutboxEntry, OutboxKind,
    TicketStatus, WaitingEntry, WaitingEntryId, WaitingState, ZoneCode, ZoneKind,
};
use crate::ports::{EventSink, Joined, WaitingList};
use crate::{Error, Result};

use super::catalog::EventCache;
use super::purchase::{BestAvailable, PurchaseRequest, Selection};
use super::{Backends, TicketService};

/// How the waiting list makes offers.
#[derive(Debug, Clone)]
pub struct WaitingListConfig {
    /// How long an offer holds its seats for the customer: the offer order's payment window
    /// (10 minutes by default), within an event's hold-time bounds (1 s to a day).
    pub offer_time: Duration,
    /// Waiting entries read per freed order, in join order (64 by default).
    pub scan: u32,
    /// Purchases tried per freed order before the rest of the list waits for the next freed
    /// seats (16 by default). A refused try costs one seat-lock call and no database write.
    pub max_attempts: u32,
}

impl Default for WaitingListConfig {
    fn default() -> Self {
        Self {
            offer_time: Duration::from_secs(10 * 60),
            scan: 64,
            max_attempts: 16,
        }
    }
}

impl WaitingListConfig {
    /// The offer time as the domain's span, or [`Error::Config`] outside the hold-time bounds.
    fn offer_span(&self) -> Result<TimeDelta> {
        TimeDelta::from_std(self.offer_time)
            .ok()
            .filter(|t| (MIN_HOLD_TIME..=MAX_HOLD_TIME).contains(t))
            .ok_or_else(|| Error::config("offer_time", "must be 1 second to 1 day"))
    }
}

/// The backends' waiting list, or the configuration error that it is missing.
fn list_of(backends: &Backends) -> Result<Arc<dyn WaitingList>> {
    backends
        .waiting_list
        .clone()
        .ok_or_else(|| Error::config("waiting_list", "no adapter was given"))
}

/// `Ok` for the states an offer settles in (`Served`, `Lapsed`); a [`WaitingList`] adapter
/// refuses any other outcome of
/// [`settle_offer`](WaitingList::settle_offer) with [`Error::InvalidRequest`].
pub fn settled_state(outcome: WaitingState) -> Result<()> {
    match outcome {
        WaitingState::Served | WaitingState::Lapsed => Ok(()),
        other => Err(Error::invalid(
            "outcome",
            format!("an offer settles as SERVED or LAPSED, not {other}"),
        )),
    }
}

/// Joining, reading and leaving an event's waiting list.
#[derive(Clone)]
pub struct WaitingListService {
    backends: Backends,
    list: Arc<dyn WaitingList>,
    events: Arc<EventCache>,
}

impl WaitingListService {
    /// A service over `backends`' waiting list, catalog, clock and ids; [`Error::Config`] when
    /// the backends have no waiting list.
    pub fn new(backends: Backends) -> Result<Self> {
        Ok(Self {
            list: list_of(&backends)?,
            backends,
            events: Arc::new(EventCache::default()),
        })
    }

    /// Puts `customer` on `event`'s waiting list for `party` seats side by side (or places) of
    /// `zone`, or of any zone. The zone must be on sale in the event (priced, not hidden), the
    /// party at most the event's per-customer limit, and the sale not over. A customer with an
    /// open entry for the event gets that one ([`Joined::AlreadyOpen`]).
    pub async fn join(
        &self,
        event: EventId,
        customer: CustomerId,
        zone: Option<ZoneCode>,
        party: u32,
    ) -> Result<Joined> {
        let info = self.events.get(&*self.backends.catalog, event).await?;
        let now = self.backends.now();
        if info.event.sale_closes() <= now {
            return Err(Error::NotOnSale {
                event,
                reason: "the sale is over".into(),
            });
        }
        if let Some(zone) = &zone
            && (info.event.price(zone).is_none() || info.event.is_hidden(zone))
        {
            return Err(Error::invalid(
                "zone",
                format!("zone {zone} is not on sale"),
            ));
        }
        let limit = info.event.per_customer_limit();
        if party > limit {
            return Err(Error::LimitExceeded { limit });
        }
        let id = WaitingEntryId::from_uuid(self.backends.ids.order_id().as_uuid());
        let entry = WaitingEntry::new(id, event, customer, zone, party, now)?;
        self.list.join(&entry).await
    }

    /// The entry, or [`Error::NotFound`].
    pub async fn entry(&self, id: WaitingEntryId) -> Result<WaitingEntry> {
        self.list.entry(id).await?.ok_or_else(|| Error::NotFound {
            what: "waiting-list entry",
            id: id.to_string(),
        })
    }

    /// Takes the entry off the list (an open one becomes `Left`), or [`Error::NotFound`].
    pub async fn leave(&self, id: WaitingEntryId) -> Result<WaitingEntry> {
        self.list.leave(id).await?.ok_or_else(|| Error::NotFound {
            what: "waiting-list entry",
            id: id.to_string(),
        })
    }
}

/// The [`EventSink`] that makes waiting-list offers from the state changes that free seats.
///
/// For each published entry in order: a payment of an offer's order settles its entry
/// `Served`; an expiry or cancellation of one settles it `Lapsed`; and every cancellation,
/// expiry or refund, and every release of a channel's kept seats to the public, offers what is
/// free in the zones it freed to the event's `Waiting` entries
/// in join order. An offer is a purchase by the entry's customer (best available of `party`
/// seats in the entry's zone, or in each freed zone for an entry of the whole event; places of a
/// general-admission zone) with the offer time as its payment window and an idempotency key
/// derived from the entry and its offer number, so a relay that delivers the same entry twice,
/// or two relays, make one order. A purchase refused for want of seats, or for the customer's
/// limit, passes to the next entry; offers stop when the parties served add up to the seats
/// freed, or after [`WaitingListConfig::max_attempts`] tries. Any other failure fails the
/// batch, which the relay publishes again.
///
/// Run it after [`SeatLockSync`](super::SeatLockSync) in the same relay
/// ([`FanOutSink`](super::FanOutSink)), so the freed seats are free in the lock when it looks.
pub struct WaitingListOffers {
    tickets: TicketService,
    list: Arc<dyn WaitingList>,
    config: WaitingListConfig,
    offer_time: TimeDelta,
}

impl WaitingListOffers {
    /// A sink making offers through `tickets` (the purchase) on its backends' waiting list;
    /// [`Error::Config`] for an offer time out of bounds or backends without a waiting list.
    pub fn new(tickets: TicketService, config: WaitingListConfig) -> Result<Self> {
        let offer_time = config.offer_span()?;
        let list = list_of(&tickets.backends)?;
        Ok(Self {
            tickets,
            list,
            config,
            offer_time,
        })
    }

    /// Offers the seats `freed` (an order that let its seats go) left to the event's list.
    /// Events found with nobody waiting go into `idle`, so the rest of the batch (a sweep
    /// expiring hundreds of orders of one event) does not read their list again.
    async fn offer(&self, freed: &OutboxEntry, idle: &mut HashSet<EventId>) -> Result<()> {
        let event = freed.event.event_id;
        if idle.contains(&event) {
            return Ok(());
        }
        // Seats freed per zone: once the parties served add up to them, the rest waits.
        // An order's lines, or the seats a channel release gave to the public.
        let mut zones: BTreeMap<ZoneCode, u32> = BTreeMap::new();
        for line in &freed.event.lines {
            *zones.entry(line.zone.clone()).or_default() += 1;
        }
        if freed.event.kind == OutboxKind::ChannelSeatsReleased {
            for seat in &freed.event.seats {
                *zones.entry(seat.zone.clone()).or_default() += 1;
            }
        }
        if zones.is_empty() {
            return Ok(());
        }
        let waiting = self.list.waiting(event, self.config.scan).await?;
        if waiting.is_empty() {
            idle.insert(event);
            return Ok(());
        }
        let info = self
            .tickets
            .events
            .get(&*self.tickets.backends.catalog, event)
            .await?;
        let mut attempts = 0;
        for entry in waiting {
            let candidates: Vec<ZoneCode> = match &entry.zone {
                Some(zone) if zones.contains_key(zone) => vec![zone.clone()],
                Some(_) => continue,
                None => zones.keys().cloned().collect(),
            };
            for zone in candidates {
                if attempts >= self.config.max_attempts || zones.values().all(|n| *n == 0) {
                    return Ok(());
                }
                attempts += 1;
                let selection = match info.venue.zone(&zone).map(|z| &z.kind) {
                    Some(ZoneKind::GeneralAdmission { .. }) => Selection::General {
                        zone: zone.clone(),
                        quantity: entry.party,
                    },
                    _ => Selection::BestAvailable(BestAvailable {
                        zone: Some(zone.clone()),
                        quantity: entry.party,
                        rows: None,
                        max_price: None,
                    }),
                };
                let request = PurchaseRequest {
                    event,
                    customer: entry.customer.clone(),
                    selection,
                    idempotency_key: Some(entry.next_offer_key()),
                    voucher: None,
                    channel: None,
                };
                match self
                    .tickets
                    .purchase_with_hold(request, Some(self.offer_time))
                    .await
                {
                    Ok(order) => {
                        self.record(&entry, &order).await?;
                        let left = zones.entry(zone).or_default();
                        *left = left.saturating_sub(entry.party);
                        break;
                    }
                    Err(
                        Error::SeatsTaken { .. }
                        | Error::SoldOut { .. }
                        | Error::NoAdjacentSeats { .. }
                        | Error::LimitExceeded { .. }
                        | Error::IdempotencyConflict { .. }
                        | Error::InvalidRequest { .. },
                    ) => {}
                    Err(Error::NotOnSale { .. }) => return Ok(()),
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    /// Records `order` as the entry's offer. A keyed retry may answer an order that is over
    /// already (a relay died between the purchase and this record, and the order was paid or
    /// lapsed meanwhile): the entry is then settled as the order ended.
    async fn record(&self, entry: &WaitingEntry, order: &Order) -> Result<()> {
        let now = self.tickets.backends.now();
        self.list.record_offer(entry.id, order, now).await?;
        let outcome = match order.status {
            TicketStatus::PendingPayment => return Ok(()),
            TicketStatus::Paid => WaitingState::Served,
            _ => WaitingState::Lapsed,
        };
        self.list.settle_offer(order.id, outcome).await?;
        Ok(())
    }
}

#[async_trait]
impl EventSink for WaitingListOffers {
    /// The list keeps no sequence numbers; every change it makes is a compare-and-set, so a
    /// republished entry is harmless.
    async fn high_water_mark(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        let mut idle = HashSet::new();
        for entry in entries {
            let order = entry.event.order_id;
            match entry.event.kind {
                OutboxKind::TicketPaid => {
                    self.list.settle_offer(order, WaitingState::Served).await?;
                }
                OutboxKind::TicketExpired | OutboxKind::TicketCancelled => {
                    self.list.settle_offer(order, WaitingState::Lapsed).await?;
                    self.offer(entry, &mut idle).await?;
                }
                OutboxKind::TicketRefunded => self.offer(entry, &mut idle).await?,
                OutboxKind::ChannelSeatsReleased => {
                    // The purchases below must see the seats public, not a shared read of
                    // the reservations from before the release.
                    self.tickets.channels.forget(entry.event.event_id);
                    self.offer(entry, &mut idle).await?
                }
                _ => {}
            }
        }
        Ok(())
    }
}
