//! The query plans of the hot reads on PostgreSQL, checked on a real server and printed for the
//! record (`cargo test -p ticketing-sqlx --features postgres,testing pg_explain -- --nocapture`).
//!
//! Each statement is prepared as the adapters' statements are (`PREPARE`, parameters typed by
//! the server) and explained with `plan_cache_mode = force_generic_plan`: the plan a connection
//! settles on after five executions, which must still prove the partial indexes' predicates
//! (the statuses are literals for that). Sequential scans are disabled, so the check is that the
//! index can serve the statement, not the planner's taste on a table of a few thousand rows.

use chrono::{TimeDelta, TimeZone, Utc};
use sqlx::{AssertSqlSafe, PgConnection};
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, Order, OrderId, Ticket, TicketAction, TicketId,
    TicketStatus, VenueId, ZoneCode,
};
use ticketing_core::ports::{NewOrder, TicketRepository, Transition};
use uuid::Uuid;

use super::{PgTicketRepository, sql};
use crate::postgres::outbox::sql as outbox_sql;
use crate::postgres::testing::TestDatabase;

/// The generic plan of `statement` with `arguments` (SQL literals, one per `$n`), as text.
async fn explain(
    conn: &mut PgConnection,
    name: &str,
    statement: &'static str,
    arguments: &[&str],
) -> String {
    sqlx::raw_sql(AssertSqlSafe(format!("PREPARE hot AS {statement}")))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("PREPARE {name}: {e}"));
    let execute = if arguments.is_empty() {
        "EXPLAIN EXECUTE hot".to_owned()
    } else {
        format!("EXPLAIN EXECUTE hot({})", arguments.join(", "))
    };
    let lines: Vec<String> = sqlx::query_scalar(AssertSqlSafe(execute))
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {name}: {e}"));
    sqlx::raw_sql("DEALLOCATE hot")
        .execute(&mut *conn)
        .await
        .expect("DEALLOCATE");
    let plan = lines.join("\n");
    println!("EXPLAIN {name}: {statement}\n{plan}\n");
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_explain_the_hot_reads() {
    let db = TestDatabase::create(4)
        .await
        .expect("test database (set TICKETING_POSTGRES_URL)");
    let repo = PgTicketRepository::new(db.pool().clone());
    let t0 = Utc
        .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let venue = VenueId::from_uuid(Uuid::now_v7());
    let events: Vec<EventId> = (0..4).map(|_| EventId::from_uuid(Uuid::now_v7())).collect();
    let eur = Currency::new("EUR").expect("EUR");
    let mut some_ticket = None;
    // 4 events x 100 orders x 2 tickets; a third paid, a third cancelled.
    for (e, event) in events.iter().enumerate() {
        for n in 0..100u32 {
            let order = OrderId::from_uuid(Uuid::now_v7());
            let tickets: Vec<Ticket> = (1..=2)
                .map(|s| Ticket {
                    id: TicketId::from_uuid(Uuid::now_v7()),
                    order_id: order,
                    event_id: *event,
                    venue_id: venue,
                    zone: ZoneCode::new("A").expect("zone"),
                    seat: Some(format!("A:{n}:{s}").parse().expect("seat")),
                    customer: CustomerId::new(format!("c{e}-{n}")).expect("customer"),
                    price: Money::new(1_000, eur),
                    status: TicketStatus::PendingPayment,
                    created_on: t0,
                    expires_at: t0 + TimeDelta::minutes(10),
                    paid_at: None,
                    payment_ref: None,
                })
                .collect();
            some_ticket = tickets.first().map(|t| t.id);
            let order = Order::from_tickets(tickets)
                .expect("order")
                .expect("tickets");
            let id = order.id;
            let new = NewOrder {
                order,
                per_customer_limit: 10,
                general_admission: None,
                idempotency: None,
                voucher: None,
                price_tiers: Vec::new(),
                channel: None,
            };
            repo.insert_order(&new).await.expect("insert");
            let action = match n % 3 {
                0 => Some(TicketAction::Pay),
                1 => Some(TicketAction::Cancel),
                _ => None,
            };
            if let Some(action) = action {
                let t = Transition {
                    order: id,
                    action,
                    now: t0,
                    payment_ref: None,
                };
                assert!(repo.transition(&t).await.expect("transition"));
            }
        }
    }
    let mut conn = db.pool().acquire().await.expect("a connection");
    // VACUUM sets the visibility map, which index-only scans need; ANALYZE the statistics.
    // One statement each: several in one message would run as one transaction, which VACUUM
    // refuses.
    for statement in [
        "VACUUM ANALYZE tickets",
        "VACUUM ANALYZE orders",
        "VACUUM ANALYZE outbox",
        "VACUUM ANALYZE idempotency_keys",
        "VACUUM ANALYZE payments",
        "SET plan_cache_mode = force_generic_plan",
        "SET enable_seqscan = off",
    ] {
        sqlx::raw_sql(statement)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    let event = format!("'{}'", events[1].as_uuid());
    let count = explain(
        &mut conn,
        "count_by_status",
        sql::COUNT_BY_STATUS,
        &[&event, "'PAID'"],
    )
    .await;
    assert!(
        count.contains("Index Only Scan using ix_tickets_event_status"),
        "count_by_status reads only the index"
    );
    let revenue = explain(
        &mut conn,
        "revenue_minor",
        sql::REVENUE_MINOR,
        &[&event, "'PAID'", &format!("'{}'", venue.as_uuid())],
    )
    .await;
    assert!(
        revenue.contains("Index Only Scan using ix_tickets_event_status"),
        "revenue_minor reads only the index"
    );

    let id = format!("'{}'", some_ticket.expect("a ticket").as_uuid());
    let first_page = explain(
        &mut conn,
        "active_tickets_page (first)",
        sql::SELECT_ACTIVE_TICKETS_FIRST_PAGE,
        &[&event, "50"],
    )
    .await;
    let page = explain(
        &mut conn,
        "active_tickets_page",
        sql::SELECT_ACTIVE_TICKETS_PAGE,
        &[&event, &id, "50"],
    )
    .await;
    for plan in [&first_page, &page] {
        assert!(
            plan.contains("Index Scan using ix_tickets_event_active"),
            "a page is a range of the partial index of active tickets"
        );
        assert!(!plan.contains("Sort"), "a page is read in index order");
    }

    let one = explain(&mut conn, "ticket", sql::SELECT_TICKET, &[&id]).await;
    assert!(
        one.contains("Index Scan using tickets_pkey"),
        "by primary key"
    );

    let due = explain(
        &mut conn,
        "expire_due",
        sql::LOCK_DUE_ORDERS,
        &["'2030-01-01 00:10:00+00'", "100"],
    )
    .await;
    assert!(
        due.contains("Index Scan using ix_orders_due"),
        "the sweep reads the partial index of unpaid orders"
    );
    assert!(!due.contains("Sort"), "in deadline order");

    let refunds = explain(
        &mut conn,
        "refunds_due",
        <sqlx::Postgres as crate::flows::payment::Ledger>::SELECT_REFUNDS_DUE,
        &["100"],
    )
    .await;
    assert!(
        refunds.contains("Index Scan using ix_payments_refund_owed"),
        "refunds owed come from their partial index"
    );

    // Pruning: ranges of an index from its oldest end, never a scan of the table.
    let keys = explain(
        &mut conn,
        "prune_idempotency_keys",
        sql::PRUNE_IDEMPOTENCY,
        &["'2030-01-01 00:00:00+00'", "1000"],
    )
    .await;
    assert!(keys.contains("ix_idempotency_keys_created"), "by creation");
    let unnumbered = explain(
        &mut conn,
        "outbox numbering",
        outbox_sql::SELECT_UNNUMBERED,
        &["1000"],
    )
    .await;
    assert!(
        unnumbered.contains("ix_outbox_unnumbered"),
        "the numbering reads the partial index of unnumbered rows"
    );
    let prunable = explain(
        &mut conn,
        "prune (read)",
        outbox_sql::SELECT_PRUNABLE,
        &["1000"],
    )
    .await;
    assert!(
        prunable.contains("uq_outbox_seq"),
        "published entries by number"
    );
    assert!(!prunable.contains("Sort"), "in number order");
    let pruned = explain(
        &mut conn,
        "prune (delete)",
        outbox_sql::PRUNE_UP_TO,
        &["100", "1000"],
    )
    .await;
    assert!(pruned.contains("uq_outbox_seq"), "a range of numbers");
    drop(conn);
    db.drop_database().await.expect("drop");
}
