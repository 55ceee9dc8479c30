//! The event stream is trimmed to what every consumer group acknowledged: entries the
//! projection applied go, entries a group has pending or not yet read stay, and the stream's
//! high-water mark survives the trim.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, OUTBOX_SCHEMA_VERSION, OrderId, OutboxEntry, OutboxEvent,
    OutboxKind, VenueId,
};
use ticketing_core::ports::EventSink;
use ticketing_redis::testing::{TestRedis, connect};
use ticketing_redis::{ProjectionConfig, RedisEventSink, RedisEventSinkConfig, RedisProjection};
use uuid::Uuid;

fn entries(seqs: std::ops::RangeInclusive<u64>) -> Vec<OutboxEntry> {
    let event_id = EventId::from_uuid(Uuid::now_v7());
    seqs.map(|seq| OutboxEntry {
        seq,
        event: OutboxEvent {
            version: OUTBOX_SCHEMA_VERSION,
            kind: OutboxKind::TicketReserved,
            order_id: OrderId::from_uuid(Uuid::now_v7()),
            event_id,
            venue_id: VenueId::from_uuid(Uuid::now_v7()),
            customer: CustomerId::new("trim").unwrap(),
            ticket_ids: Vec::new(),
            seats: Vec::new(),
            amount: Money::new(100, Currency::new("EUR").unwrap()),
            at: Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap(),
            lines: Vec::new(),
            payment: None,
            deadline: None,
            channel: None,
            offer: None,
        },
    })
    .collect()
}

/// The ids left in the stream, as seqs.
async fn left(conn: &mut redis::aio::ConnectionManager, stream: &str) -> Vec<u64> {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .iter()
        .map(|(id, _)| id.split('-').next().unwrap().parse().unwrap())
        .collect()
}

async fn ack(conn: &mut redis::aio::ConnectionManager, stream: &str, id: &str) {
    let acked: i64 = redis::cmd("XACK")
        .arg(stream)
        .arg("audit")
        .arg(id)
        .query_async(conn)
        .await
        .unwrap();
    assert_eq!(acked, 1);
}

#[tokio::test]
async fn the_stream_keeps_only_what_a_consumer_group_still_needs() {
    let redis = TestRedis::shared();
    let sink = RedisEventSink::connect(
        &redis.url,
        RedisEventSinkConfig {
            key_prefix: redis.prefix.clone(),
            max_len: None,
        },
    )
    .await
    .expect("sink");
    let stream = sink.stream_key();
    let mut conn = connect(&redis.url).await;
    sink.publish(&entries(1..=10)).await.expect("publish");
    assert_eq!(sink.trim_acknowledged().await.unwrap(), 0, "no group yet");

    let projection = RedisProjection::connect(
        &redis.url,
        ProjectionConfig {
            key_prefix: redis.prefix.clone(),
            batch_size: 6,
            block: Duration::from_millis(10),
            ..ProjectionConfig::default()
        },
    )
    .await
    .expect("projection");
    projection.ensure_group().await.expect("group");
    assert_eq!(
        sink.trim_acknowledged().await.unwrap(),
        0,
        "nothing read yet"
    );
    projection.run_once().await.expect("a round");
    assert_eq!(projection.last_applied().await.unwrap(), 6);
    assert_eq!(sink.trim_acknowledged().await.unwrap(), 6);
    assert_eq!(left(&mut conn, &stream).await, [7, 8, 9, 10]);

    // A second group, delivered 7 and 8 and acknowledging neither yet.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("audit")
        .arg("6-0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("audit")
        .arg("a1")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    projection.run_once().await.expect("a round");
    assert_eq!(projection.last_applied().await.unwrap(), 10);
    assert_eq!(
        sink.trim_acknowledged().await.unwrap(),
        0,
        "7 is pending in the audit group"
    );
    ack(&mut conn, &stream, "7-0").await;
    assert_eq!(sink.trim_acknowledged().await.unwrap(), 1);
    ack(&mut conn, &stream, "8-0").await;
    assert_eq!(
        sink.trim_acknowledged().await.unwrap(),
        1,
        "9 and 10 were not delivered to the audit group"
    );
    assert_eq!(left(&mut conn, &stream).await, [9, 10]);

    // The trim keeps the high-water mark: no rewind, and a republish is still a duplicate.
    assert_eq!(sink.high_water_mark().await.unwrap(), Some(10));
    assert_eq!(
        sink.publish_counted(&entries(5..=11)).await.unwrap(),
        (1, 6)
    );
}
