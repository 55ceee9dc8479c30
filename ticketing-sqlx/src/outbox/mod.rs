//! The relay's view of the transactional outbox on MySQL: [`OutboxStore`] on
//! [`MySqlTicketRepository`], the shared flow `crate::flows::outbox` on MySQL's statements
//! (`sql.rs`). Rows get an `AUTO_INCREMENT` id when written and their number after commit.

pub(crate) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::MySql;
use ticketing_core::Result;
use ticketing_core::domain::OutboxEntry;
use ticketing_core::ports::OutboxStore;

use crate::MySqlTicketRepository;
use crate::flows::outbox::Outbox;
use crate::retry::with_retry;

/// The relay's store on the outbox tables: the cursor and the lease are the one row of
/// `outbox_relay`, each change one compare-and-set `UPDATE` with the caller's clock.
#[async_trait]
impl OutboxStore for MySqlTicketRepository {
    async fn try_acquire_lease(
        &self,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        Ok(with_retry("try_acquire_lease", || {
            MySql::take_lease(self.pool(), relay, now, ttl)
        })
        .await?)
    }

    async fn release_lease(&self, relay: &str) -> Result<()> {
        Ok(with_retry("release_lease", || MySql::release_lease(self.pool(), relay)).await?)
    }

    /// Numbers up to `limit` committed rows first, so a relay publishes every committed change.
    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(with_retry("unsent", || MySql::unsent(self.pool(), limit)).await?)
    }

    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool> {
        Ok(with_retry("mark_sent", || {
            MySql::update_cursor(self.pool(), MySql::MARK_SENT, relay, up_to)
        })
        .await?)
    }

    async fn rewind(&self, relay: &str, to: u64) -> Result<bool> {
        Ok(with_retry("rewind", || {
            MySql::update_cursor(self.pool(), MySql::REWIND, relay, to)
        })
        .await?)
    }

    async fn sent_up_to(&self) -> Result<u64> {
        Ok(with_retry("sent_up_to", || MySql::sent(self.pool())).await?)
    }

    async fn prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(with_retry("prune", || MySql::prune(self.pool(), before, limit)).await?)
    }
}

/// What the shared numbering checks run on.
#[cfg(all(test, feature = "testing"))]
mod backend {
    pub(super) use crate::MySqlTicketRepository as Repository;
    pub(super) use crate::pool::begin;
    pub(super) use crate::testing::TestDatabase;
    pub(super) use sqlx::MySql as Db;
}

/// The numbering against real transactions (feature `testing`: needs the test server).
#[cfg(all(test, feature = "testing"))]
#[allow(clippy::duplicate_mod)] // the same checks, included once per database on purpose
#[path = "../flows/outbox_checks.rs"]
mod tests;
