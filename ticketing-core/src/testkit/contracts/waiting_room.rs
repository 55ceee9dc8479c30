//! The [`WaitingRoom`] contract: idempotent joins, FIFO and lottery order (a chi-square test of
//! uniformity), the cap and the rate under real concurrency (10,000 joiners, cap 200), lapsing
//! admissions, and the purchase gate refusing missing, foreign, replayed and lapsed admissions.
//!
//! An adapter's tests expand [`waiting_room_contract!`](crate::waiting_room_contract) with an
//! `async fn` giving a fresh room (its own key prefix or database) and a guard kept until the
//! check ends:
//!
//! ```ignore
//! async fn fresh() -> (std::sync::Arc<dyn WaitingRoom>, MyGuard) { /* … */ }
//! ticketing_core::waiting_room_contract!(fresh);
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{ms, new_event, secs, t0};
use crate::domain::{
    AdmissionMode, AdmissionPolicy, AdmissionRefusal, AdmissionSecret, CustomerId, EventId,
    QueueOrder,
};
use crate::ports::{Admission, Gate, Place, WaitingRoom};

/// Joiners of [`the_cap_holds_under_concurrency`].
pub const JOINERS: usize = 10_000;
/// The cap of [`the_cap_holds_under_concurrency`].
pub const CAP: u32 = 200;
/// Joins of [`the_cap_holds_under_concurrency`] asking the room at once.
const JOINS_IN_FLIGHT: usize = 64;
/// Rounds of [`random_order_is_uniform`]: each a fresh event with [`LOTTERY_JOINERS`] joiners.
pub const LOTTERY_ROUNDS: usize = 800;
/// Joiners per round of [`random_order_is_uniform`].
pub const LOTTERY_JOINERS: usize = 8;
/// The chi-square statistic's critical value at significance 0.001 with
/// (8 - 1)² = 49 degrees of freedom.
pub const CHI_SQUARE_CRITICAL: f64 = 85.35;

fn customer(n: usize) -> CustomerId {
    CustomerId::new(format!("buyer-{n}")).expect("a valid customer id")
}

fn policy(mode: AdmissionMode, order: QueueOrder, window: TimeDelta) -> AdmissionPolicy {
    AdmissionPolicy::new(mode, order, window).expect("a valid policy")
}

fn secret() -> AdmissionSecret {
    AdmissionSecret::new(b"waiting room contract").expect("a secret")
}

async fn configured(room: &dyn WaitingRoom, policy: AdmissionPolicy) -> EventId {
    let event = new_event();
    room.set_policy(event, Some(policy))
        .await
        .expect("set_policy");
    assert_eq!(room.policy(event).await.expect("policy"), Some(policy));
    event
}

async fn join(
    room: &dyn WaitingRoom,
    event: EventId,
    who: &CustomerId,
    now: DateTime<Utc>,
) -> Place {
    let lottery = secret().lottery(event, who, now);
    room.join(event, who, lottery, now).await.expect("join")
}

fn position(place: &Place) -> u64 {
    match place {
        Place::Waiting { position, .. } => *position,
        other => panic!("expected a place in the queue, got {other:?}"),
    }
}

/// An event without a policy needs no admission: joining stores nothing, the gate lets anyone
/// through, admit admits no one; removing a policy does the same.
pub async fn an_event_without_a_policy_needs_no_admission(room: &dyn WaitingRoom) {
    let event = new_event();
    let alice = customer(1);
    assert_eq!(room.policy(event).await.unwrap(), None);
    assert_eq!(join(room, event, &alice, t0()).await, Place::NotRequired);
    assert_eq!(
        room.place(event, &alice, t0()).await.unwrap(),
        Place::NotRequired
    );
    assert!(room.admit(event, t0()).await.unwrap().is_empty());
    assert_eq!(
        room.begin_purchase(event, &alice, None, t0())
            .await
            .unwrap(),
        Gate::NotRequired
    );
    let with = configured(
        room,
        policy(AdmissionMode::Concurrent(1), QueueOrder::Fifo, secs(60)),
    )
    .await;
    assert_eq!(position(&join(room, with, &alice, t0()).await), 1);
    room.set_policy(with, None).await.unwrap();
    assert_eq!(room.policy(with).await.unwrap(), None);
    assert_eq!(
        room.begin_purchase(with, &alice, None, t0()).await.unwrap(),
        Gate::NotRequired,
        "a removed policy lets anyone buy"
    );
}

