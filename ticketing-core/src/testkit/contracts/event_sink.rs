//! The [`EventSink`] contract: what the outbox relay relies on from every sink (Redis Streams,
//! NATS JetStream, RabbitMQ, …), checked through the sink and the broker's own read-back.
//!
//! - **Acknowledged means held.** After `publish` returned `Ok`, the entries are in the sink, in
//!   sequence order, exactly as published.
//! - **Republishing is harmless.** A batch published again (a relay that crashed between
//!   publishing and marking it sent), overlapping or after a prefix of it was taken (a publish
//!   that failed half way), leaves every sequence number held once. A sink may drop the repeats
//!   itself or keep them with their sequence number, so that consumers skip them (a capability,
//!   [`EventSinkCapabilities::drops_duplicates`]); either way the first occurrence of each
//!   number comes in sequence order.
//! - **A loss is seen.** `high_water_mark` is the highest sequence number held; after the broker
//!   lost its data it is below what the relay marked sent, the relay rewinds, and publishing
//!   again restores every entry.
//!
//! Every check expects a fresh sink (its own stream, queue or key prefix), since sequence
//! numbers start at 1 in each. The broker's read-back is a [`SinkLog`].
//!
//! ```ignore
//! use ticketing_core::testkit::contracts::event_sink::{self, EventSinkCapabilities};
//!
//! #[tokio::test]
//! async fn a_republished_batch_is_held_once() {
//!     let (sink, log) = fresh_sink().await; // a stream of this test alone
//!     event_sink::a_republished_batch_is_held_once(&sink, &log, CAPABILITIES).await;
//! }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{new_event, new_order, t0, zone};
use crate::domain::{
    Currency, CustomerId, Money, OUTBOX_SCHEMA_VERSION, OutboxEntry, OutboxEvent, OutboxKind,
    OutboxLine, TicketId, VenueId,
};
use crate::memory::InMemoryTicketRepository;
use crate::ports::{EventSink, ManualClock, OutboxStore, TicketRepository};
use crate::service::{OutboxRelay, RelayConfig, RelayRound};
use crate::testkit::contracts::outbox_store::{OutboxFeed, ReservationFeed};

/// How a sink legitimately differs from others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSinkCapabilities {
    /// The sink refuses an entry whose sequence number it holds already (Redis Streams, NATS
    /// JetStream with expected sequences). `false`: it keeps the repeat with its sequence
    /// number, and consumers skip it (RabbitMQ with publisher confirms).
    pub drops_duplicates: bool,
}

/// The broker's own view of a sink under test.
#[async_trait]
pub trait SinkLog: Send + Sync {
    /// Every entry the sink holds, in the order a consumer reads them, repeats included.
    async fn held(&self) -> Vec<OutboxEntry>;

    /// Makes the sink lose everything it holds, as a broker restarted without persistence or a
    /// stream deleted by hand would.
    async fn lose_everything(&self);

    /// Deletes what the sink created (its stream, queue or keys); run when a check passed.
    async fn remove(&self);
}

/// Entries `seqs` of one event: each a reservation of two tickets of a new order in zones `A`
/// and `GA`, so every field a read model aggregates is set.
pub fn entries(seqs: std::ops::RangeInclusive<u64>) -> Vec<OutboxEntry> {
    let (event_id, venue_id) = (new_event(), VenueId::from_uuid(Uuid::now_v7()));
    let eur = Currency::new("EUR").expect("a valid currency");
    seqs.map(|seq| {
        let lines: Vec<OutboxLine> = [("A", 1_500), ("GA", 700)]
            .into_iter()
            .map(|(code, minor)| OutboxLine {
                ticket_id: TicketId::from_uuid(Uuid::now_v7()),
                zone: zone(code),
                seat: None,
                price: Money::new(minor, eur),
            })
            .collect();
        OutboxEntry {
            seq,
            event: OutboxEvent {
                version: OUTBOX_SCHEMA_VERSION,
                kind: OutboxKind::TicketReserved,
                order_id: new_order(),
                event_id,
                venue_id,
                customer: CustomerId::new("sink-contract").expect("a valid customer id"),
                ticket_ids: lines.iter().map(|l| l.ticket_id).collect(),
                seats: Vec::new(),
                amount: Money::new(2_200, eur),
                at: t0(),
                lines,
                payment: None,
                deadline: None,
                channel: None,
                offer: None,
            },
        }
    })
    .collect()
}

