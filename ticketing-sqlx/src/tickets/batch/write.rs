//! Writing one batch: rounds of the batch transaction, each without the culprits of the last,
//! then every order left out on the unbatched path, so each caller gets its own answer.

use std::collections::HashSet;

use sqlx::{MySql, MySqlPool};

use ticketing_core::Error;
use ticketing_core::ports::{InsertOutcome, NewOrder};
use tokio::task::JoinSet;

use super::connections::Connections;
use super::transaction::{self, Attempt};
use super::{MAX_ROUNDS, Pending, culprits};
use crate::error::StoreResult;
use crate::flows::purchase::Purchase;
use crate::retry::with_retry;

/// Writes a batch and answers every caller in it.
pub(super) async fn write(pool: &MySqlPool, conns: &Connections, batch: Vec<Pending>) {
    let (mut members, mut alone) = culprits::separate_overlaps(batch);
    let mut rounds = 0;
    while !members.is_empty() {
        let orders: Vec<&NewOrder> = members.iter().map(|p| &p.order).collect();
        let attempt = with_retry("insert_order_batch", || write_once(pool, conns, &orders)).await;
        match attempt {
            Ok(Attempt::Committed) => {
                for pending in members.drain(..) {
                    let _ = pending.reply.send(Ok(InsertOutcome::Inserted));
                }
            }
            Ok(Attempt::Culprits(culprits)) if rounds < MAX_ROUNDS => {
                rounds += 1;
                let culprits: HashSet<usize> = culprits.into_iter().collect();
                let (out, stay): (Vec<_>, Vec<_>) = members
                    .drain(..)
                    .enumerate()
                    .partition(|(i, _)| culprits.contains(i));
                alone.extend(out.into_iter().map(|(_, p)| p));
                members = stay.into_iter().map(|(_, p)| p).collect();
            }
            Ok(Attempt::Culprits(_)) => alone.append(&mut members),
            Err(error) => {
                // Not attributable to one order (connection lost, retries exhausted, a bug):
                // every order gets its own answer from the unbatched path.
                tracing::debug!(
                    ?error,
                    orders = members.len(),
                    "batch failed; writing its orders alone"
                );
                alone.append(&mut members);
            }
        }
    }
    write_alone(pool, alone).await;
}

/// Writes each order on the unbatched path, concurrently, and answers its caller.
async fn write_alone(pool: &MySqlPool, alone: Vec<Pending>) {
    let mut singles = JoinSet::new();
    for pending in alone {
        let pool = pool.clone();
        singles.spawn(async move {
            let result = MySql::insert_order(&pool, &pending.order)
                .await
                .map_err(Error::from);
            let _ = pending.reply.send(result);
        });
    }
    while singles.join_next().await.is_some() {}
}

/// One attempt at the whole batch in one transaction, on a kept connection.
async fn write_once(
    pool: &MySqlPool,
    conns: &Connections,
    orders: &[&NewOrder],
) -> StoreResult<Attempt> {
    let mut conn = conns.take().await?;
    let attempt = transaction::run(&mut conn, pool, orders).await;
    if attempt.is_ok() {
        // Committed or rolled back: the connection is outside any transaction. After an error
        // it goes back to the pool instead, which rolls back or closes it.
        conns.put(conn);
    }
    attempt
}
