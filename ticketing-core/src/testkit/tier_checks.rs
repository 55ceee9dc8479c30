//! Conformance checks of count-based price tiers: a tier sells exactly its size under a
//! stampede, an order spans tiers, a cancellation and an expiry give their tier places back, a
//! voucher applies on top of a tier's price, and a late payment takes its tier place back only
//! while the tier has one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::Error;
use crate::domain::{
    Currency, Money, Order, PaymentNotice, PaymentRef, PriceTier, TicketStatus, ZoneCode,
};

use super::Harness;
use super::checks::{count, race_purchases};
use super::fixture::{Fixture, Layout, PRICE_MINOR, outcome};
use super::payment_checks::accepting;
use super::voucher_checks::{create_voucher, twenty_percent, with_voucher};

/// Buyers of the stampede check: the 2,000 concurrent buyers.
const STAMPEDE: usize = 2_000;
/// The first tier's size in the stampede check.
const FIRST_TIER: u32 = 100;
/// The second tier's size in the stampede check.
const SECOND_TIER: u32 = 200;
/// Tier prices, below the zone's [`PRICE_MINOR`].
const FIRST_PRICE: i64 = 1_500;
const SECOND_PRICE: i64 = 2_000;

fn zone(code: &str) -> ZoneCode {
    ZoneCode::new(code).expect("zone code")
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::new("EUR").expect("EUR"))
}

fn tiers(sizes_and_prices: &[(u32, i64)]) -> Vec<PriceTier> {
    sizes_and_prices
        .iter()
        .map(|&(size, price)| PriceTier {
            size,
            price: eur(price),
        })
        .collect()
}

/// Active tickets of the fixture's event per price, counted from the ticket rows.
async fn active_per_price(f: &Fixture) -> BTreeMap<i64, usize> {
    let mut per_price = BTreeMap::new();
    for ticket in f
        .backends
        .tickets
        .active_tickets(f.event.id())
        .await
        .expect("active tickets")
    {
        *per_price.entry(ticket.price.minor).or_default() += 1;
    }
    per_price
}

/// Buys `n` general-admission places for `who`, panicking on failure.
async fn places(f: &Fixture, who: &str, n: u32) -> Order {
    f.tickets
        .purchase(f.general_request(who, n))
        .await
        .expect("purchase")
}

/// The prices of an order's tickets in the order tiers are given out (seat, then ticket id).
fn prices(order: &Order) -> Vec<i64> {
    let mut tickets: Vec<_> = order.tickets.iter().collect();
    tickets.sort_by(|a, b| a.seat.cmp(&b.seat).then(a.id.cmp(&b.id)));
    tickets.iter().map(|t| t.price.minor).collect()
}

/// 2,000 buyers of one general-admission place race a tier of 100 and a tier of 200: exactly
/// 100 tickets at the first tier's price and 200 at the second's (counted from the ticket rows),
/// the rest at the zone's price; every order's receipt and total show the price it was counted
/// at.
pub async fn price_tiers_are_exact_under_a_stampede(harness: Harness) {
    let f = Arc::new(
        Fixture::with_price_tiers(
            &harness,
            Layout {
                general_capacity: 2_500,
                ..Layout::default()
            },
            [(
                zone("GA"),
                tiers(&[(FIRST_TIER, FIRST_PRICE), (SECOND_TIER, SECOND_PRICE)]),
            )]
            .into(),
        )
        .await,
    );
    let results = race_purchases(&f, STAMPEDE, |f, i| {
        f.general_request(&format!("buyer{i}"), 1)
    })
    .await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&STAMPEDE), "outcomes: {counts:?}");
    let mut receipts: HashMap<i64, usize> = HashMap::new();
    for order in results.iter().flatten() {
        assert_eq!(order.tickets.len(), 1);
        assert_eq!(
            order.total, order.tickets[0].price,
            "the total is the price"
        );
        *receipts.entry(order.tickets[0].price.minor).or_default() += 1;
    }
    let rest = STAMPEDE - (FIRST_TIER + SECOND_TIER) as usize;
    let expected: BTreeMap<i64, usize> = [
        (FIRST_PRICE, FIRST_TIER as usize),
        (SECOND_PRICE, SECOND_TIER as usize),
        (PRICE_MINOR, rest),
    ]
    .into();
    assert_eq!(
        active_per_price(&f).await,
        expected,
        "ticket rows per price"
    );
    assert_eq!(
        receipts.into_iter().collect::<BTreeMap<_, _>>(),
        expected,
        "receipts per price"
    );
    f.audit().await;
    harness.finish().await;
}

