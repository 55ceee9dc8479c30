//! The core conformance suite with the Redis seat lock and the in-memory repositories: every
//! invariant of DESIGN.md, including data loss (the wipe deletes every key of the test's prefix).

mod common;

use std::sync::Arc;

use common::{TestRedis, delete_prefix};
use ticketing_core::memory::{InMemoryCatalog, InMemoryTicketRepository, InMemoryWaitingList};
use ticketing_core::testkit::{BoxFuture, Harness};

async fn harness() -> Harness {
    let redis = TestRedis::shared();
    let seat_lock = Arc::new(redis.lock().await);
    let raw = redis.raw().await;
    let prefix = redis.prefix.clone();
    let tickets = Arc::new(InMemoryTicketRepository::new());
    Harness {
        seat_lock,
        waiting_list: Arc::new(InMemoryWaitingList::new(tickets.clone())),
        outbox: tickets.clone(),
        tickets,
        catalog: Arc::new(InMemoryCatalog::new()),
        wipe_seat_lock: Arc::new(move || -> BoxFuture {
            let (mut raw, prefix) = (raw.clone(), prefix.clone());
            Box::pin(async move { delete_prefix(&mut raw, &prefix).await })
        }),
        // Dropping the guard deletes the prefix's keys; if the check fails, the unrun future is
        // dropped with the harness and the keys are deleted all the same.
        teardown: Some(Box::pin(async move { drop(redis) })),
    }
}

ticketing_core::conformance_suite!(harness);
