//! `OutboxRelay`: publishes the outbox to an event sink, in order, at least once.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;

use crate::ports::{Clock, EventSink, OutboxStore};
use crate::{Error, Result};

/// Settings of an [`OutboxRelay`]. `Default` gives production values and a random relay id.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// This relay's name in the lease; unique per running relay (a restarted relay may reuse its
    /// old name to take its lease back at once instead of waiting for it to lapse).
    pub relay_id: String,
    /// Most entries read and published per round.
    pub batch_size: u32,
    /// How long the lease lasts after each round renews it. Must exceed the longest round (one
    /// read, one publish, one mark), or a second relay may publish the same entries (harmless,
    /// but wasted work).
    pub lease_ttl: Duration,
    /// Pause between rounds when there was nothing to publish or another relay holds the lease.
    pub poll_interval: Duration,
    /// Pause after the first failed round; it doubles with every failure in a row.
    pub backoff_min: Duration,
    /// Longest pause between failed rounds.
    pub backoff_max: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            relay_id: format!("relay-{}", uuid::Uuid::new_v4().simple()),
            batch_size: 500,
            lease_ttl: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl RelayConfig {
    /// The pause after `failures` failed rounds in a row (at least one): `backoff_min` doubled
    /// `failures - 1` times, at most `backoff_max`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.backoff_min
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// What one [`OutboxRelay::run_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRound {
    /// Another relay holds the lease (or took it during the round); nothing was marked sent.
    Standby,
    /// This relay holds the lease and everything is published.
    CaughtUp,
    /// Entries were published and marked sent.
    Published {
        /// How many.
        entries: usize,
        /// The sequence number of the last one.
        up_to: u64,
    },
    /// The sink holds less than was marked sent (it lost data): the cursor moved back so the
    /// lost entries are published again.
    Rewound {
        /// The cursor before.
        from: u64,
        /// The cursor now: the sink's high-water mark.
        to: u64,
    },
}

/// Counters of one relay, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Rounds run, failed ones included.
    pub rounds: u64,
    /// Rounds that failed (store or sink unavailable).
    pub failures: u64,
    /// Failed rounds since the last successful one.
    pub consecutive_failures: u32,
    /// Entries this relay published and marked sent.
    pub published: u64,
    /// Times the sink was found to have lost data and the cursor moved back.
    pub rewinds: u64,
    /// Whether the last successful round held the lease.
    pub leading: bool,
    /// The pause [`OutboxRelay::run`] is taking or took last after a failure.
    pub last_backoff: Duration,
}