/// Joining twice keeps the place; positions count from 1 in arrival order (FIFO); a buyer who
/// never joined is absent.
pub async fn joining_twice_keeps_the_place(room: &dyn WaitingRoom) {
    let event = configured(
        room,
        policy(AdmissionMode::Concurrent(1), QueueOrder::Fifo, secs(60)),
    )
    .await;
    let buyers: Vec<CustomerId> = (0..3).map(customer).collect();
    for (i, buyer) in buyers.iter().enumerate() {
        assert_eq!(
            position(&join(room, event, buyer, t0()).await),
            i as u64 + 1
        );
    }
    assert_eq!(
        position(&join(room, event, &buyers[1], t0() + secs(1)).await),
        2
    );
    assert_eq!(
        position(&room.place(event, &buyers[2], t0()).await.unwrap()),
        3
    );
    assert_eq!(
        room.place(event, &customer(9), t0()).await.unwrap(),
        Place::Absent
    );
    let occupancy = room.occupancy(event, t0()).await.unwrap();
    assert_eq!((occupancy.waiting, occupancy.admitted), (3, 0));
}

/// FIFO admits in arrival order, at most the cap; an admitted buyer who joins again keeps the
/// admission; positions move up as buyers leave the queue.
pub async fn fifo_admits_in_arrival_order_up_to_the_cap(room: &dyn WaitingRoom) {
    let event = configured(
        room,
        policy(AdmissionMode::Concurrent(2), QueueOrder::Fifo, secs(60)),
    )
    .await;
    let buyers: Vec<CustomerId> = (0..5).map(customer).collect();
    for buyer in &buyers {
        join(room, event, buyer, t0()).await;
    }
    let first = room.admit(event, t0()).await.unwrap();
    let who: Vec<&CustomerId> = first.iter().map(|a| &a.customer).collect();
    assert_eq!(who, [&buyers[0], &buyers[1]]);
    assert!(first.iter().all(|a| a.expires == t0() + secs(60)));
    assert_ne!(first[0].id, first[1].id, "admission ids are unique");
    assert!(
        room.admit(event, t0() + ms(1)).await.unwrap().is_empty(),
        "the cap is full"
    );
    assert_eq!(
        position(&room.place(event, &buyers[2], t0()).await.unwrap()),
        1
    );
    assert_eq!(
        join(room, event, &buyers[0], t0() + ms(2)).await,
        Place::Admitted(first[0].clone()),
        "joining again keeps the admission"
    );
    let occupancy = room.occupancy(event, t0()).await.unwrap();
    assert_eq!((occupancy.waiting, occupancy.admitted), (3, 2));
}

/// An admission counts against the cap until its window ends; then it is gone (absent, refused
/// at the gate) and the next buyer is admitted.
pub async fn admissions_lapse_at_the_end_of_their_window(room: &dyn WaitingRoom) {
    let window = secs(10);
    let event = configured(
        room,
        policy(AdmissionMode::Concurrent(1), QueueOrder::Fifo, window),
    )
    .await;
    let (alice, bob) = (customer(1), customer(2));
    join(room, event, &alice, t0()).await;
    join(room, event, &bob, t0()).await;
    let admitted = room.admit(event, t0()).await.unwrap();
    assert_eq!(admitted.len(), 1);
    let end = t0() + window;
    assert!(room.admit(event, end - ms(1)).await.unwrap().is_empty());
    assert!(matches!(
        room.place(event, &alice, end - ms(1)).await.unwrap(),
        Place::Admitted(_)
    ));
    assert_eq!(room.place(event, &alice, end).await.unwrap(), Place::Absent);
    assert_eq!(
        room.begin_purchase(event, &alice, Some(admitted[0].id), end)
            .await
            .unwrap(),
        Gate::Refused(AdmissionRefusal::NotAdmitted),
        "a lapsed admission is refused"
    );
    let next = room.admit(event, end).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].customer, bob);
    assert_eq!(room.occupancy(event, end).await.unwrap().admitted, 1);
}

