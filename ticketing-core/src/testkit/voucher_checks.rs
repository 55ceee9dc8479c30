//! Conformance checks of vouchers: a voucher's uses are exact under a stampede, given back by
//! expiry and cancellation, untouched by an idempotent retry; its window, per-customer limit
//! and the hidden zones it opens are enforced; a discounted order pays its discounted total.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;

use crate::Error;
use crate::domain::{
    Discount, EventSpec, IdempotencyKey, Money, Order, PaymentNotice, PaymentOutcome, PaymentRef,
    SeatRef, TicketStatus, Voucher, VoucherCode, VoucherEffect, VoucherProblem, VoucherSpec,
    ZoneCode,
};
use crate::ports::Clock;
use crate::service::{CatalogService, PurchaseRequest, Selection, TicketService};

use super::Harness;
use super::checks::{count, race_purchases};
use super::fixture::{Fixture, Layout, PRICE_MINOR, outcome};
use super::payment_checks::{accepting, outcomes};

/// Buyers of the stampede check: the 500 concurrent purchases.
const STAMPEDE: usize = 500;

fn code(text: &str) -> VoucherCode {
    VoucherCode::new(text).expect("voucher code")
}

/// A voucher of the fixture's event valid from an hour ago for a day.
pub(super) async fn create_voucher(
    f: &Fixture,
    text: &str,
    effect: VoucherEffect,
    max_uses: u32,
    max_per_customer: u32,
) -> Voucher {
    let now = f.clock.now();
    CatalogService::new(f.backends.clone())
        .create_voucher(
            f.event.id(),
            VoucherSpec {
                code: code(text),
                effect,
                max_uses,
                max_per_customer,
                valid_from: now - TimeDelta::hours(1),
                valid_until: now + TimeDelta::days(1),
            },
        )
        .await
        .expect("create voucher")
}

/// 20 % off every ticket.
pub(super) fn twenty_percent() -> VoucherEffect {
    VoucherEffect::Discount(Discount::Percent { basis_points: 2000 })
}

/// One general-admission place for `customer` with `voucher`.
pub(super) fn with_voucher(f: &Fixture, customer: &str, voucher: &str) -> PurchaseRequest {
    PurchaseRequest {
        voucher: Some(code(voucher)),
        ..f.general_request(customer, 1)
    }
}

/// The repository's count of active orders using `voucher`.
async fn uses(f: &Fixture, voucher: &str) -> u32 {
    f.backends
        .tickets
        .voucher_uses(f.event.id())
        .await
        .expect("voucher uses")
        .into_iter()
        .find(|(c, _)| *c == code(voucher))
        .map_or(0, |(_, n)| n)
}

/// Active tickets of the event sold at the discounted price: counted from the ticket rows, a
/// second witness besides the repository's counter.
async fn discounted_tickets(f: &Fixture, price: i64) -> usize {
    f.backends
        .tickets
        .active_tickets(f.event.id())
        .await
        .expect("active tickets")
        .iter()
        .filter(|t| t.price.minor == price)
        .count()
}

fn voucher_problem<T: std::fmt::Debug>(result: &crate::Result<T>) -> Option<VoucherProblem> {
    match result {
        Err(Error::Voucher { problem, .. }) => Some(*problem),
        _ => None,
    }
}

