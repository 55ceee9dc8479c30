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

/// What the shared numbering checks run on.
#[cfg(all(test, feature = "testing"))]
mod backend {
    pub(super) use crate::postgres::PgTicketRepository as Repository;
    pub(super) use crate::postgres::pool::begin;
    pub(super) use crate::postgres::testing::TestDatabase;
    pub(super) use sqlx::Postgres as Db;
}

/// The numbering against real transactions (feature `testing`: needs the test server).
#[cfg(all(test, feature = "testing"))]
#[allow(clippy::duplicate_mod)] // the same checks, included once per database on purpose
#[path = "../../flows/outbox_checks.rs"]
mod tests;