/// The gate: no token, another admission's id, another customer → refused; the own admission is
/// granted once at a time; a failed purchase gives it back; a bought one is used up (replay
/// refused) and frees its place under the cap.
pub async fn the_gate_lets_each_admission_buy_once(room: &dyn WaitingRoom) {
    let event = configured(
        room,
        policy(AdmissionMode::Concurrent(2), QueueOrder::Fifo, secs(60)),
    )
    .await;
    let (alice, bob, carol) = (customer(1), customer(2), customer(3));
    for buyer in [&alice, &bob, &carol] {
        join(room, event, buyer, t0()).await;
    }
    let admitted = room.admit(event, t0()).await.unwrap();
    let (a, b) = (admitted[0].id, admitted[1].id);
    let now = t0() + secs(1);
    let gate = |who: &CustomerId, id: Option<u64>| {
        let who = who.clone();
        async move { room.begin_purchase(event, &who, id, now).await.unwrap() }
    };
    assert_eq!(
        gate(&alice, None).await,
        Gate::Refused(AdmissionRefusal::Missing)
    );
    assert_eq!(
        gate(&alice, Some(b)).await,
        Gate::Refused(AdmissionRefusal::NotAdmitted)
    );
    assert_eq!(
        gate(&carol, Some(a)).await,
        Gate::Refused(AdmissionRefusal::NotAdmitted)
    );
    assert_eq!(gate(&alice, Some(a)).await, Gate::Granted);
    assert_eq!(
        gate(&alice, Some(a)).await,
        Gate::Refused(AdmissionRefusal::InUse)
    );
    room.finish_purchase(event, &alice, a, false).await.unwrap();
    assert_eq!(
        gate(&alice, Some(a)).await,
        Gate::Granted,
        "a failed purchase gives it back"
    );
    assert!(
        room.admit(event, now).await.unwrap().is_empty(),
        "in use still counts"
    );
    room.finish_purchase(event, &alice, a, true).await.unwrap();
    assert_eq!(
        gate(&alice, Some(a)).await,
        Gate::Refused(AdmissionRefusal::NotAdmitted),
        "a used admission is refused (replay)"
    );
    assert_eq!(room.place(event, &alice, now).await.unwrap(), Place::Absent);
    room.finish_purchase(event, &bob, a, true).await.unwrap();
    assert_eq!(
        gate(&bob, Some(b)).await,
        Gate::Granted,
        "finishing another's id changes nothing"
    );
    let next = room.admit(event, now).await.unwrap();
    assert_eq!(next.len(), 1, "the used admission freed its place");
    assert_eq!(next[0].customer, carol);
}

/// Forgetting an event drops its policy, queue and admissions, and nothing of another event.
pub async fn forgetting_an_event_drops_only_its_room(room: &dyn WaitingRoom) {
    let policy = policy(AdmissionMode::Concurrent(1), QueueOrder::Fifo, secs(60));
    let (gone, kept) = (
        configured(room, policy).await,
        configured(room, policy).await,
    );
    for event in [gone, kept] {
        join(room, event, &customer(1), t0()).await;
        join(room, event, &customer(2), t0()).await;
        assert_eq!(room.admit(event, t0()).await.unwrap().len(), 1);
    }
    room.forget(gone).await.expect("forget");
    assert_eq!(room.policy(gone).await.unwrap(), None);
    assert_eq!(
        room.place(gone, &customer(2), t0()).await.unwrap(),
        Place::NotRequired
    );
    let occupancy = room.occupancy(gone, t0()).await.unwrap();
    assert_eq!((occupancy.waiting, occupancy.admitted), (0, 0));
    let occupancy = room.occupancy(kept, t0()).await.unwrap();
    assert_eq!(
        (occupancy.waiting, occupancy.admitted),
        (1, 1),
        "the other event is kept"
    );
    assert_eq!(room.policy(kept).await.unwrap(), Some(policy));
}

/// At a rate, each second of the clock admits at most the rate, also to concurrent callers.
pub async fn the_rate_admits_at_most_its_number_per_second(room: Arc<dyn WaitingRoom>) {
    let event = configured(
        room.as_ref(),
        policy(AdmissionMode::PerSecond(5), QueueOrder::Fifo, secs(60)),
    )
    .await;
    for n in 0..20 {
        join(room.as_ref(), event, &customer(n), t0()).await;
    }
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let room = room.clone();
            tokio::spawn(async move { room.admit(event, t0() + ms(100)).await.unwrap().len() })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("an admit task");
    }
    assert_eq!(
        total, 5,
        "ten concurrent admits in one second admit the rate"
    );
    assert!(room.admit(event, t0() + ms(999)).await.unwrap().is_empty());
    let next = room.admit(event, t0() + ms(1000)).await.unwrap();
    assert_eq!(next.len(), 5);
    assert_eq!(next[0].customer, customer(5), "in arrival order");
}

