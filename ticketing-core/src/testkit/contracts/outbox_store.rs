//! The [`OutboxStore`] contract: the relay lease (exclusive, lapsing, renewed by its holder,
//! released only by it), the sent cursor (moved by the lease holder alone, never back except by
//! an explicit rewind) and `unsent` (after the cursor, in sequence order, at most the batch).
//!
//! The lease and the cursor are one record per store, so every check expects a fresh store (an
//! empty outbox, cursor 0, no lease). The checks that need entries write them through an
//! [`OutboxFeed`]; [`ReservationFeed`] is one for any
//! [`TicketRepository`] that is its own outbox.
//!
//! ```ignore
//! use ticketing_core::testkit::contracts::outbox_store;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn rewind_moves_the_cursor_back_only() {
//!     let repo = Arc::new(MyRepository::connect(/* a database of this test */).await);
//!     outbox_store::rewind_moves_the_cursor_back_only(&*repo, &ReservationFeed::new(repo.clone()))
//!         .await;
//! }
//! ```

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::{ms, new_event, new_order, seat, secs, t0, zone};
use crate::Result;
use crate::domain::{
    Currency, CustomerId, Money, Order, OrderId, OutboxEntry, Ticket, TicketId, TicketStatus,
    VenueId,
};
use crate::ports::{InsertOutcome, NewOrder, OutboxStore, TicketRepository};
use crate::testkit::checks::race;

/// Relays racing for the lease.
const RELAYS: usize = 16;

/// Writes entries into the outbox under test, as committed state changes do.
#[async_trait]
pub trait OutboxFeed: Send + Sync {
    /// Commits one change that writes exactly one outbox entry, and returns the order the entry
    /// is about. Changes committed one after another are numbered in that order.
    async fn commit_one(&self) -> Result<OrderId>;
}

/// The feed of a repository that keeps its own outbox (the in-memory and the MySQL repositories):
/// each change is a new one-seat order of a fresh event, whose reservation is one entry.
pub struct ReservationFeed {
    repo: Arc<dyn TicketRepository>,
}

impl ReservationFeed {
    /// A feed writing into `repo`.
    pub fn new(repo: Arc<dyn TicketRepository>) -> Self {
        Self { repo }
    }
}

#[async_trait]
impl OutboxFeed for ReservationFeed {
    async fn commit_one(&self) -> Result<OrderId> {
        let (order_id, event_id) = (new_order(), new_event());
        let ticket = Ticket {
            id: TicketId::from_uuid(Uuid::now_v7()),
            order_id,
            event_id,
            venue_id: VenueId::from_uuid(Uuid::now_v7()),
            zone: zone("A"),
            seat: Some(seat("A:1:1")),
            customer: CustomerId::new("contract-feed").expect("a valid customer id"),
            price: Money::new(1_000, Currency::new("EUR").expect("a valid currency")),
            status: TicketStatus::PendingPayment,
            created_on: t0(),
            expires_at: t0() + secs(600),
            paid_at: None,
            payment_ref: None,
        };
        let order = Order::from_tickets(vec![ticket])?.expect("one ticket makes an order");
        let outcome = self
            .repo
            .insert_order(&NewOrder {
                order,
                per_customer_limit: 1,
                general_admission: None,
                idempotency: None,
                voucher: None,
                price_tiers: Vec::new(),
                channel: None,
            })
            .await?;
        assert_eq!(
            outcome,
            InsertOutcome::Inserted,
            "a fresh event's seat is free"
        );
        Ok(order_id)
    }
}

/// Commits `n` changes one after another; their orders in commit order.
async fn commit(feed: &dyn OutboxFeed, n: usize) -> Vec<OrderId> {
    let mut orders = Vec::with_capacity(n);
    for _ in 0..n {
        orders.push(feed.commit_one().await.expect("commit a change"));
    }
    orders
}

/// Reads everything unsent and checks it is exactly `orders`' entries, in sequence order.
async fn unsent_of(store: &dyn OutboxStore, orders: &[OrderId]) -> Vec<OutboxEntry> {
    let entries = store.unsent(1_000).await.expect("unsent");
    assert_eq!(
        entries.iter().map(|e| e.event.order_id).collect::<Vec<_>>(),
        orders,
        "one entry per committed change, in commit order"
    );
    entries
}