/// What a consumer idempotent by sequence number applies from `held`: each entry whose number
/// is above the last applied one. Panics when a repeat differs from the entry first held under
/// its number, or when a repeat is held although the sink `drops_duplicates`.
fn applied(held: &[OutboxEntry], drops_duplicates: bool) -> Vec<OutboxEntry> {
    let mut first: BTreeMap<u64, &OutboxEntry> = BTreeMap::new();
    let mut applied: Vec<OutboxEntry> = Vec::new();
    for entry in held {
        if let Some(earlier) = first.get(&entry.seq) {
            assert!(
                !drops_duplicates,
                "seq {} is held twice by a sink that drops duplicates",
                entry.seq
            );
            assert_eq!(
                *earlier, entry,
                "a repeat of seq {} differs from the entry first held",
                entry.seq
            );
            continue;
        }
        first.insert(entry.seq, entry);
        if applied.last().is_none_or(|last| entry.seq > last.seq) {
            applied.push(entry.clone());
        } else {
            panic!(
                "seq {} is held after seq {} although it was never held before",
                entry.seq,
                applied.last().map_or(0, |l| l.seq)
            );
        }
    }
    applied
}

async fn publish(sink: &dyn EventSink, entries: &[OutboxEntry]) {
    sink.publish(entries)
        .await
        .unwrap_or_else(|e| panic!("publish seq {:?}: {e}", entries.first().map(|e| e.seq)));
}

async fn high_water(sink: &dyn EventSink) -> u64 {
    sink.high_water_mark()
        .await
        .expect("high_water_mark")
        .expect("the sink tells its high-water mark")
}

/// An empty sink's high-water mark is 0; published batches are held in sequence order, exactly
/// as published, and the high-water mark is the last sequence number.
pub async fn published_entries_are_held_in_sequence_order(sink: &dyn EventSink, log: &dyn SinkLog) {
    assert_eq!(high_water(sink).await, 0, "an empty sink holds nothing");
    let all = entries(1..=6);
    publish(sink, &all[..1]).await;
    publish(sink, &all[1..4]).await;
    publish(sink, &all[4..]).await;
    publish(sink, &[]).await;
    assert_eq!(
        log.held().await,
        all,
        "every acknowledged entry held once, in order"
    );
    assert_eq!(high_water(sink).await, 6);
}

/// A batch published again, and one that overlaps it, leave every sequence number applied once
/// and in order; the high-water mark is the last number.
pub async fn a_republished_batch_is_held_once(
    sink: &dyn EventSink,
    log: &dyn SinkLog,
    capabilities: EventSinkCapabilities,
) {
    let all = entries(1..=6);
    publish(sink, &all[..4]).await;
    publish(sink, &all[..4]).await;
    publish(sink, &all[2..]).await;
    let held = log.held().await;
    assert_eq!(
        applied(&held, capabilities.drops_duplicates),
        all,
        "each sequence number applied once, in order"
    );
    if capabilities.drops_duplicates {
        assert_eq!(held.len(), all.len(), "repeats dropped by the sink");
    }
    assert_eq!(high_water(sink).await, 6);
}

/// A publish that failed after the sink took a prefix of the batch is followed by the whole
/// batch (the relay's retry): every entry applied once, in order.
pub async fn a_batch_retried_after_a_prefix_was_taken_is_held_once(
    sink: &dyn EventSink,
    log: &dyn SinkLog,
    capabilities: EventSinkCapabilities,
) {
    let all = entries(1..=5);
    publish(sink, &all[..2]).await;
    assert_eq!(high_water(sink).await, 2, "the prefix is held");
    publish(sink, &all).await;
    assert_eq!(
        applied(&log.held().await, capabilities.drops_duplicates),
        all,
        "the retried batch completes the prefix"
    );
    assert_eq!(high_water(sink).await, 5);
}