/// Test (a) of the waiting room: [`JOINERS`] buyers join concurrently while admitter tasks admit
/// and each admitted buyer buys (its own task) and frees its place; a counter of buyers holding
/// an admission, and the room's own count, never exceed [`CAP`]; everyone is admitted exactly
/// once.
pub async fn the_cap_holds_under_concurrency(room: Arc<dyn WaitingRoom>) {
    let event = configured(
        room.as_ref(),
        policy(
            AdmissionMode::Concurrent(CAP),
            QueueOrder::Fifo,
            TimeDelta::hours(1),
        ),
    )
    .await;
    let now = t0();
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let bought = Arc::new(AtomicU64::new(0));
    // Every joiner is its own task, but at most JOINS_IN_FLIGHT ask the room at once: 10,000
    // joins queued on a database pool at the same instant would starve the admitters and
    // buyers behind them past the pool's acquire timeout on a loaded machine.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(JOINS_IN_FLIGHT));
    let joiners: Vec<_> = (0..JOINERS)
        .map(|n| {
            let (room, in_flight) = (room.clone(), in_flight.clone());
            tokio::spawn(async move {
                let who = customer(n);
                let lottery = secret().lottery(event, &who, now);
                let _turn = in_flight
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                room.join(event, &who, lottery, now).await.expect("join");
            })
        })
        .collect();
    let admitted_ids = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let admitted_customers = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let admitters: Vec<_> = (0..4)
        .map(|_| {
            let (room, bought) = (room.clone(), bought.clone());
            let (holding, most) = (holding.clone(), most.clone());
            let (ids, customers) = (admitted_ids.clone(), admitted_customers.clone());
            tokio::spawn(async move {
                let mut buyers = Vec::new();
                while bought.load(Ordering::SeqCst) < JOINERS as u64 {
                    let batch = room.admit(event, now).await.expect("admit");
                    let occupancy = room.occupancy(event, now).await.expect("occupancy");
                    assert!(
                        occupancy.admitted <= u64::from(CAP),
                        "the room counts {} admitted, above the cap {CAP}",
                        occupancy.admitted
                    );
                    if batch.is_empty() {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                    for admission in batch {
                        assert!(
                            ids.lock().unwrap().insert(admission.id),
                            "admission id reused"
                        );
                        assert!(
                            customers.lock().unwrap().insert(admission.customer.clone()),
                            "{} admitted twice",
                            admission.customer
                        );
                        buyers.push(tokio::spawn(buy(
                            room.clone(),
                            event,
                            admission,
                            [holding.clone(), most.clone()],
                            bought.clone(),
                        )));
                    }
                    if ids.lock().unwrap().len() == JOINERS {
                        break;
                    }
                }
                for buyer in buyers {
                    buyer.await.expect("a buyer task");
                }
            })
        })
        .collect();
    for joiner in joiners {
        joiner.await.expect("a join task");
    }
    for admitter in admitters {
        admitter.await.expect("an admitter task");
    }
    let most = most.load(Ordering::SeqCst);
    eprintln!("cap {CAP}: at most {most} of {JOINERS} buyers held an admission at once");
    assert!(
        most <= CAP as usize,
        "{most} buyers held an admission at once, above the cap {CAP}"
    );
    assert!(most > 1, "the buyers overlapped (most at once: {most})");
    assert_eq!(admitted_customers.lock().unwrap().len(), JOINERS);
    let occupancy = room.occupancy(event, now).await.unwrap();
    assert_eq!((occupancy.waiting, occupancy.admitted), (0, 0));
}

/// One admitted buyer of [`the_cap_holds_under_concurrency`]: counts itself as holding an
/// admission (`counters[0]`, its peak in `counters[1]`), passes the gate, stops counting, and
/// uses the admission up.
async fn buy(
    room: Arc<dyn WaitingRoom>,
    event: EventId,
    admission: Admission,
    counters: [Arc<AtomicUsize>; 2],
    bought: Arc<AtomicU64>,
) {
    let [holding, most] = counters;
    let now = t0();
    let now_holding = holding.fetch_add(1, Ordering::SeqCst) + 1;
    most.fetch_max(now_holding, Ordering::SeqCst);
    let gate = room
        .begin_purchase(event, &admission.customer, Some(admission.id), now)
        .await
        .expect("begin_purchase");
    assert_eq!(gate, Gate::Granted, "a fresh admission is granted");
    tokio::task::yield_now().await;
    holding.fetch_sub(1, Ordering::SeqCst);
    room.finish_purchase(event, &admission.customer, admission.id, true)
        .await
        .expect("finish_purchase");
    bought.fetch_add(1, Ordering::SeqCst);
}

/// Test (c): in the random order, the exit position of each joiner (by arrival) is uniform:
/// over [`LOTTERY_ROUNDS`] events of [`LOTTERY_JOINERS`] joiners with the service's lottery
/// numbers, the chi-square statistic of the joiner × exit-position table stays below
/// [`CHI_SQUARE_CRITICAL`] (significance 0.001). The event ids are fixed, so the outcome is
/// deterministic (no flakiness); a FIFO-like or reversed order scores in the thousands.
pub async fn random_order_is_uniform(room: &dyn WaitingRoom) {
    let k = LOTTERY_JOINERS;
    let mut counts = vec![vec![0u32; k]; k];
    let random = policy(
        AdmissionMode::Concurrent(k as u32),
        QueueOrder::Random,
        secs(60),
    );
    for round in 0..LOTTERY_ROUNDS {
        let event = EventId::from_uuid(Uuid::from_u128(0x5eed_0000_0000_0000 + round as u128));
        room.set_policy(event, Some(random)).await.unwrap();
        let buyers: Vec<CustomerId> = (0..k).map(customer).collect();
        for (n, buyer) in buyers.iter().enumerate() {
            join(room, event, buyer, t0() + ms(n as i64)).await;
        }
        let exits = room.admit(event, t0() + secs(1)).await.unwrap();
        assert_eq!(exits.len(), k);
        for (exit, admission) in exits.iter().enumerate() {
            let joiner = buyers
                .iter()
                .position(|b| *b == admission.customer)
                .expect("an admitted joiner");
            counts[joiner][exit] += 1;
        }
    }
    let expected = LOTTERY_ROUNDS as f64 / k as f64;
    let chi_square: f64 = counts
        .iter()
        .flatten()
        .map(|&o| (f64::from(o) - expected).powi(2) / expected)
        .sum();
    eprintln!("random order: chi-square {chi_square:.1} (critical {CHI_SQUARE_CRITICAL})");
    assert!(
        chi_square < CHI_SQUARE_CRITICAL,
        "exit positions are not uniform: chi-square {chi_square:.1} ≥ {CHI_SQUARE_CRITICAL} ({counts:?})"
    );
}

/// Expands one `#[tokio::test]` per waiting-room check, each with a fresh room from `$fresh`
/// (a path to an `async fn() -> (Arc<dyn WaitingRoom>, G)`; the guard `G` lives until the check
/// ends).
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
#[macro_export]
macro_rules! waiting_room_contract {
    ($fresh:path) => {
        $crate::waiting_room_contract!(@by_ref $fresh;
            an_event_without_a_policy_needs_no_admission,
            joining_twice_keeps_the_place,
            fifo_admits_in_arrival_order_up_to_the_cap,
            admissions_lapse_at_the_end_of_their_window,
            the_gate_lets_each_admission_buy_once,
            forgetting_an_event_drops_only_its_room,
            random_order_is_uniform,
        );
        $crate::waiting_room_contract!(@shared $fresh;
            the_rate_admits_at_most_its_number_per_second,
            the_cap_holds_under_concurrency,
        );
    };
    (@by_ref $fresh:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (room, _guard) = $fresh().await;
            $crate::testkit::contracts::waiting_room::$check(room.as_ref()).await;
        }
    )*};
    (@shared $fresh:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (room, _guard) = $fresh().await;
            $crate::testkit::contracts::waiting_room::$check(room).await;
        }
    )*};
}