/// 500 buyers race for a voucher of 3 uses: exactly 3 orders use it (the repository's count
/// and the discounted ticket rows agree), the other 497 are `VOUCHER_USED_UP` and hold nothing.
/// A cancelled order and an expired one each give their use back; a paid order keeps it.
pub async fn voucher_uses_are_exact_under_a_stampede(harness: Harness) {
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                general_capacity: 1_000,
                ..Layout::default()
            },
        )
        .await,
    );
    create_voucher(&f, "EARLY", twenty_percent(), 3, 1).await;
    let discounted = PRICE_MINOR - PRICE_MINOR / 5;
    let results = race_purchases(&f, STAMPEDE, |f, i| {
        with_voucher(f, &format!("buyer{i}"), "EARLY")
    })
    .await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&3), "outcomes: {counts:?}");
    assert_eq!(
        counts.get("VOUCHER_USED_UP"),
        Some(&(STAMPEDE - 3)),
        "outcomes: {counts:?}"
    );
    assert_eq!(uses(&f, "EARLY").await, 3);
    assert_eq!(discounted_tickets(&f, discounted).await, 3);
    let orders: Vec<Order> = results.into_iter().filter_map(Result::ok).collect();
    for order in &orders {
        assert_eq!(order.total.minor, discounted, "20 % off the listed price");
    }
    f.audit().await;
    // Every loser's hold was released: the zone shows exactly the 3 places sold.
    f.assert_seat_map_matches_repository().await;

    // Paid, the order keeps its use.
    f.pay(&orders[0], "pay-early-0").await;
    let late = f.tickets.purchase(with_voucher(&f, "late", "EARLY")).await;
    assert_eq!(voucher_problem(&late), Some(VoucherProblem::UsedUp));
    // Cancelled, it gives it back.
    f.tickets.cancel(orders[1].id).await.expect("cancel");
    assert_eq!(uses(&f, "EARLY").await, 2);
    let after_cancel = f
        .tickets
        .purchase(with_voucher(&f, "after-cancel", "EARLY"))
        .await
        .expect("a use given back by a cancellation");
    assert_eq!(uses(&f, "EARLY").await, 3);
    // Expired, too.
    f.clock.set(f.sweep_due(&orders[2]));
    let expired = f.tickets.expire_due().await.expect("sweep");
    assert_eq!(expired, 2, "order 2 and the one after the cancel expire");
    assert_eq!(
        uses(&f, "EARLY").await,
        1,
        "only the paid order still uses it"
    );
    assert_eq!(
        f.backends
            .tickets
            .order(after_cancel.id)
            .await
            .expect("order")
            .map(|o| o.status),
        Some(TicketStatus::Expired)
    );
    f.tickets
        .purchase(with_voucher(&f, "after-expiry", "EARLY"))
        .await
        .expect("a use given back by an expiry");
    assert_eq!(uses(&f, "EARLY").await, 2);
    harness.finish().await;
}

/// A keyed purchase with a voucher retried (after it was stored, and again after the voucher
/// is used up) returns the same order and takes no second use; a customer over the voucher's
/// per-customer limit is refused while another customer may still use it.
pub async fn voucher_retries_and_customer_limits(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    create_voucher(&f, "FRIENDS", twenty_percent(), 2, 1).await;
    let key = IdempotencyKey::new("voucher-retry").expect("key");
    let request = PurchaseRequest {
        idempotency_key: Some(key.clone()),
        ..with_voucher(&f, "alice", "FRIENDS")
    };
    let first = f.tickets.purchase(request.clone()).await.expect("first");
    let again = f.tickets.purchase(request.clone()).await.expect("retry");
    assert_eq!(first.id, again.id, "a retry returns the same order");
    assert_eq!(uses(&f, "FRIENDS").await, 1, "a retry takes no second use");

    // Alice's one use per customer is taken: an unkeyed second order is refused.
    let second = f
        .tickets
        .purchase(with_voucher(&f, "alice", "FRIENDS"))
        .await;
    assert_eq!(
        voucher_problem(&second),
        Some(VoucherProblem::CustomerLimit)
    );
    let bob = f
        .tickets
        .purchase(with_voucher(&f, "bob", "FRIENDS"))
        .await
        .expect("bob's use");
    assert_eq!(uses(&f, "FRIENDS").await, 2);
    // Used up now, and Alice's retry still gets her order.
    let replay = f
        .tickets
        .purchase(request)
        .await
        .expect("replay when used up");
    assert_eq!(replay.id, first.id);
    assert_eq!(uses(&f, "FRIENDS").await, 2);
    // The discounted order pays its discounted total (the ledger checks the amount).
    let paid = f.pay(&bob, "pay-bob").await;
    assert_eq!(paid.status, TicketStatus::Paid);
    let full = PaymentNotice {
        amount: Money::new(PRICE_MINOR, f.event.currency()),
        ..PaymentNotice::for_order(&first, PaymentRef::new("pay-alice-full").expect("ref"))
    };
    assert!(
        matches!(
            f.tickets.pay(full).await,
            Err(Error::PaymentMismatch { .. })
        ),
        "the listed price is not the discounted total"
    );
    f.audit().await;
    harness.finish().await;
}