/// A real relay over an in-memory outbox publishes five changes; the broker loses them; the
/// relay's next round sees the high-water mark below its cursor and rewinds, and the round
/// after publishes them again: the sink holds every entry, in order.
pub async fn a_loss_makes_the_relay_rewind_and_publish_again(
    sink: Arc<dyn EventSink>,
    log: &dyn SinkLog,
    capabilities: EventSinkCapabilities,
) {
    let repo = Arc::new(InMemoryTicketRepository::new());
    let feed = ReservationFeed::new(repo.clone() as Arc<dyn TicketRepository>);
    for _ in 0..5 {
        feed.commit_one().await.expect("commit a change");
    }
    let outbox = repo.unsent(100).await.expect("unsent");
    let relay = OutboxRelay::new(
        repo.clone(),
        sink.clone(),
        Arc::new(ManualClock::new(t0())),
        RelayConfig {
            relay_id: "sink-contract".into(),
            batch_size: 100,
            lease_ttl: Duration::from_secs(60),
            ..RelayConfig::default()
        },
    )
    .expect("relay config");
    let round = relay.run_once().await.expect("first round");
    assert_eq!(
        round,
        RelayRound::Published {
            entries: 5,
            up_to: 5
        }
    );
    assert_eq!(
        applied(&log.held().await, capabilities.drops_duplicates),
        outbox
    );

    log.lose_everything().await;
    assert!(
        high_water(sink.as_ref()).await < 5,
        "the high-water mark shows the loss"
    );
    match relay.run_once().await.expect("the round after the loss") {
        RelayRound::Rewound { from: 5, to } => assert!(to < 5, "rewound to {to}"),
        other => panic!("the relay should rewind after the loss, did {other:?}"),
    }
    let republished = relay.run_once().await.expect("the round after the rewind");
    assert!(
        matches!(republished, RelayRound::Published { up_to: 5, .. }),
        "{republished:?}"
    );
    assert_eq!(
        applied(&log.held().await, capabilities.drops_duplicates),
        outbox,
        "everything lost is held again"
    );
    assert_eq!(high_water(sink.as_ref()).await, 5);
    assert_eq!(
        relay.run_once().await.expect("caught up"),
        RelayRound::CaughtUp
    );
}

/// Expands one `#[tokio::test]` per check of this module, each on a fresh sink and its log from
/// `$fresh` (a path to an `async fn() -> (Arc<dyn EventSink>, impl SinkLog)`), removing them
/// when the check passed (a failed check leaves its stream for a look).
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
#[macro_export]
macro_rules! event_sink_contract {
    ($fresh:path, $capabilities:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn published_entries_are_held_in_sequence_order() {
            use $crate::testkit::contracts::event_sink::{self as contract, SinkLog as _};
            let (sink, log) = $fresh().await;
            contract::published_entries_are_held_in_sequence_order(sink.as_ref(), &log).await;
            log.remove().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_republished_batch_is_held_once() {
            use $crate::testkit::contracts::event_sink::{self as contract, SinkLog as _};
            let (sink, log) = $fresh().await;
            contract::a_republished_batch_is_held_once(sink.as_ref(), &log, $capabilities).await;
            log.remove().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_batch_retried_after_a_prefix_was_taken_is_held_once() {
            use $crate::testkit::contracts::event_sink::{self as contract, SinkLog as _};
            let (sink, log) = $fresh().await;
            contract::a_batch_retried_after_a_prefix_was_taken_is_held_once(
                sink.as_ref(),
                &log,
                $capabilities,
            )
            .await;
            log.remove().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_loss_makes_the_relay_rewind_and_publish_again() {
            use $crate::testkit::contracts::event_sink::{self as contract, SinkLog as _};
            let (sink, log) = $fresh().await;
            contract::a_loss_makes_the_relay_rewind_and_publish_again(sink, &log, $capabilities)
                .await;
            log.remove().await;
        }
    };
}

/// Runs every check, each on a fresh sink and its log from `fresh`. A failed check panics.
pub async fn run_all<F, Fut, L>(fresh: F, capabilities: EventSinkCapabilities)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn EventSink>, L)>,
    L: SinkLog,
{
    let (sink, log) = fresh().await;
    published_entries_are_held_in_sequence_order(sink.as_ref(), &log).await;
    log.remove().await;
    let (sink, log) = fresh().await;
    a_republished_batch_is_held_once(sink.as_ref(), &log, capabilities).await;
    log.remove().await;
    let (sink, log) = fresh().await;
    a_batch_retried_after_a_prefix_was_taken_is_held_once(sink.as_ref(), &log, capabilities).await;
    log.remove().await;
    let (sink, log) = fresh().await;
    a_loss_makes_the_relay_rewind_and_publish_again(sink, &log, capabilities).await;
    log.remove().await;
}
