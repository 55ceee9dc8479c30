//! `HistoryPruner`: keeps the outbox and the idempotency records from growing without bound.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

use super::Backends;
use crate::ports::{Clock, OutboxStore, TicketRepository};
use crate::{Error, Result};

/// The default [`RetentionConfig::retention`]: seven days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long history is kept.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Published outbox entries and idempotency records older than this are deleted.
    ///
    /// An idempotency key repeated after it was deleted no longer replays its order: the order
    /// id derived from the key is stored already, so the purchase is refused with
    /// [`Error::IdempotencyConflict`] (never a second order). Clients retry within seconds or
    /// minutes, so days are plenty. A sink that lost its data gets only the entries still kept
    /// republished.
    pub retention: Duration,
    /// Rows deleted per statement, so one prune never holds many row locks for long. Not 0.
    pub batch: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            retention: DEFAULT_RETENTION,
            batch: 1_000,
        }
    }
}

/// What one [`HistoryPruner::prune_once`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Published outbox entries.
    pub outbox_entries: u64,
    /// Idempotency records (their orders stay).
    pub idempotency_keys: u64,
}

/// Deletes published outbox entries and idempotency records older than the retention, in
/// bounded batches. Safe on many servers at once: each batch is one delete of the oldest rows.
/// An outbox entry the relay has not published is never deleted, however old (the store's
/// [`OutboxStore::prune`] stops at the sent cursor).
pub struct HistoryPruner {
    tickets: Arc<dyn TicketRepository>,
    outbox: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
    retention: TimeDelta,
    batch: u32,
}

impl std::fmt::Debug for HistoryPruner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryPruner")
            .field("retention", &self.retention)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl HistoryPruner {
    /// A pruner over the ticket repository and clock of `backends` and `outbox` (usually the
    /// same repository). [`Error::Config`] when `batch` is 0 or the retention is too long to add
    /// to a date.
    pub fn new(
        backends: &Backends,
        outbox: Arc<dyn OutboxStore>,
        config: RetentionConfig,
    ) -> Result<Self> {
        if config.batch == 0 {
            return Err(Error::config("retention.batch", "must be at least 1"));
        }
        let retention = TimeDelta::from_std(config.retention)
            .ok()
            .filter(|r| *r <= TimeDelta::days(100 * 365))
            .ok_or_else(|| Error::config("retention", "must be at most 100 years"))?;
        Ok(Self {
            tickets: backends.tickets.clone(),
            outbox,
            clock: backends.clock.clone(),
            retention,
            batch: config.batch,
        })
    }

    /// Deletes everything older than the retention at the clock's now, a batch per call to the
    /// store, until a batch comes back short.
    pub async fn prune_once(&self) -> Result<Pruned> {
        let before = self.clock.now() - self.retention;
        let mut pruned = Pruned::default();
        loop {
            let n = self.outbox.prune(before, self.batch).await?;
            pruned.outbox_entries += n;
            if n < u64::from(self.batch) {
                break;
            }
        }
        loop {
            let n = self
                .tickets
                .prune_idempotency_keys(before, self.batch)
                .await?;
            pruned.idempotency_keys += n;
            if n < u64::from(self.batch) {
                break;
            }
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::domain::{IdempotencyKey, PaymentNotice};
    use crate::memory::InMemoryTicketRepository;
    use crate::ports::TicketRepository;
    use crate::testkit::{Fixture, Harness, Layout};

    /// A fixture over a memory repository that is also the outbox, its pruner (retention one
    /// day, batches of 2), and `orders` keyed, paid orders bought at the fixture's start.
    async fn setup(orders: u32) -> (Fixture, Arc<InMemoryTicketRepository>, HistoryPruner) {
        let repo = Arc::new(InMemoryTicketRepository::new());
        let mut harness = Harness::in_memory();
        harness.tickets = repo.clone();
        let f = Fixture::new(&harness, Layout::default()).await;
        for n in 0..orders {
            let order = f
                .tickets
                .purchase(crate::service::PurchaseRequest {
                    idempotency_key: Some(IdempotencyKey::new(format!("k{n}")).unwrap()),
                    voucher: None,
                    channel: None,
                    ..f.seats_request(&format!("c{n}"), vec![f.seat(n)])
                })
                .await
                .expect("purchase");
            f.tickets
                .pay(PaymentNotice::for_order(
                    &order,
                    format!("p{n}").parse().unwrap(),
                ))
                .await
                .expect("pay");
        }
        let config = RetentionConfig {
            retention: Duration::from_secs(24 * 60 * 60),
            batch: 2,
        };
        let pruner = HistoryPruner::new(&f.backends, repo.clone(), config).expect("valid");
        (f, repo, pruner)
    }

    async fn publish_all(repo: &InMemoryTicketRepository, now: DateTime<Utc>) {
        assert!(
            repo.try_acquire_lease("r", now, TimeDelta::seconds(5))
                .await
                .unwrap()
        );
        let head = repo
            .outbox_head()
            .await
            .unwrap()
            .expect("memory knows its head");
        assert!(repo.mark_sent("r", head).await.unwrap());
    }

    #[tokio::test]
    async fn prunes_published_history_older_than_the_retention_in_batches() {
        let (f, repo, pruner) = setup(3).await;
        // 6 entries (reserved + paid per order) and 3 keys, all at the start.
        assert_eq!(
            pruner.prune_once().await.unwrap(),
            Pruned::default(),
            "all young"
        );
        f.clock.advance(TimeDelta::days(2));
        assert_eq!(
            pruner.prune_once().await.unwrap(),
            Pruned {
                outbox_entries: 0,
                idempotency_keys: 3
            },
            "keys go; unsent entries stay however old"
        );
        assert_eq!(repo.unsent(100).await.unwrap().len(), 6);
        publish_all(&repo, f.clock.now()).await;
        assert_eq!(pruner.prune_once().await.unwrap().outbox_entries, 6);
        assert!(repo.unsent(100).await.unwrap().is_empty());
        // New history after the prune is numbered on and kept.
        f.buy("late", vec![f.seat(9)]).await;
        let unsent = repo.unsent(100).await.unwrap();
        assert_eq!(unsent.iter().map(|e| e.seq).collect::<Vec<_>>(), [7]);
        publish_all(&repo, f.clock.now()).await;
        assert_eq!(pruner.prune_once().await.unwrap(), Pruned::default());
    }

    #[tokio::test]
    async fn a_zero_batch_is_a_config_error() {
        let f = Fixture::new(&Harness::in_memory(), Layout::default()).await;
        let config = RetentionConfig {
            batch: 0,
            ..RetentionConfig::default()
        };
        let repo = Arc::new(InMemoryTicketRepository::new());
        let err = HistoryPruner::new(&f.backends, repo, config).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
    }
}
