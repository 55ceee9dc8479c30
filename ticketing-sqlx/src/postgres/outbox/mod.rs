//! The relay's view of the transactional outbox on PostgreSQL: [`OutboxStore`] on
//! [`PgTicketRepository`], the shared flow `crate::flows::outbox` on PostgreSQL's statements
//! (`sql.rs`). Rows get an id from an identity sequence when written (`nextval` takes no lock
//! held to COMMIT) and their number after commit, as on MySQL.

pub(super) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Postgres;
use ticketing_core::Result;
use ticketing_core::domain::OutboxEntry;
use ticketing_core::ports::OutboxStore;

use super::PgTicketRepository;
use super::error::with_retry;
use crate::flows::outbox::Outbox;

/// The relay's store on the outbox tables: the cursor and the lease are the one row of
/// `outbox_relay`, each change one compare-and-set `UPDATE` with the caller's clock.
#[async_trait]
impl OutboxStore for PgTicketRepository {
    async fn try_acquire_lease(
        &self,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        Ok(with_retry("try_acquire_lease", || {
            Postgres::take_lease(self.pool(), relay, now, ttl)
        })
        .await?)
    }

    async fn release_lease(&self, relay: &str) -> Result<()> {
        Ok(with_retry("release_lease", || {
            Postgres::release_lease(self.pool(), relay)
        })
        .await?)
    }

    /// Numbers up to `limit` committed rows first, so a relay publishes every committed change.
    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(with_retry("unsent", || Postgres::unsent(self.pool(), limit)).await?)
    }

    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool> {
        Ok(with_retry("mark_sent", || {
            Postgres::update_cursor(self.pool(), Postgres::MARK_SENT, relay, up_to)
        })
        .await?)
    }

    async fn rewind(&self, relay: &str, to: u64) -> Result<bool> {
        Ok(with_retry("rewind", || {
            Postgres::update_cursor(self.pool(), Postgres::REWIND, relay, to)
        })
        .await?)
    }

    async fn sent_up_to(&self) -> Result<u64> {
        Ok(with_retry("sent_up_to", || Postgres::sent(self.pool())).await?)
    }

    async fn prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(with_retry("prune", || Postgres::prune(self.pool(), before, limit)).await?)
    }
}

/// The numbering against real transactions (feature `testing`: needs the test server).
#[cfg(all(test, feature = "testing"))]
mod tests {
    use chrono::TimeZone;
    use ticketing_core::domain::{
        Currency, CustomerId, EventId, Money, OrderId, OutboxKind, VenueId,
    };
    use ticketing_core::ports::TicketRepository;
    use uuid::Uuid;

    use ticketing_core::domain::OutboxEvent;

    use super::*;
    use crate::postgres::pool::begin;
    use crate::postgres::testing::TestDatabase;

    fn reserved(order: OrderId) -> OutboxEvent {
        OutboxEvent {
            version: ticketing_core::domain::OUTBOX_SCHEMA_VERSION,
            kind: OutboxKind::TicketReserved,
            order_id: order,
            event_id: EventId::from_uuid(Uuid::now_v7()),
            venue_id: VenueId::from_uuid(Uuid::now_v7()),
            customer: CustomerId::new("c").unwrap(),
            ticket_ids: Vec::new(),
            seats: Vec::new(),
            amount: Money::new(100, Currency::new("EUR").unwrap()),
            at: Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap(),
            lines: Vec::new(),
            payment: None,
        }
    }

    fn orders(entries: &[OutboxEntry]) -> Vec<(u64, OrderId)> {
        entries.iter().map(|e| (e.seq, e.event.order_id)).collect()
    }

    /// A transaction that inserted its outbox row before another one and commits after it gets
    /// the lower id but the higher number, and is published once it commits.
    #[tokio::test]
    async fn a_row_that_commits_late_under_a_lower_id_is_published_after_it_commits() {
        let db = TestDatabase::create(4).await.unwrap();
        let pool = db.pool();
        let repo = PgTicketRepository::new(pool.clone());
        let (slow_order, fast_order) = (
            OrderId::from_uuid(Uuid::now_v7()),
            OrderId::from_uuid(Uuid::now_v7()),
        );
        let mut slow = begin(pool).await.unwrap();
        Postgres::append(&mut slow, &[reserved(slow_order)])
            .await
            .unwrap();
        let mut fast = begin(pool).await.unwrap();
        Postgres::append(&mut fast, &[reserved(fast_order)])
            .await
            .unwrap();
        // The fast writer commits while the slow one is still open: no lock makes it wait.
        fast.commit().await.unwrap();

        let now = Utc::now();
        assert!(
            repo.try_acquire_lease("r", now, TimeDelta::seconds(30))
                .await
                .unwrap()
        );
        let first = repo.unsent(100).await.unwrap();
        assert_eq!(orders(&first), [(1, fast_order)], "only committed rows");
        assert!(repo.mark_sent("r", 1).await.unwrap());
        assert!(repo.unsent(100).await.unwrap().is_empty());

        slow.commit().await.unwrap();
        let second = repo.unsent(100).await.unwrap();
        assert_eq!(
            orders(&second),
            [(2, slow_order)],
            "published once committed"
        );
        assert_eq!(repo.outbox_head().await.unwrap(), Some(2));
        assert_eq!(
            orders(&repo.outbox_after(0, 10).await.unwrap()),
            [(1, fast_order), (2, slow_order)]
        );
        db.drop_database().await.unwrap();
    }

    /// A rolled-back writer leaves an id unused and no gap in the numbers.
    #[tokio::test]
    async fn a_rolled_back_row_leaves_no_gap_in_the_numbers() {
        let db = TestDatabase::create(4).await.unwrap();
        let pool = db.pool();
        let ids = [(); 3].map(|_| OrderId::from_uuid(Uuid::now_v7()));
        for (n, id) in ids.iter().enumerate() {
            let mut tx = begin(pool).await.unwrap();
            Postgres::append(&mut tx, &[reserved(*id)]).await.unwrap();
            if n == 1 {
                tx.rollback().await.unwrap();
            } else {
                tx.commit().await.unwrap();
            }
        }
        assert_eq!(
            orders(&Postgres::after(pool, 0, 10).await.unwrap()),
            [(1, ids[0]), (2, ids[2])]
        );
        db.drop_database().await.unwrap();
    }
}