fn seqs(entries: &[OutboxEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// A unique relay name, so that a store shared by mistake cannot make a check pass.
fn relay(name: &str) -> String {
    format!("{name}-{}", Uuid::new_v4().simple())
}

/// The lease is held by one relay at a time: another relay is refused up to one millisecond
/// before the deadline and takes it at the deadline, after which the first is refused.
pub async fn the_lease_is_exclusive_until_it_lapses(store: &dyn OutboxStore) {
    let (a, b) = (relay("a"), relay("b"));
    let ttl = secs(10);
    assert!(store.try_acquire_lease(&a, t0(), ttl).await.expect("lease"));
    assert!(
        !store.try_acquire_lease(&b, t0(), ttl).await.expect("lease"),
        "held by a"
    );
    assert!(
        !store
            .try_acquire_lease(&b, t0() + ttl - ms(1), ttl)
            .await
            .expect("lease"),
        "still held one millisecond before the deadline"
    );
    assert!(
        store
            .try_acquire_lease(&b, t0() + ttl, ttl)
            .await
            .expect("lease"),
        "lapsed at the deadline"
    );
    assert!(
        !store
            .try_acquire_lease(&a, t0() + ttl, ttl)
            .await
            .expect("lease"),
        "now held by b"
    );
}

/// Many relays asking for a free lease at once: exactly one gets it, and afterwards only that
/// one renews it.
pub async fn concurrent_relays_take_the_lease_once(store: &Arc<dyn OutboxStore>) {
    let names: Arc<Vec<String>> = Arc::new((0..RELAYS).map(|n| relay(&format!("r{n}"))).collect());
    let ttl = secs(30);
    let got = race(RELAYS, |i| {
        let (store, names) = (store.clone(), names.clone());
        async move { store.try_acquire_lease(&names[i], t0(), ttl).await }
    })
    .await;
    let winners: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, g)| matches!(g, Ok(true)))
        .map(|(i, _)| i)
        .collect();
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    assert_eq!(winners.len(), 1, "exactly one relay holds the lease");
    for (i, name) in names.iter().enumerate() {
        let renewed = store
            .try_acquire_lease(name, t0() + secs(1), ttl)
            .await
            .expect("lease");
        assert_eq!(renewed, i == winners[0], "{name} renewing");
    }
}

/// The holder renews its lease (also with the very same values), moving the deadline; another
/// relay gets it only at the renewed deadline.
pub async fn the_holder_renews_its_lease(store: &dyn OutboxStore) {
    let (a, b) = (relay("a"), relay("b"));
    let ttl = secs(10);
    assert!(store.try_acquire_lease(&a, t0(), ttl).await.expect("lease"));
    assert!(
        store.try_acquire_lease(&a, t0(), ttl).await.expect("lease"),
        "renewing with the same values still answers true"
    );
    let renewed_at = t0() + secs(5);
    assert!(
        store
            .try_acquire_lease(&a, renewed_at, ttl)
            .await
            .expect("lease")
    );
    assert!(
        !store
            .try_acquire_lease(&b, t0() + ttl, ttl)
            .await
            .expect("lease"),
        "the first deadline no longer counts"
    );
    assert!(
        !store
            .try_acquire_lease(&b, renewed_at + ttl - ms(1), ttl)
            .await
            .expect("lease")
    );
    assert!(
        store
            .try_acquire_lease(&b, renewed_at + ttl, ttl)
            .await
            .expect("lease"),
        "lapsed at the renewed deadline"
    );
}

/// Only the holder gives the lease up: a release by another relay changes nothing, the holder's
/// frees it at once (before its deadline).
pub async fn only_the_holder_releases_the_lease(store: &dyn OutboxStore) {
    let (a, b) = (relay("a"), relay("b"));
    let ttl = secs(10);
    assert!(store.try_acquire_lease(&a, t0(), ttl).await.expect("lease"));
    store.release_lease(&b).await.expect("release by another");
    assert!(
        !store
            .try_acquire_lease(&b, t0() + secs(1), ttl)
            .await
            .expect("lease"),
        "a release by another relay changes nothing"
    );
    store
        .release_lease(&a)
        .await
        .expect("release by the holder");
    assert!(
        store
            .try_acquire_lease(&b, t0() + secs(1), ttl)
            .await
            .expect("lease"),
        "free at once"
    );
    store
        .release_lease(&relay("nobody"))
        .await
        .expect("releasing a lease one does not hold is not an error");
}