/// An unknown code, a voucher not valid yet and one no longer valid are refused before any
/// hold; a hidden zone is not on sale and not on the public map without a voucher that opens
/// it, and is sold at its price with one.
pub async fn voucher_windows_and_hidden_zones(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let unknown = f.tickets.purchase(with_voucher(&f, "carol", "NOPE")).await;
    assert_eq!(voucher_problem(&unknown), Some(VoucherProblem::Unknown));
    let now = f.clock.now();
    let catalog = CatalogService::new(f.backends.clone());
    for (text, from, until) in [
        ("SOON", now + TimeDelta::hours(1), now + TimeDelta::hours(2)),
        ("GONE", now - TimeDelta::hours(2), now),
    ] {
        catalog
            .create_voucher(
                f.event.id(),
                VoucherSpec {
                    code: code(text),
                    effect: twenty_percent(),
                    max_uses: 5,
                    max_per_customer: 5,
                    valid_from: from,
                    valid_until: until,
                },
            )
            .await
            .expect("create voucher");
    }
    let soon = f.tickets.purchase(with_voucher(&f, "carol", "SOON")).await;
    assert_eq!(voucher_problem(&soon), Some(VoucherProblem::NotYetValid));
    let gone = f.tickets.purchase(with_voucher(&f, "carol", "GONE")).await;
    assert_eq!(voucher_problem(&gone), Some(VoucherProblem::Expired));
    let duplicate = create_voucher_result(&catalog, &f, "SOON").await;
    assert!(
        matches!(duplicate, Err(Error::InvalidRequest { .. })),
        "a code twice: {duplicate:?}"
    );
    assert_eq!(
        f.backends
            .tickets
            .count_by_status(f.event.id(), TicketStatus::PendingPayment)
            .await
            .expect("count"),
        0,
        "refused vouchers wrote nothing"
    );

    // An event of the same venue whose seated zone A is hidden.
    let prices: BTreeMap<ZoneCode, Money> = f.event.prices().clone();
    let hidden_zone: ZoneCode = "A".parse().expect("zone");
    let hidden = catalog
        .create_event_with_hidden_zones(
            EventSpec {
                name: "Presale Night".into(),
                venue_id: f.venue.id(),
                sale_opens: f.event.sale_opens(),
                sale_closes: f.event.sale_closes(),
                prices,
                hold_time: f.event.hold_time(),
                per_customer_limit: 4,
            },
            vec![hidden_zone.clone()],
        )
        .await
        .expect("event with a hidden zone");
    let stored = catalog.event(hidden.id()).await.expect("stored event");
    assert!(stored.is_hidden(&hidden_zone), "the catalog keeps the flag");
    let presale = catalog
        .create_voucher(
            hidden.id(),
            VoucherSpec {
                code: code("PRESALE"),
                effect: VoucherEffect::ZoneAccess(hidden_zone.clone()),
                max_uses: 10,
                max_per_customer: 1,
                valid_from: now - TimeDelta::hours(1),
                valid_until: now + TimeDelta::days(1),
            },
        )
        .await
        .expect("zone access voucher");
    let seat: SeatRef = "A:1:1".parse().expect("seat");
    let buy = |voucher: Option<&str>| PurchaseRequest {
        event: hidden.id(),
        customer: crate::domain::CustomerId::new("dave").expect("customer"),
        selection: Selection::Seats(vec![seat.clone()]),
        idempotency_key: None,
        voucher: voucher.map(code),
        channel: None,
    };
    let tickets = TicketService::new(f.backends.clone(), f.config.clone());
    let public = tickets.purchase(buy(None)).await;
    assert!(
        matches!(public, Err(Error::InvalidRequest { field: "zone", .. })),
        "a hidden zone is not on sale: {public:?}"
    );
    let map = f.queries.seat_map(hidden.id()).await.expect("seat map");
    assert!(
        map.seats().all(|s| s.seat.zone != hidden_zone),
        "a hidden zone is not on the public map"
    );
    let order = tickets
        .purchase(buy(Some(presale.code().as_str())))
        .await
        .expect("the voucher opens the zone");
    assert_eq!(
        order.total.minor, PRICE_MINOR,
        "zone access keeps the price"
    );
    harness.finish().await;
}

