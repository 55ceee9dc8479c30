//! Snapshots of a large event are read in bounded chunks, never by one command over the whole
//! seat hash (which would stall every other client of Redis while it runs).

mod common;

use common::*;
use ticketing_core::domain::{Row, Zone, ZoneKind};
use ticketing_core::ports::{ActiveHold, HoldItem, SeatLock};
use ticketing_redis::SNAPSHOT_CHUNK;
use ticketing_redis::redis;

const ROWS: u32 = 200;
const SEATS_PER_ROW: u32 = 100;
const SEATS: usize = (ROWS * SEATS_PER_ROW) as usize;

/// Calls of `command` since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
async fn calls(conn: &mut redis::aio::ConnectionManager, command: &str) -> usize {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_large_event_is_read_in_bounded_chunks() {
    // A server of this test alone, so that its command counts are this test's.
    let server = PrivateRedis::start().await;
    let redis = TestRedis::on(server.url());
    let lock = redis.lock().await;
    let mut raw = redis.raw().await;
    let (ev, buyer) = (event(), order());
    let zone = Zone {
        code: zone("A"),
        name: "Arena".into(),
        kind: ZoneKind::Seated {
            rows: (1..=ROWS)
                .map(|n| Row {
                    label: n.to_string().parse().unwrap(),
                    seats: SEATS_PER_ROW,
                })
                .collect(),
        },
    };
    let sold: Vec<ActiveHold> = zone
        .seats()
        .map(|seat| ActiveHold {
            order: buyer,
            item: HoldItem::Seat(seat),
            until: None,
        })
        .collect();
    lock.rebuild(ev, &CountingSource::new(sold)).await.unwrap();

    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
    let whole = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(whole.seats.len(), SEATS);
    let scans = calls(&mut raw, "hscan").await;
    assert!(
        scans >= SEATS / SNAPSHOT_CHUNK / 2,
        "{SEATS} seats read in {scans} HSCAN calls: not in chunks of about {SNAPSHOT_CHUNK}"
    );
    assert!(
        calls(&mut raw, "hgetall").await <= 1,
        "one HGETALL, of the general-admission counts, at most"
    );

    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
    let part = lock.zone_snapshot(ev, &zone, t0()).await.unwrap().unwrap();
    assert_eq!(part, whole);
    let scripts = calls(&mut raw, "evalsha").await;
    // One more call when the script was not cached yet (NOSCRIPT, then loaded and run).
    assert!(
        (SEATS / SNAPSHOT_CHUNK..=SEATS / SNAPSHOT_CHUNK + 1).contains(&scripts),
        "a zone's {SEATS} seats are read {SNAPSHOT_CHUNK} per script call, not in {scripts}"
    );
    assert_eq!(calls(&mut raw, "hscan").await, 0, "a zone is read by key");
}