/// An order spans tiers (seated and general admission); a cancellation and an expiry give
/// their tier places back, so the next buyer pays the first tier's price again; a voucher's
/// discount applies to the tier's price; a late payment takes its tier place back while the
/// tier has one and is too late when it has none.
pub async fn price_tiers_span_orders_and_come_back(harness: Harness) {
    let f = Fixture::with_price_tiers(
        &harness,
        Layout::default(),
        [
            (zone("GA"), tiers(&[(2, FIRST_PRICE), (3, SECOND_PRICE)])),
            (zone("A"), tiers(&[(1, FIRST_PRICE)])),
        ]
        .into(),
    )
    .await;
    // Seated: two seats when one place is left in the only tier.
    let seated = f.buy("seated", vec![f.seat(1), f.seat(0)]).await;
    assert_eq!(prices(&seated), vec![FIRST_PRICE, PRICE_MINOR]);
    assert_eq!(seated.total, eur(FIRST_PRICE + PRICE_MINOR));

    // General admission: 1 place, then 3 across the tier boundary.
    let first = places(&f, "a", 1).await;
    assert_eq!(prices(&first), vec![FIRST_PRICE]);
    let spanning = places(&f, "b", 3).await;
    assert_eq!(
        prices(&spanning),
        vec![FIRST_PRICE, SECOND_PRICE, SECOND_PRICE]
    );
    assert_eq!(spanning.total, eur(FIRST_PRICE + 2 * SECOND_PRICE));

    // A cancellation gives its first-tier place back.
    f.tickets.cancel(first.id).await.expect("cancel");
    let after_cancel = places(&f, "c", 1).await;
    assert_eq!(prices(&after_cancel), vec![FIRST_PRICE]);

    // A voucher's 20 % comes off the tier's price: tier 2 has one place left.
    create_voucher(&f, "TWENTY", twenty_percent(), 10, 1).await;
    let discounted = f
        .tickets
        .purchase(with_voucher(&f, "d", "TWENTY"))
        .await
        .expect("d");
    assert_eq!(prices(&discounted), vec![SECOND_PRICE - SECOND_PRICE / 5]);
    let full = places(&f, "e", 1).await;
    assert_eq!(prices(&full), vec![PRICE_MINOR], "both tiers are full");

    // Every unpaid order expires: every tier place comes back.
    f.clock.set(f.sweep_due(&spanning));
    assert_eq!(f.tickets.expire_due().await.expect("sweep"), 5);
    let fresh = places(&f, "f", 3).await;
    assert_eq!(prices(&fresh), vec![FIRST_PRICE, FIRST_PRICE, SECOND_PRICE]);

    // A late payment takes its places back in the same tiers while they have room: the
    // spanning order's 1 + 2 find 0 + 2 left in tiers 1 and 2, so it is too late; `c`'s one
    // first-tier place finds none either. After `f` cancels, `c` is accepted at its price.
    let accepting = accepting(&f);
    let reference = |r: &str| PaymentRef::new(r).expect("reference");
    let gone = accepting
        .pay(PaymentNotice::for_order(&spanning, reference("pi_span")))
        .await;
    assert!(
        matches!(gone, Err(Error::PaymentTooLate { .. })),
        "got {gone:?}"
    );
    f.tickets.cancel(fresh.id).await.expect("cancel fresh");
    let back = accepting
        .pay(PaymentNotice::for_order(&after_cancel, reference("pi_c")))
        .await
        .expect("a late payment whose tier has room");
    assert_eq!(back.status, TicketStatus::Paid);
    assert_eq!(prices(&back), vec![FIRST_PRICE]);
    // `c` holds one of the two first-tier places again: the next 2 places are 1 + 1.
    let next = places(&f, "g", 2).await;
    assert_eq!(prices(&next), vec![FIRST_PRICE, SECOND_PRICE]);
    f.audit().await;
    harness.finish().await;
}
