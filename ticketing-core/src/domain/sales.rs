//! The sales read model: per event and per zone, the tickets pending, sold, expired, cancelled
//! and refunded, and the revenue, as projections of the event stream keep it, and the change
//! one outbox event makes to it.

use std::collections::BTreeMap;

use super::ids::ZoneCode;
use super::outbox::{OutboxEvent, OutboxKind};

/// One counter of the read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SalesCounter {
    /// PENDING_PAYMENT tickets.
    Pending,
    /// PAID tickets.
    Sold,
    /// Sum of the prices of PAID tickets, in minor units.
    Revenue,
    /// EXPIRED tickets.
    Expired,
    /// CANCELLED tickets.
    Cancelled,
    /// REFUNDED tickets.
    Refunded,
}

impl SalesCounter {
    /// The counter's field name in stored read models (`pending`, `sold`, `revenue`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SalesCounter::Pending => "pending",
            SalesCounter::Sold => "sold",
            SalesCounter::Revenue => "revenue",
            SalesCounter::Expired => "expired",
            SalesCounter::Cancelled => "cancelled",
            SalesCounter::Refunded => "refunded",
        }
    }

    /// Whether the read model keeps this counter per zone too (pending, sold and revenue).
    pub fn per_zone(self) -> bool {
        matches!(
            self,
            SalesCounter::Pending | SalesCounter::Sold | SalesCounter::Revenue
        )
    }
}

/// What one outbox event changes in the read model: deltas of the event's counters and of its
/// zones' counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesChange {
    /// Per-event deltas.
    pub event: Vec<(SalesCounter, i64)>,
    /// Per-zone deltas (only counters that are [`SalesCounter::per_zone`]), in zone order.
    pub zones: Vec<(ZoneCode, SalesCounter, i64)>,
}

impl SalesChange {
    /// The change `event` makes. Version-1 events carry no lines and change only the per-event
    /// counters; a kind this version does not know changes nothing.
    pub fn of(event: &OutboxEvent) -> Self {
        let n = event.ticket_ids.len() as i64;
        let per_kind = |n: i64, amount: i64| -> Vec<(SalesCounter, i64)> {
            use SalesCounter::*;
            match event.kind {
                OutboxKind::TicketReserved => vec![(Pending, n)],
                // A late payment that took an expired order's seats back left EXPIRED, not
                // pending.
                OutboxKind::TicketPaid if event.payment.as_ref().is_some_and(|p| p.reactivated) => {
                    vec![(Expired, -n), (Sold, n), (Revenue, amount)]
                }
                OutboxKind::TicketPaid => vec![(Pending, -n), (Sold, n), (Revenue, amount)],
                // The order did not change: its money is owed back, which the ledger keeps.
                OutboxKind::PaymentRejected => vec![],
                // Still pending, only later: no counter moves.
                OutboxKind::HoldExtended => vec![],
                // No order: the seats only became buyable.
                OutboxKind::ChannelSeatsReleased => vec![],
                // An offer's order was counted pending by its own `TicketReserved`.
                OutboxKind::WaitingListOffered => vec![],
                OutboxKind::TicketExpired => vec![(Pending, -n), (Expired, n)],
                OutboxKind::TicketCancelled => vec![(Pending, -n), (Cancelled, n)],
                OutboxKind::TicketRefunded => vec![(Sold, -n), (Revenue, -amount), (Refunded, n)],
            }
        };
        let mut zones: BTreeMap<(ZoneCode, SalesCounter), i64> = BTreeMap::new();
        for line in &event.lines {
            for (counter, delta) in per_kind(1, line.price.minor) {
                if counter.per_zone() {
                    *zones.entry((line.zone.clone(), counter)).or_default() += delta;
                }
            }
        }
        Self {
            event: per_kind(n, event.amount.minor),
            zones: zones
                .into_iter()
                .map(|((zone, counter), delta)| (zone, counter, delta))
                .collect(),
        }
    }
}

/// Sold count and revenue of one zone of an event, as a projection saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneTotals {
    /// PENDING_PAYMENT tickets.
    pub pending: i64,
    /// PAID tickets.
    pub sold: i64,
    /// Sum of the prices of PAID tickets, in minor units.
    pub revenue_minor: i64,
}

/// The read model of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTotals {
    /// PENDING_PAYMENT tickets.
    pub pending: i64,
    /// PAID tickets.
    pub sold: i64,
    /// Sum of the prices of PAID tickets, in minor units of `currency`.
    pub revenue_minor: i64,
    /// EXPIRED tickets.
    pub expired: i64,
    /// CANCELLED tickets.
    pub cancelled: i64,
    /// REFUNDED tickets.
    pub refunded: i64,
    /// The currency of `revenue_minor`, once an entry was applied.
    pub currency: Option<String>,
    /// Per zone.
    pub zones: BTreeMap<ZoneCode, ZoneTotals>,
}

impl EventTotals {
    /// Adds `change`, an event of `currency`, to these totals.
    pub fn apply(&mut self, change: &SalesChange, currency: &str) {
        self.currency = Some(currency.to_owned());
        for (counter, delta) in &change.event {
            *self.counter(*counter) += delta;
        }
        for (zone, counter, delta) in &change.zones {
            let totals = self.zones.entry(zone.clone()).or_default();
            match counter {
                SalesCounter::Pending => totals.pending += delta,
                SalesCounter::Sold => totals.sold += delta,
                SalesCounter::Revenue => totals.revenue_minor += delta,
                _ => {}
            }
        }
    }

    fn counter(&mut self, counter: SalesCounter) -> &mut i64 {
        match counter {
            SalesCounter::Pending => &mut self.pending,
            SalesCounter::Sold => &mut self.sold,
            SalesCounter::Revenue => &mut self.revenue_minor,
            SalesCounter::Expired => &mut self.expired,
            SalesCounter::Cancelled => &mut self.cancelled,
            SalesCounter::Refunded => &mut self.refunded,
        }
    }
}
