//! The connections batches are written on.

use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{MySql, MySqlPool};

/// The connections batches are written on, kept from one batch to the next (at most one per
/// in-flight slot): each keeps its prepared multi-row statements. Drawn from the pool at random
/// instead, a connection would prepare them again, which with a 64-connection pool made a large
/// share of a short sale's statements. Handed back to the pool after [`IDLE_RETURN`](super::IDLE_RETURN) without
/// batches, so the pool can close.
pub(super) struct Connections {
    pool: MySqlPool,
    kept: Mutex<Vec<PoolConnection<MySql>>>,
    keep: usize,
}

impl Connections {
    /// Keeps up to `keep` connections of `pool`.
    pub(super) fn new(pool: MySqlPool, keep: usize) -> Self {
        Self {
            pool,
            kept: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// A kept connection, or a new one from the pool.
    pub(super) async fn take(&self) -> sqlx::Result<PoolConnection<MySql>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match kept {
            Some(conn) => Ok(conn),
            None => self.pool.acquire().await,
        }
    }

    /// Keeps `conn` for the next batch; call it only with a connection outside any transaction.
    pub(super) fn put(&self, conn: PoolConnection<MySql>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < self.keep && !self.pool.is_closed() {
            kept.push(conn);
        }
    }

    /// Hands every kept connection back to the pool.
    pub(super) fn release(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        drop(kept);
    }
}
