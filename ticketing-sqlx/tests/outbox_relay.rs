//! The outbox on MySQL beyond the `OutboxStore` contract (which `tests/contracts.rs` runs): what an
//! entry carries, and relays publishing concurrently from the real outbox to an in-memory sink.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use support::*;
use ticketing_core::domain::{OutboxKind, PaymentRef, TicketAction, ZoneCode};
use ticketing_core::memory::InMemoryEventSink;
use ticketing_core::ports::{OutboxStore, SystemClock, TicketRepository, Transition};
use ticketing_core::service::{OutboxRelay, RelayConfig};
use ticketing_sqlx::MySqlTicketRepository;

/// The cursor and the order of `unsent` are the port's contract (`tests/contracts.rs`); here: what
/// a general-admission reservation's entry carries.
#[tokio::test]
async fn a_general_admission_reservation_is_one_entry_with_a_line_per_ticket() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    repo.insert_order(&show.seats("c", &["A:1:1"], t0(), TimeDelta::minutes(5)))
        .await
        .unwrap();
    repo.insert_order(&show.general("g", 2, 10, t0(), TimeDelta::minutes(5)))
        .await
        .unwrap();
    let all = repo.unsent(100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    let ga = &all[1].event;
    assert_eq!(ga.kind, OutboxKind::TicketReserved);
    assert_eq!(ga.lines.len(), 2, "one line per ticket");
    assert!(
        ga.lines
            .iter()
            .all(|l| l.zone == "GA".parse::<ZoneCode>().unwrap())
    );
    db.drop_database().await.unwrap();
}

/// Three relays from `repo` to `sink` running until `stopped` turns true, each with its task.
fn spawn_relays(
    repo: &Arc<MySqlTicketRepository>,
    sink: &Arc<InMemoryEventSink>,
    batch_size: u32,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> Vec<(Arc<OutboxRelay>, tokio::task::JoinHandle<()>)> {
    (0..3)
        .map(|n| {
            let relay = Arc::new(
                OutboxRelay::new(
                    repo.clone(),
                    sink.clone(),
                    Arc::new(SystemClock),
                    RelayConfig {
                        relay_id: format!("relay-{n}"),
                        batch_size,
                        poll_interval: Duration::from_millis(2),
                        ..RelayConfig::default()
                    },
                )
                .unwrap(),
            );
            let mut stopped = stopped.clone();
            let task = tokio::spawn({
                let relay = relay.clone();
                async move {
                    relay
                        .run(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                }
            });
            (relay, task)
        })
        .collect()
}

/// Writers and three relays at once: the sink ends with every entry exactly once, in order.
#[tokio::test]
async fn concurrent_relays_publish_every_entry_once_in_order() {
    const WRITERS: usize = 4;
    const ORDERS_PER_WRITER: usize = 15;
    let db = database(16).await;
    let repo = Arc::new(MySqlTicketRepository::new(db.pool().clone()));
    let sink = Arc::new(InMemoryEventSink::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relays = spawn_relays(&repo, &sink, 7, &stopped);
    let show = Arc::new(Show::new());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (repo, show) = (repo.clone(), show.clone());
            tokio::spawn(async move {
                for n in 0..ORDERS_PER_WRITER {
                    let key = format!("A:{}:{}", w + 1, n + 1);
                    repo.insert_order(&show.seats(
                        "c",
                        &[key.as_str()],
                        t0(),
                        TimeDelta::minutes(5),
                    ))
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let total = (WRITERS * ORDERS_PER_WRITER) as u64;
    while repo.sent_up_to().await.unwrap() < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true).unwrap();
    let mut published = 0;
    for (relay, task) in relays {
        task.await.unwrap();
        published += relay.stats().published;
    }
    let seqs: Vec<u64> = sink.entries().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    // Entries marked sent are counted once: by the relay that held the lease.
    assert_eq!(published, total);
    db.drop_database().await.unwrap();
}

/// Writers that buy and pay at once, and three relays numbering and publishing meanwhile: every
/// change is published exactly once, and each order's payment after its reservation, although
/// the rows are numbered after their transactions commit, in no lock's order.
#[tokio::test]
async fn each_orders_changes_are_published_in_their_order() {
    const WRITERS: usize = 8;
    const ORDERS_PER_WRITER: usize = 20;
    let db = database(24).await;
    let repo = Arc::new(MySqlTicketRepository::new(db.pool().clone()));
    let sink = Arc::new(InMemoryEventSink::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relays = spawn_relays(&repo, &sink, 5, &stopped);
    let show = Arc::new(Show::new());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (repo, show) = (repo.clone(), show.clone());
            tokio::spawn(async move {
                for n in 0..ORDERS_PER_WRITER {
                    let buyer = format!("c{w}-{n}");
                    let new = if n % 2 == 0 {
                        let key = format!("A:{}:{}", w + 1, n + 1);
                        show.seats(&buyer, &[key.as_str()], t0(), TimeDelta::minutes(5))
                    } else {
                        show.general(&buyer, 1, 1_000, t0(), TimeDelta::minutes(5))
                    };
                    repo.insert_order(&new).await.unwrap();
                    let paid = repo
                        .transition(&Transition {
                            order: new.order.id,
                            action: TicketAction::Pay,
                            now: t0() + ms(1),
                            payment_ref: Some(PaymentRef::new(format!("pi_{w}_{n}")).unwrap()),
                        })
                        .await
                        .unwrap();
                    assert!(paid);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let total = (2 * WRITERS * ORDERS_PER_WRITER) as u64;
    while repo.sent_up_to().await.unwrap() < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true).unwrap();
    for (_, task) in relays {
        task.await.unwrap();
    }
    let entries = sink.entries();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "every change once");
    let mut reserved_at = HashMap::new();
    for entry in &entries {
        match entry.event.kind {
            OutboxKind::TicketReserved => {
                reserved_at.insert(entry.event.order_id, entry.seq);
            }
            OutboxKind::TicketPaid => assert!(
                reserved_at.contains_key(&entry.event.order_id),
                "order {} published paid (seq {}) before reserved",
                entry.event.order_id,
                entry.seq
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(reserved_at.len(), WRITERS * ORDERS_PER_WRITER);
    db.drop_database().await.unwrap();
}