/// Publishes the outbox to an [`EventSink`]: each round takes or renews the lease, reads the
/// unsent entries after the sent cursor, publishes them in order and moves the cursor.
///
/// Several relays may run (one per server instance): the lease lets one publish at a time, the
/// others wait in standby and take over when its lease lapses. Delivery is at-least-once: a relay
/// that dies after publishing and before marking republishes on the next round (or its successor
/// does), and the sink or the consumers drop the duplicates by sequence number. A failing store or
/// sink makes [`run`](Self::run) back off (bounded exponential) and catch up once it is back.
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    config: RelayConfig,
    stats: Mutex<RelayStats>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay from `store` to `sink`, timing its lease with `clock`. Fails with
    /// [`Error::Config`] for a zero batch size, an empty relay id or a lease TTL that
    /// does not fit a [`TimeDelta`].
    pub fn new(
        store: Arc<dyn OutboxStore>,
        sink: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
        config: RelayConfig,
    ) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if config.relay_id.is_empty() {
            return Err(Error::config("relay_id", "must not be empty"));
        }
        if TimeDelta::from_std(config.lease_ttl).is_err() || config.lease_ttl.is_zero() {
            return Err(Error::config("lease_ttl", "must be positive and finite"));
        }
        Ok(Self {
            store,
            sink,
            clock,
            config,
            stats: Mutex::new(RelayStats::default()),
        })
    }

    /// This relay's id in the lease.
    pub fn id(&self) -> &str {
        &self.config.relay_id
    }

    /// The counters so far.
    pub fn stats(&self) -> RelayStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut RelayStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One round: lease, high-water check, read, publish, mark. Errors of the store or the sink
    /// are returned (and counted); nothing is lost by a failed round, it is simply run again.
    pub async fn run_once(&self) -> Result<RelayRound> {
        let round = self.round().await;
        self.update(|s| {
            s.rounds += 1;
            match &round {
                Ok(outcome) => {
                    s.consecutive_failures = 0;
                    s.leading = *outcome != RelayRound::Standby;
                    match *outcome {
                        RelayRound::Published { entries, .. } => s.published += entries as u64,
                        RelayRound::Rewound { .. } => s.rewinds += 1,
                        RelayRound::Standby | RelayRound::CaughtUp => {}
                    }
                }
                Err(_) => {
                    s.failures += 1;
                    s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                }
            }
        });
        round
    }

    async fn round(&self) -> Result<RelayRound> {
        let id = self.id();
        let ttl = TimeDelta::from_std(self.config.lease_ttl)
            .map_err(|e| Error::internal(format!("lease_ttl: {e}")))?;
        if !self
            .store
            .try_acquire_lease(id, self.clock.now(), ttl)
            .await?
        {
            return Ok(RelayRound::Standby);
        }
        if let Some(mark) = self.sink.high_water_mark().await? {
            let sent = self.store.sent_up_to().await?;
            if mark < sent {
                tracing::warn!(
                    relay = id,
                    sent,
                    sink_holds = mark,
                    "the event sink lost entries; publishing them again"
                );
                if !self.store.rewind(id, mark).await? {
                    return Ok(RelayRound::Standby);
                }
                return Ok(RelayRound::Rewound {
                    from: sent,
                    to: mark,
                });
            }
        }
        let batch = self.store.unsent(self.config.batch_size).await?;
        let Some(last) = batch.last() else {
            return Ok(RelayRound::CaughtUp);
        };
        let up_to = last.seq;
        self.sink.publish(&batch).await?;
        if !self.store.mark_sent(id, up_to).await? {
            // Another relay took the lease meanwhile; it publishes these again (duplicates the
            // sink drops) and owns the cursor now.
            return Ok(RelayRound::Standby);
        }
        Ok(RelayRound::Published {
            entries: batch.len(),
            up_to,
        })
    }

    /// Runs rounds until `shutdown` completes, then gives the lease up. A full batch is followed
    /// by the next round at once (catching up); an empty one or standby by
    /// [`RelayConfig::poll_interval`]; a failure by the backoff. A round in progress when
    /// `shutdown` completes is finished first.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let delay = match self.run_once().await {
                Ok(RelayRound::Published { entries, .. })
                    if entries >= self.config.batch_size as usize =>
                {
                    Duration::ZERO
                }
                Ok(RelayRound::Rewound { .. }) => Duration::ZERO,
                Ok(_) => self.config.poll_interval,
                Err(error) => {
                    let failures = self.stats().consecutive_failures;
                    let delay = self.config.backoff(failures);
                    self.update(|s| s.last_backoff = delay);
                    tracing::warn!(
                        relay = self.id(),
                        %error,
                        failures,
                        retry_in = ?delay,
                        "outbox relay round failed; backing off"
                    );
                    delay
                }
            };
            // A zero timeout still polls `shutdown` once before it elapses.
            if tokio::time::timeout(delay, &mut shutdown).await.is_ok() {
                break;
            }
        }
        if let Err(error) = self.store.release_lease(self.id()).await {
            tracing::warn!(relay = self.id(), %error, "could not give the relay lease up");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{InMemoryEventSink, InMemoryTicketRepository};
    use crate::ports::{ManualClock, SystemClock};
    use crate::testkit::{Fixture, Harness, Layout};

    fn relay(
        store: &Arc<InMemoryTicketRepository>,
        sink: &Arc<InMemoryEventSink>,
        clock: Arc<dyn Clock>,
        id: &str,
        batch_size: u32,
    ) -> OutboxRelay {
        OutboxRelay::new(
            store.clone(),
            sink.clone(),
            clock,
            RelayConfig {
                relay_id: id.into(),
                batch_size,
                lease_ttl: Duration::from_secs(5),
                poll_interval: Duration::from_millis(1),
                backoff_min: Duration::from_millis(1),
                backoff_max: Duration::from_millis(8),
            },
        )
        .expect("valid config")
    }

    /// A repository with `orders` paid orders (two outbox entries each) on a fixture event.
    async fn repository_with_orders(orders: u32) -> Arc<InMemoryTicketRepository> {
        let repo = Arc::new(InMemoryTicketRepository::new());
        let mut harness = Harness::in_memory();
        harness.tickets = repo.clone();
        let fixture = Fixture::new(&harness, Layout::default()).await;
        for n in 0..orders {
            let order = fixture.buy(&format!("c{n}"), vec![fixture.seat(n)]).await;
            fixture
                .tickets
                .pay(crate::domain::PaymentNotice::for_order(
                    &order,
                    format!("pay-{n}").parse().expect("ref"),
                ))
                .await
                .expect("pay");
        }
        repo
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let config = RelayConfig {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(70),
            ..RelayConfig::default()
        };
        let delays: Vec<u64> = (1..=6)
            .map(|n| config.backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [10, 20, 40, 70, 70, 70]);
        assert_eq!(config.backoff(u32::MAX), Duration::from_millis(70));
    }

    #[tokio::test]
    async fn publishes_everything_in_order_in_batches() {
        let repo = repository_with_orders(5).await;
        let sink = Arc::new(InMemoryEventSink::new());
        let relay = relay(&repo, &sink, Arc::new(SystemClock), "r1", 3);
        let mut rounds = Vec::new();
        loop {
            let round = relay.run_once().await.expect("round");
            rounds.push(round);
            if round == RelayRound::CaughtUp {
                break;
            }
        }
        assert_eq!(
            rounds,
            [
                RelayRound::Published {
                    entries: 3,
                    up_to: 3
                },
                RelayRound::Published {
                    entries: 3,
                    up_to: 6
                },
                RelayRound::Published {
                    entries: 3,
                    up_to: 9
                },
                RelayRound::Published {
                    entries: 1,
                    up_to: 10
                },
                RelayRound::CaughtUp,
            ]
        );
        let seqs: Vec<u64> = sink.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
        assert_eq!(repo.sent_up_to().await.expect("cursor"), 10);
        assert_eq!(sink.duplicates(), 0);
    }

    #[tokio::test]
    async fn only_the_lease_holder_publishes_until_its_lease_lapses() {
        let repo = repository_with_orders(2).await;
        let sink = Arc::new(InMemoryEventSink::new());
        let start = chrono::Utc::now();
        let clock = Arc::new(ManualClock::new(start));
        let first = relay(&repo, &sink, clock.clone(), "first", 2);
        let second = relay(&repo, &sink, clock.clone(), "second", 2);
        assert!(matches!(
            first.run_once().await.expect("round"),
            RelayRound::Published { up_to: 2, .. }
        ));
        assert_eq!(second.run_once().await.expect("round"), RelayRound::Standby);
        assert_eq!(repo.sent_up_to().await.expect("cursor"), 2);
        // `first` dies without releasing; its lease lapses and `second` takes over.
        clock.set(start + TimeDelta::seconds(6));
        assert!(matches!(
            second.run_once().await.expect("round"),
            RelayRound::Published { up_to: 4, .. }
        ));
        // The old holder is refused the cursor now.
        assert!(!repo.mark_sent("first", 4).await.expect("mark"));
        assert_eq!(first.run_once().await.expect("round"), RelayRound::Standby);
        assert_eq!(sink.entries().len(), 4);
    }

    #[tokio::test]
    async fn a_crash_between_publish_and_mark_costs_only_duplicates() {
        let repo = repository_with_orders(3).await;
        let sink = Arc::new(InMemoryEventSink::new());
        // The crashed relay published everything but marked nothing.
        let unsent = repo.unsent(100).await.expect("unsent");
        sink.publish(&unsent).await.expect("publish");
        let relay = relay(&repo, &sink, Arc::new(SystemClock), "successor", 100);
        assert!(matches!(
            relay.run_once().await.expect("round"),
            RelayRound::Published { up_to: 6, .. }
        ));
        assert_eq!(sink.duplicates(), 6);
        assert_eq!(sink.entries().len(), 6);
    }

    #[tokio::test]
    async fn a_sink_that_lost_data_is_refilled() {
        let repo = repository_with_orders(2).await;
        let sink = Arc::new(InMemoryEventSink::new());
        let relay = relay(&repo, &sink, Arc::new(SystemClock), "r", 100);
        relay.run_once().await.expect("round");
        sink.lose_everything();
        assert_eq!(
            relay.run_once().await.expect("round"),
            RelayRound::Rewound { from: 4, to: 0 }
        );
        relay.run_once().await.expect("round");
        let seqs: Vec<u64> = sink.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn run_backs_off_while_the_sink_is_down_and_catches_up_after() {
        let repo = repository_with_orders(4).await;
        let sink = Arc::new(InMemoryEventSink::new());
        sink.set_available(false);
        let relay = Arc::new(relay(&repo, &sink, Arc::new(SystemClock), "r", 3));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let relay = relay.clone();
            async move {
                relay
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        while relay.stats().consecutive_failures < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let stats = relay.stats();
        assert_eq!(stats.published, 0);
        assert!(sink.refused_calls() >= 5, "{stats:?}");
        assert_eq!(stats.last_backoff, Duration::from_millis(8), "capped");
        sink.set_available(true);
        while repo.sent_up_to().await.expect("cursor") < 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.send(()).expect("relay running");
        running.await.expect("relay task");
        let seqs: Vec<u64> = sink.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
        assert_eq!(relay.stats().consecutive_failures, 0);
        // The lease was given up on shutdown: another relay takes over at once.
        let next = self::relay(&repo, &sink, Arc::new(SystemClock), "next", 3);
        assert_eq!(next.run_once().await.expect("round"), RelayRound::CaughtUp);
    }
}
