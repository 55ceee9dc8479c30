//! Hold + release throughput of the seat locks under contention, for tuning: the in-memory lock
//! and the Redis lock (TICKETING_REDIS_URL, default redis://127.0.0.1:6379) at 1, 8 and 64
//! concurrent tasks, on one hot seat set (all tasks want the same seats: most holds lose) or on
//! spread seats (each task its own: every hold wins), with 1 or 4 seats per order.
//!
//! `cargo bench -p ticketing-bench --bench seat_lock`

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ticketing_core::domain::{EventId, OrderId, SeatRef, TicketId};
use ticketing_core::memory::InMemorySeatLock;
use ticketing_core::ports::{HoldItem, HoldOutcome, HoldPage, HoldRequest, HoldSource, SeatLock};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use uuid::Uuid;

/// Nothing held yet: loads an event empty.
struct Empty;

#[async_trait]
impl HoldSource for Empty {
    async fn active_holds(
        &self,
        _: EventId,
        _: Option<TicketId>,
    ) -> ticketing_core::Result<HoldPage> {
        Ok(HoldPage::default())
    }
}

fn seat(row: usize, number: usize) -> HoldItem {
    let seat: SeatRef = format!("A:{row}:{number}").parse().expect("seat key");
    HoldItem::Seat(seat)
}

/// The seats one hold of `task` asks for: the same for every task (hot), or a task's own.
fn items(hot: bool, task: usize, round: u64, per_order: usize) -> Vec<HoldItem> {
    let row = if hot { 1 } else { task + 2 };
    let base = if hot {
        0
    } else {
        (round as usize % 20) * per_order
    };
    (1..=per_order).map(|n| seat(row, base + n)).collect()
}

/// `iters` hold + release cycles split over `tasks` tasks; the time they took together.
async fn cycles(
    lock: Arc<dyn SeatLock>,
    event: EventId,
    tasks: usize,
    hot: bool,
    per_order: usize,
    iters: u64,
) -> Duration {
    let per_task = iters.div_ceil(tasks as u64).max(1);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let lock = lock.clone();
        set.spawn(async move {
            for round in 0..per_task {
                let now = Utc::now();
                let request = HoldRequest {
                    event,
                    order: OrderId::from_uuid(Uuid::now_v7()),
                    items: items(hot, task, round, per_order),
                    now,
                    until: now + TimeDelta::minutes(5),
                };
                match lock.hold(&request).await.expect("hold") {
                    HoldOutcome::Held => lock
                        .release(event, request.order, &request.items)
                        .await
                        .expect("release"),
                    HoldOutcome::Taken { .. } => {}
                    HoldOutcome::NotLoaded => panic!("the bench event is not loaded"),
                }
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("bench task panicked");
    }
    // Scale to exactly `iters` cycles.
    started
        .elapsed()
        .mul_f64(iters as f64 / (per_task * tasks as u64) as f64)
}

fn seat_locks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut locks: Vec<(&str, Arc<dyn SeatLock>)> =
        vec![("memory", Arc::new(InMemorySeatLock::new()))];
    let url =
        std::env::var("TICKETING_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let config = RedisSeatLockConfig {
        key_prefix: format!("bench-crit-{}:", Uuid::new_v4().simple()),
        ..RedisSeatLockConfig::default()
    };
    let redis = runtime.block_on(RedisSeatLock::connect(&url, config));
    let redis = match redis {
        Ok(lock) => {
            let lock = Arc::new(lock);
            locks.push(("redis", lock.clone()));
            Some(lock)
        }
        Err(e) => {
            eprintln!(
                "Redis at {url} (TICKETING_REDIS_URL) unreachable, benching memory only: {e}"
            );
            None
        }
    };
    let event = EventId::from_uuid(Uuid::now_v7());
    for (_, lock) in &locks {
        runtime
            .block_on(lock.rebuild(event, &(Empty)))
            .expect("load the bench event");
    }
    let mut group = c.benchmark_group("hold_release");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, lock) in &locks {
        for hot in [true, false] {
            for per_order in [1usize, 4] {
                for tasks in [1usize, 8, 64] {
                    let id = BenchmarkId::new(
                        format!(
                            "{name}/{}/{per_order}-seat",
                            if hot { "hot" } else { "spread" }
                        ),
                        tasks,
                    );
                    group.bench_with_input(id, &tasks, |b, &tasks| {
                        b.to_async(&runtime).iter_custom(|iters| {
                            cycles(lock.clone(), event, tasks, hot, per_order, iters)
                        })
                    });
                }
            }
        }
    }
    group.finish();
    if let Some(lock) = redis {
        let _ = runtime.block_on(lock.forget(event));
    }
}

criterion_group!(benches, seat_locks);
criterion_main!(benches);
