//! The query plans of the hot reads, checked on a real server and printed for the record
//! (`cargo test -p ticketing-sqlx explain -- --nocapture`).

use chrono::{TimeDelta, TimeZone, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{Column, MySqlPool, Row};
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, Order, OrderId, Ticket, TicketAction, TicketId,
    TicketStatus, VenueId, ZoneCode,
};
use ticketing_core::ports::{NewOrder, TicketRepository, Transition};
use uuid::Uuid;

use super::{MySqlTicketRepository, sql};
use crate::testing::TestDatabase;

/// One EXPLAIN row as `column=value` pairs, whatever the column types.
fn describe(row: &MySqlRow) -> Vec<(String, String)> {
    row.columns()
        .iter()
        .map(|c| {
            let i = c.ordinal();
            let value = row
                .try_get::<Option<String>, _>(i)
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .or_else(|_| {
                    row.try_get::<Option<i64>, _>(i)
                        .map(|v| v.map_or("NULL".into(), |v| v.to_string()))
                })
                .or_else(|_| {
                    row.try_get::<Option<u64>, _>(i)
                        .map(|v| v.map_or("NULL".into(), |v| v.to_string()))
                })
                .unwrap_or_else(|_| "?".into());
            (c.name().to_owned(), value)
        })
        .collect()
}