async fn create_voucher_result(
    catalog: &CatalogService,
    f: &Fixture,
    text: &str,
) -> crate::Result<Voucher> {
    let now = f.clock.now();
    catalog
        .create_voucher(
            f.event.id(),
            VoucherSpec {
                code: code(text),
                effect: twenty_percent(),
                max_uses: 1,
                max_per_customer: 1,
                valid_from: now,
                valid_until: now + TimeDelta::hours(1),
            },
        )
        .await
}

/// A late payment under `AcceptIfAvailable` that takes an expired order back takes its voucher
/// use back too, within the voucher's limits: with the use still free it pays (`PAID_LATE`)
/// and the voucher counts it again; with the last use taken meanwhile, by anyone or by the
/// same customer, it is `TOO_LATE` and a refund due, and the voucher's count does not move.
pub async fn a_late_payment_takes_its_voucher_use_back(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let accepting = accepting(&f);
    create_voucher(&f, "BACK", twenty_percent(), 1, 1).await;
    create_voucher(&f, "GONE", twenty_percent(), 1, 1).await;
    create_voucher(&f, "MINE", twenty_percent(), 2, 1).await;
    let back = f
        .tickets
        .purchase(with_voucher(&f, "ann", "BACK"))
        .await
        .expect("back");
    let gone = f
        .tickets
        .purchase(with_voucher(&f, "ben", "GONE"))
        .await
        .expect("gone");
    let mine = f
        .tickets
        .purchase(with_voucher(&f, "cat", "MINE"))
        .await
        .expect("mine");
    f.clock.set(f.sweep_due(&back));
    assert_eq!(f.tickets.expire_due().await.expect("sweep"), 3);
    for voucher in ["BACK", "GONE", "MINE"] {
        assert_eq!(
            uses(&f, voucher).await,
            0,
            "{voucher}: the expiry gave the use back"
        );
    }
    // The last use of GONE goes to another buyer, the one use per customer of MINE to the same
    // customer's new order.
    f.tickets
        .purchase(with_voucher(&f, "dan", "GONE"))
        .await
        .expect("dan takes GONE");
    f.tickets
        .purchase(with_voucher(&f, "cat", "MINE"))
        .await
        .expect("cat again");

    let paid = accepting
        .pay(PaymentNotice::for_order(
            &back,
            PaymentRef::new("pi-back").expect("ref"),
        ))
        .await
        .expect("the use is free: the late payment takes the order back");
    assert_eq!(paid.status, TicketStatus::Paid);
    assert_eq!(
        uses(&f, "BACK").await,
        1,
        "the revived order uses BACK again"
    );
    for (order, reference, voucher) in [(&gone, "pi-gone", "GONE"), (&mine, "pi-mine", "MINE")] {
        let late = accepting
            .pay(PaymentNotice::for_order(
                order,
                PaymentRef::new(reference).expect("ref"),
            ))
            .await;
        assert!(
            matches!(late, Err(Error::PaymentTooLate { .. })),
            "{voucher}: got {late:?}"
        );
        assert_eq!(
            outcomes(&f, order.id).await,
            vec![PaymentOutcome::TooLate],
            "{voucher}: a refund due"
        );
        assert_eq!(
            uses(&f, voucher).await,
            1,
            "{voucher}: the count did not move"
        );
        assert_eq!(
            f.queries.order(order.id).await.expect("order").status,
            TicketStatus::Expired
        );
    }
    let mut owed: Vec<String> = f
        .tickets
        .refunds_due(100)
        .await
        .expect("refunds due")
        .iter()
        .map(|p| p.reference.to_string())
        .collect();
    owed.sort_unstable();
    assert_eq!(owed, vec!["pi-gone", "pi-mine"]);
    f.audit().await;
    harness.finish().await;
}
