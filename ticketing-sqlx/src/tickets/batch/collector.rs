//! The collector: one task that cuts batches from the queue of pending orders.

use std::sync::Arc;

use sqlx::MySqlPool;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Semaphore, mpsc};

use super::connections::Connections;
use super::{BatchConfig, IDLE_RETURN, MAX_BATCH_TICKETS, Pending, write};

/// The collector: cuts batches from the queue and writes up to `max_in_flight` at once.
pub(super) async fn collect(
    pool: MySqlPool,
    config: BatchConfig,
    mut queue: mpsc::Receiver<Pending>,
) {
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let conns = Arc::new(Connections::new(pool.clone(), config.max_in_flight));
    loop {
        let first = match tokio::time::timeout(IDLE_RETURN, queue.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => break,
            Err(_) => {
                // No batch for a while: hand the kept connections back. With no batch being
                // written, none can be kept again until the next order arrives, so wait for it.
                let quiet = slots.available_permits() == config.max_in_flight;
                conns.release();
                if !quiet {
                    continue;
                }
                match queue.recv().await {
                    Some(first) => first,
                    None => break,
                }
            }
        };
        // Wait for a free slot first: orders arriving meanwhile join this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let deadline = first.arrived + config.max_wait;
        let mut tickets = first.order.order.tickets.len();
        let mut batch = vec![first];
        while batch.len() < config.max_orders && tickets < MAX_BATCH_TICKETS {
            let next = match queue.try_recv() {
                Ok(pending) => Some(pending),
                Err(TryRecvError::Empty) => tokio::time::timeout_at(deadline, queue.recv())
                    .await
                    .ok()
                    .flatten(),
                Err(TryRecvError::Disconnected) => None,
            };
            let Some(pending) = next else { break };
            tickets += pending.order.order.tickets.len();
            batch.push(pending);
        }
        let pool = pool.clone();
        let conns = conns.clone();
        tokio::spawn(async move {
            write::write(&pool, &conns, batch).await;
            drop(slot);
        });
    }
    conns.release();
}