async fn explain(
    pool: &MySqlPool,
    name: &str,
    statement: &'static str,
    binds: Vec<Vec<u8>>,
) -> Vec<Vec<(String, String)>> {
    let text = format!("EXPLAIN {statement}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
    for bind in binds {
        query = query.bind(bind);
    }
    let rows = query.fetch_all(pool).await.expect("EXPLAIN runs");
    let plan: Vec<_> = rows.iter().map(describe).collect();
    println!("EXPLAIN {name}: {statement}");
    for row in &plan {
        let line: Vec<String> = row.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {}", line.join(" | "));
    }
    plan
}

fn field<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    row.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_the_hot_reads() {
    let db = TestDatabase::create(4)
        .await
        .expect("test database (set TICKETING_MYSQL_URL)");
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let t0 = Utc
        .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let venue = VenueId::from_uuid(Uuid::now_v7());
    let events: Vec<EventId> = (0..4).map(|_| EventId::from_uuid(Uuid::now_v7())).collect();
    let eur = Currency::new("EUR").expect("EUR");
    let mut some_ticket = None;
    // 4 events x 60 orders x 2 tickets; a third paid, a third cancelled.
    for (e, event) in events.iter().enumerate() {
        for n in 0..60u32 {
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
    sqlx::query("ANALYZE TABLE tickets, orders, outbox, idempotency_keys")
        .execute(db.pool())
        .await
        .expect("analyze");

    let event = events[1].as_uuid().as_bytes().to_vec();
    let count = explain(
        db.pool(),
        "count_by_status",
        sql::COUNT_BY_STATUS,
        vec![event.clone(), b"PAID".to_vec()],
    )
    .await;
    assert_eq!(count.len(), 1);
    assert_eq!(field(&count[0], "key"), "ix_tickets_event_status");
    assert!(
        field(&count[0], "Extra").contains("Using index"),
        "count_by_status reads only the index"
    );

    let revenue = explain(
        db.pool(),
        "revenue_minor",
        sql::REVENUE_MINOR,
        vec![
            event.clone(),
            b"PAID".to_vec(),
            venue.as_uuid().as_bytes().to_vec(),
        ],
    )
    .await;
    assert_eq!(revenue.len(), 1);
    assert_eq!(field(&revenue[0], "key"), "ix_tickets_event_status");
    assert!(
        field(&revenue[0], "Extra").contains("Using index"),
        "revenue_minor reads only the index"
    );

    let id = some_ticket.expect("a ticket").as_uuid().as_bytes().to_vec();
    let statuses = [b"PENDING_PAYMENT".to_vec(), b"PAID".to_vec()];
    let first_page = explain(
        db.pool(),
        "active_tickets_page (first)",
        sql::SELECT_ACTIVE_TICKETS_FIRST_PAGE,
        [vec![event.clone()], statuses.to_vec(), vec![b"50".to_vec()]].concat(),
    )
    .await;
    let page = explain(
        db.pool(),
        "active_tickets_page",
        sql::SELECT_ACTIVE_TICKETS_PAGE,
        [
            vec![event.clone(), id.clone()],
            statuses.to_vec(),
            vec![b"50".to_vec()],
        ]
        .concat(),
    )
    .await;
    for plan in [&first_page, &page] {
        assert_eq!(plan.len(), 1);
        assert_eq!(field(&plan[0], "key"), "ix_tickets_event_id");
        assert!(
            !field(&plan[0], "Extra").contains("filesort"),
            "a page is read in index order, never sorted"
        );
    }
    assert_eq!(field(&page[0], "type"), "range", "a keyset page is a range");

    let one = explain(db.pool(), "ticket", sql::SELECT_TICKET, vec![id]).await;
    assert_eq!(one.len(), 1);
    assert_eq!(field(&one[0], "key"), "PRIMARY");
    assert_eq!(field(&one[0], "type"), "const");

    let due = explain(
        db.pool(),
        "expire_due",
        sql::LOCK_DUE_ORDERS,
        vec![
            b"PENDING_PAYMENT".to_vec(),
            b"2030-01-01 00:10:00".to_vec(),
            b"100".to_vec(),
        ],
    )
    .await;
    assert_eq!(field(&due[0], "key"), "ix_orders_due");

    // Pruning: ranges of an index from its oldest end, never a scan of the table.
    let keys = explain(
        db.pool(),
        "prune_idempotency_keys",
        sql::PRUNE_IDEMPOTENCY,
        vec![b"2030-01-01 00:00:00".to_vec(), b"1000".to_vec()],
    )
    .await;
    assert_eq!(field(&keys[0], "key"), "ix_idempotency_keys_created");
    assert_eq!(field(&keys[0], "type"), "range");
    let prunable = explain(
        db.pool(),
        "prune (read)",
        crate::outbox::sql::SELECT_PRUNABLE,
        vec![b"1000".to_vec()],
    )
    .await;
    let outbox_row = prunable
        .iter()
        .find(|row| field(row, "table") == "outbox")
        .expect("a plan row for the outbox");
    assert_eq!(field(outbox_row, "key"), "uq_outbox_seq");
    assert!(!field(outbox_row, "Extra").contains("filesort"));
    let pruned = explain(
        db.pool(),
        "prune (delete)",
        crate::outbox::sql::PRUNE_UP_TO,
        vec![b"100".to_vec(), b"1000".to_vec()],
    )
    .await;
    assert_eq!(field(&pruned[0], "key"), "uq_outbox_seq");
    assert_eq!(field(&pruned[0], "type"), "range");
    db.drop_database().await.expect("drop");
}

/// The numbering reads the first chunk of the unnumbered rows from an index in id order: a sort
/// of every unnumbered row per chunk made numbering a backlog quadratic (a seat-lock rebuild
/// numbers everything first, inside an event's first purchase: 408s after long sales).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_the_numbering_read() {
    let db = TestDatabase::create(2)
        .await
        .expect("test database (set TICKETING_MYSQL_URL)");
    sqlx::query(
        "INSERT INTO outbox (kind, order_id, recorded_at, payload) \
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
         SELECT 'TicketReserved', UNHEX(MD5(i * 10 + k)), '2030-01-01', '{}' \
         FROM n, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) AS copies",
    )
    .execute(db.pool())
    .await
    .expect("3,000 unnumbered rows");
    sqlx::query("ANALYZE TABLE outbox")
        .execute(db.pool())
        .await
        .expect("ANALYZE");
    let plan = explain(
        db.pool(),
        "numbering",
        <sqlx::MySql as crate::flows::outbox::Outbox>::SELECT_UNNUMBERED,
        vec![b"1000".to_vec()],
    )
    .await;
    assert_eq!(plan.len(), 1);
    assert_eq!(field(&plan[0], "key"), "ix_outbox_unnumbered");
    assert!(
        !field(&plan[0], "Extra").contains("filesort"),
        "the unnumbered rows are sorted: {plan:?}"
    );
    db.drop_database().await.expect("drop");
}