/// Only the lease holder moves the cursor: without the lease, while another relay holds it, and
/// after the own lease lapsed and was taken over, `mark_sent` and `rewind` answer `false` and
/// change nothing.
pub async fn only_the_lease_holder_moves_the_cursor(
    store: &dyn OutboxStore,
    feed: &dyn OutboxFeed,
) {
    let (a, b) = (relay("a"), relay("b"));
    let orders = commit(feed, 3).await;
    let entries = unsent_of(store, &orders).await;
    let (first, last) = (entries[0].seq, entries[2].seq);
    let ttl = secs(10);

    assert!(
        !store.mark_sent(&a, last).await.expect("mark_sent"),
        "no lease"
    );
    assert_eq!(store.sent_up_to().await.expect("cursor"), 0);

    assert!(store.try_acquire_lease(&a, t0(), ttl).await.expect("lease"));
    assert!(!store.mark_sent(&b, last).await.expect("mark_sent"));
    assert!(!store.rewind(&b, 0).await.expect("rewind"));
    assert_eq!(
        store.sent_up_to().await.expect("cursor"),
        0,
        "b is not the holder"
    );
    assert!(store.mark_sent(&a, first).await.expect("mark_sent"));
    assert_eq!(store.sent_up_to().await.expect("cursor"), first);

    // a's lease lapses and b takes over: a's late calls are refused.
    assert!(
        store
            .try_acquire_lease(&b, t0() + ttl, ttl)
            .await
            .expect("lease")
    );
    assert!(!store.mark_sent(&a, last).await.expect("mark_sent"));
    assert!(!store.rewind(&a, 0).await.expect("rewind"));
    assert_eq!(store.sent_up_to().await.expect("cursor"), first);
    assert!(store.mark_sent(&b, last).await.expect("mark_sent"));
    assert_eq!(store.sent_up_to().await.expect("cursor"), last);
}

/// `mark_sent` only moves the cursor forward: an older number answers `true` (the caller holds
/// the lease) and leaves the cursor where it is.
pub async fn mark_sent_never_moves_the_cursor_back(store: &dyn OutboxStore, feed: &dyn OutboxFeed) {
    let r = relay("r");
    let orders = commit(feed, 5).await;
    let entries = unsent_of(store, &orders).await;
    let s = seqs(&entries);
    assert!(
        store
            .try_acquire_lease(&r, t0(), secs(10))
            .await
            .expect("lease")
    );

    assert!(store.mark_sent(&r, s[2]).await.expect("mark_sent"));
    assert_eq!(store.sent_up_to().await.expect("cursor"), s[2]);
    assert!(
        store.mark_sent(&r, s[0]).await.expect("mark_sent"),
        "holder may call"
    );
    assert_eq!(
        store.sent_up_to().await.expect("cursor"),
        s[2],
        "never backwards"
    );
    assert_eq!(seqs(&store.unsent(100).await.expect("unsent")), &s[3..]);
    assert!(store.mark_sent(&r, s[4]).await.expect("mark_sent"));
    assert!(store.unsent(100).await.expect("unsent").is_empty());
}

/// `rewind` only moves the cursor back (a later number leaves it where it is), and the entries
/// after it are read again.
pub async fn rewind_moves_the_cursor_back_only(store: &dyn OutboxStore, feed: &dyn OutboxFeed) {
    let r = relay("r");
    let orders = commit(feed, 5).await;
    let entries = unsent_of(store, &orders).await;
    let s = seqs(&entries);
    assert!(
        store
            .try_acquire_lease(&r, t0(), secs(10))
            .await
            .expect("lease")
    );
    assert!(store.mark_sent(&r, s[4]).await.expect("mark_sent"));

    assert!(store.rewind(&r, s[1]).await.expect("rewind"));
    assert_eq!(store.sent_up_to().await.expect("cursor"), s[1]);
    assert_eq!(
        store.unsent(100).await.expect("unsent"),
        entries[2..].to_vec(),
        "the entries after the cursor are read again, unchanged"
    );
    assert!(
        store.rewind(&r, s[3]).await.expect("rewind"),
        "holder may call"
    );
    assert_eq!(
        store.sent_up_to().await.expect("cursor"),
        s[1],
        "never forwards"
    );
    assert!(store.rewind(&r, 0).await.expect("rewind"));
    assert_eq!(store.unsent(100).await.expect("unsent"), entries);
}

/// A fresh store has sent nothing; `unsent` returns the entries after the cursor, one per
/// committed change, in increasing sequence order, including changes committed after an earlier
/// read.
pub async fn unsent_reads_after_the_cursor_in_sequence_order(
    store: &dyn OutboxStore,
    feed: &dyn OutboxFeed,
) {
    let r = relay("r");
    assert_eq!(
        store.sent_up_to().await.expect("cursor"),
        0,
        "a fresh store"
    );
    assert!(store.unsent(100).await.expect("unsent").is_empty());

    let mut orders = commit(feed, 4).await;
    let entries = unsent_of(store, &orders).await;
    let s = seqs(&entries);
    assert!(
        s[0] > 0 && s.windows(2).all(|w| w[0] < w[1]),
        "increasing sequence numbers above the cursor: {s:?}"
    );

    assert!(
        store
            .try_acquire_lease(&r, t0(), secs(10))
            .await
            .expect("lease")
    );
    assert!(store.mark_sent(&r, s[1]).await.expect("mark_sent"));
    assert_eq!(
        store.unsent(100).await.expect("unsent"),
        entries[2..].to_vec()
    );

    orders.extend(commit(feed, 2).await);
    let more = store.unsent(100).await.expect("unsent");
    assert_eq!(
        more.iter().map(|e| e.event.order_id).collect::<Vec<_>>(),
        &orders[2..],
        "later changes come after the earlier ones"
    );
    assert!(seqs(&more).windows(2).all(|w| w[0] < w[1]), "{more:?}");
}

