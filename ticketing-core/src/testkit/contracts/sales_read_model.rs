//! The [`SalesReadModel`] contract: entries apply strictly in sequence order, each once, and
//! the totals are what they add up to. Each check expects a fresh model (nothing applied).

use crate::domain::{OutboxKind, ZoneTotals};
use crate::ports::{Applied, SalesReadModel};
use crate::testkit::contracts::event_sink::entries;

/// A later entry waits for the earlier one ([`Applied::Gap`]), a repeat is a
/// [`Applied::Duplicate`], and the totals per event and zone count each applied entry once: two
/// reservations and one payment of two-ticket orders.
pub async fn entries_apply_once_in_sequence_order(model: &dyn SalesReadModel) {
    let mut all = entries(1..=3);
    all[2].event.kind = OutboxKind::TicketPaid;
    all[2].event.order_id = all[0].event.order_id;
    all[2].event.lines = all[0].event.lines.clone();
    all[2].event.ticket_ids = all[0].event.ticket_ids.clone();
    let all = &all;
    let apply = |i: usize| async move { model.apply(&all[i]).await.expect("apply") };
    assert_eq!(model.last_applied().await.expect("last"), 0);
    assert_eq!(apply(1).await, Applied::Gap { expected: 1 });
    assert_eq!(apply(0).await, Applied::Applied);
    assert_eq!(apply(0).await, Applied::Duplicate);
    assert_eq!(apply(2).await, Applied::Gap { expected: 2 });
    assert_eq!(apply(1).await, Applied::Applied);
    assert_eq!(apply(2).await, Applied::Applied);
    assert_eq!(apply(1).await, Applied::Duplicate);
    assert_eq!(model.last_applied().await.expect("last"), 3);
    let totals = model.totals(all[0].event.event_id).await.expect("totals");
    assert_eq!(
        (totals.pending, totals.sold, totals.revenue_minor),
        (2, 2, 2_200),
        "two orders of two tickets reserved, one of them paid"
    );
    assert_eq!(totals.currency.as_deref(), Some("EUR"));
    let zone = |pending, sold, revenue_minor| ZoneTotals {
        pending,
        sold,
        revenue_minor,
    };
    assert_eq!(
        totals.zones.values().copied().collect::<Vec<_>>(),
        [zone(1, 1, 1_500), zone(1, 1, 700)],
        "zones A and GA"
    );
    let other = crate::testkit::contracts::new_event();
    assert_eq!(
        model.totals(other).await.expect("totals"),
        Default::default(),
        "an event with nothing applied"
    );
}
