//! The repositories on a multi-primary database: a 3-node MariaDB Galera cluster of this test
//! alone (`testing::PrivateGalera`), with a repository on each node. A conflict between two nodes
//! surfaces at commit as a certification failure (error 1213, like a deadlock), which the
//! repository retries; the retry then sees the winner's rows, so a buyer who lost a seat still
//! gets `SeatsTaken`. Oversell is counted in the database, never assumed.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::TimeDelta;
use futures::future::join_all;
use support::*;
use ticketing_core::Error;
use ticketing_core::domain::{OrderId, SeatRef};
use ticketing_core::ports::{InsertOutcome, NewOrder, TicketRepository};
use ticketing_sqlx::MySqlTicketRepository;
use ticketing_sqlx::testing::PrivateGalera;
use tokio::sync::Barrier;

/// One repository per node.
fn repositories(pools: &[sqlx::MySqlPool]) -> Vec<Arc<MySqlTicketRepository>> {
    pools
        .iter()
        .map(|pool| Arc::new(MySqlTicketRepository::new(pool.clone())))
        .collect()
}

/// Every active seat of the event, read on `repo`; panics on a seat sold twice.
async fn holders(repo: &MySqlTicketRepository, show: &Show) -> HashMap<SeatRef, OrderId> {
    let mut holder = HashMap::new();
    for ticket in repo
        .active_tickets(show.event)
        .await
        .expect("active tickets")
    {
        let seat = ticket.seat.expect("seated");
        if let Some(other) = holder.insert(seat.clone(), ticket.order_id) {
            panic!(
                "seat {seat} sold twice: orders {other} and {}",
                ticket.order_id
            );
        }
    }
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_written_to_three_nodes_sell_each_seat_once() {
    let galera = PrivateGalera::start().await;
    let (db, pools) = galera.database(16).await;
    let repos = repositories(&pools);
    let show = Show::new();
    let keys: Vec<String> = (1..=20).map(|n| format!("A:{}:{}", 1 + n % 2, n)).collect();
    // 60 orders of 3 seats over 20 seats, overlapping, spread over the three nodes.
    let orders: Vec<NewOrder> = (0..60usize)
        .map(|i| {
            let picked: Vec<&str> = [i * 7, i * 7 + 3, i * 7 + 11]
                .iter()
                .map(|k| keys[k % 20].as_str())
                .collect();
            show.seats(&format!("c{i}"), &picked, t0(), TimeDelta::minutes(10))
        })
        .collect();
    let barrier = Arc::new(Barrier::new(orders.len()));
    let tasks = orders.iter().cloned().enumerate().map(|(i, order)| {
        let (repo, barrier) = (repos[i % repos.len()].clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            repo.insert_order(&order).await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();

    let holder = holders(&repos[1], &show).await;
    let mut winners = 0;
    for (order, result) in orders.iter().zip(&results) {
        match result {
            Ok(InsertOutcome::Inserted) => {
                winners += 1;
                for t in &order.order.tickets {
                    assert_eq!(holder.get(t.seat.as_ref().unwrap()), Some(&order.order.id));
                }
            }
            Err(Error::SeatsTaken { seats }) => assert!(!seats.is_empty()),
            other => panic!("a cross-node conflict leaked: {other:?}"),
        }
    }
    assert!(winners >= 1);
    assert_eq!(
        holder.len(),
        winners * 3,
        "every winner's seats, and no other"
    );
    // Every node sees the same sale: Galera commits on all nodes or none.
    for repo in &repos {
        assert_eq!(holders(repo, &show).await, holder);
    }
    let mut conflicts = 0;
    for pool in &pools {
        for name in ["wsrep_local_cert_failures", "wsrep_local_bf_aborts"] {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SHOW STATUS LIKE '{name}'")))
                .fetch_one(pool)
                .await
                .expect("wsrep status");
            conflicts += sqlx::Row::get::<String, _>(&row, 1)
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    println!(
        "{winners} orders won, {conflicts} cross-node conflicts (certification failures and brute-force aborts) retried"
    );
    db.drop_database().await.expect("drop the test database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_sale_loses_no_acknowledged_order() {
    let mut galera = PrivateGalera::start().await;
    let (db, pools) = galera.database(16).await;
    let repos = repositories(&pools);
    let show = Show::new();
    let stop = Arc::new(AtomicBool::new(false));
    // 30 buyers, 10 per node, each buying single seats one after the other until stopped.
    let buyers: Vec<_> = (0..30usize)
        .map(|b| {
            let (repo, stop, show) = (repos[b % 3].clone(), stop.clone(), show);
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) && n < 200 {
                    n += 1;
                    let seat = format!("A:{}:{}", b + 1, n);
                    let order =
                        show.seats(&format!("c{b}"), &[&seat], t0(), TimeDelta::minutes(10));
                    if let Ok(InsertOutcome::Inserted) = repo.insert_order(&order).await {
                        acknowledged.push(order.order.id);
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    galera.kill(2);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for buyer in buyers {
        acknowledged.extend(buyer.await.expect("buyer task"));
    }
    assert_eq!(
        galera.cluster_size(0).await,
        Some(2),
        "the survivors form the cluster"
    );

    // Every acknowledged order is on both survivors, whichever node took it.
    for repo in &repos[..2] {
        for id in &acknowledged {
            assert!(
                repo.order(*id).await.expect("read an order").is_some(),
                "acknowledged order {id} is missing"
            );
        }
        holders(repo, &show).await;
    }
    println!(
        "{} orders acknowledged over three nodes, node 2 killed mid-sale",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());
    db.drop_database().await.expect("drop the test database");
}