/// `unsent(limit)` returns at most `limit` entries: the first ones after the cursor.
pub async fn unsent_returns_at_most_the_batch_limit(
    store: &dyn OutboxStore,
    feed: &dyn OutboxFeed,
) {
    let r = relay("r");
    let orders = commit(feed, 5).await;
    let entries = unsent_of(store, &orders).await;
    for limit in [1, 2, 5, 6] {
        let batch = store.unsent(limit).await.expect("unsent");
        assert_eq!(
            batch,
            entries[..entries.len().min(limit as usize)].to_vec(),
            "limit {limit}"
        );
    }
    assert!(
        store
            .try_acquire_lease(&r, t0(), secs(10))
            .await
            .expect("lease")
    );
    assert!(
        store
            .mark_sent(&r, entries[1].seq)
            .await
            .expect("mark_sent")
    );
    assert_eq!(
        store.unsent(2).await.expect("unsent"),
        entries[2..4].to_vec()
    );
}

/// `prune` deletes published entries recorded before the cut-off, oldest first and at most
/// `limit` per call, and never an entry after the sent cursor, however old: those are still
/// read by `unsent`.
pub async fn prune_deletes_only_published_entries_before_the_cut_off(
    store: &dyn OutboxStore,
    feed: &dyn OutboxFeed,
) {
    let r = relay("r");
    let orders = commit(feed, 5).await;
    let entries = unsent_of(store, &orders).await;
    let later = t0() + secs(3_600);
    assert_eq!(
        store.prune(later, 100).await.expect("prune"),
        0,
        "nothing sent"
    );
    assert!(
        store
            .try_acquire_lease(&r, t0(), secs(10))
            .await
            .expect("lease")
    );
    assert!(
        store
            .mark_sent(&r, entries[2].seq)
            .await
            .expect("mark_sent")
    );
    assert_eq!(
        store.prune(t0(), 100).await.expect("prune"),
        0,
        "entries recorded at the cut-off are kept"
    );
    assert_eq!(
        store.prune(later, 2).await.expect("prune"),
        2,
        "at most the limit"
    );
    assert_eq!(
        store.prune(later, 100).await.expect("prune"),
        1,
        "up to the cursor"
    );
    assert_eq!(store.prune(later, 100).await.expect("prune"), 0);
    assert_eq!(
        store.unsent(100).await.expect("unsent"),
        entries[3..].to_vec(),
        "unsent entries survive"
    );
    assert_eq!(store.sent_up_to().await.expect("cursor"), entries[2].seq);
    let more = commit(feed, 1).await;
    let unsent = store.unsent(100).await.expect("unsent");
    assert_eq!(
        unsent.iter().map(|e| e.event.order_id).collect::<Vec<_>>(),
        [&orders[3..], &more[..]].concat(),
        "numbering continues after a prune"
    );
    assert_eq!(unsent[2].seq, entries[4].seq + 1);
}

/// What the outbox checks need: a fresh store and a feed writing into it.
pub struct OutboxStoreContext {
    /// The store under test, fresh.
    pub store: Arc<dyn OutboxStore>,
    /// Writes entries into it.
    pub feed: Arc<dyn OutboxFeed>,
}

/// Runs every check, each on a fresh context from `fresh` (the checks share one lease and one
/// cursor, so they cannot share a store). A failed check panics.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = OutboxStoreContext>,
{
    let c = fresh().await;
    the_lease_is_exclusive_until_it_lapses(c.store.as_ref()).await;
    let c = fresh().await;
    concurrent_relays_take_the_lease_once(&c.store).await;
    let c = fresh().await;
    the_holder_renews_its_lease(c.store.as_ref()).await;
    let c = fresh().await;
    only_the_holder_releases_the_lease(c.store.as_ref()).await;
    let c = fresh().await;
    only_the_lease_holder_moves_the_cursor(c.store.as_ref(), c.feed.as_ref()).await;
    let c = fresh().await;
    mark_sent_never_moves_the_cursor_back(c.store.as_ref(), c.feed.as_ref()).await;
    let c = fresh().await;
    rewind_moves_the_cursor_back_only(c.store.as_ref(), c.feed.as_ref()).await;
    let c = fresh().await;
    unsent_reads_after_the_cursor_in_sequence_order(c.store.as_ref(), c.feed.as_ref()).await;
    let c = fresh().await;
    unsent_returns_at_most_the_batch_limit(c.store.as_ref(), c.feed.as_ref()).await;
    let c = fresh().await;
    prune_deletes_only_published_entries_before_the_cut_off(c.store.as_ref(), c.feed.as_ref())
        .await;
}
