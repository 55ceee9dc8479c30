//! `soak`: bounded growth through a separately started server. Round after round it opens an
//! event whose sale closes a few seconds later (hold time 1 s), buys one seat per order over
//! HTTP with an idempotency key, pays every other order through the signed webhook and lets the
//! rest expire, then prints Redis memory, keys and stream length and the tables' rows and bytes,
//! so a run of about 500,000 purchases shows which stores level off and which grow (orders,
//! tickets and payments are the truth and grow with the sales).
//!
//! Start the server with short retention, e.g. `--sweep-interval 1s --retention 30s
//! --prune-interval 5s --hold-extensions 0` (with hold extensions on, an event's seat-lock keys
//! wait for the extension cap, 30 minutes, after its sale); see README "Bounded growth".

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use clap::Parser;
use ticketing_bench::BenchError;
use ticketing_bench::client::HttpClient;
use ticketing_bench::growth::{Sizes, measure};
use ticketing_bench::http::HttpBuyer;
use ticketing_bench::remote::AdminApi;
use ticketing_bench::scenario::{Goods, Outcome};
use ticketing_bench::setup::{SaleKind, sale_event, sale_zone, ticket_price};
use ticketing_core::domain::{CustomerId, EventId, IdempotencyKey, SeatRef, VenueId};
use ticketing_core::service::{PurchaseRequest, Selection};
use ticketing_server::auth::{TokenMinter, TokenRules};

/// Soak a running server with rounds of short sales and print what the stores hold.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// The server's base URL.
    #[arg(long)]
    target: String,
    /// The server's --admin-token.
    #[arg(long)]
    admin_token: String,
    /// The server's --webhook-secret.
    #[arg(long)]
    webhook_secret: String,
    /// The server's --jwt-hs256-secret.
    #[arg(long)]
    jwt_hs256_secret: String,
    /// The server's database, to measure the tables.
    #[arg(long)]
    database_url: String,
    /// The server's Redis, to measure memory, keys and the stream.
    #[arg(long)]
    redis_url: String,
    /// The server's --redis-key-prefix.
    #[arg(long, default_value = "")]
    redis_key_prefix: String,
    /// Purchases in all.
    #[arg(long, default_value_t = 500_000)]
    purchases: u32,
    /// Purchases per round (one event per round).
    #[arg(long, default_value_t = 5_000)]
    per_round: u32,
    /// Purchases in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// How long after its round starts an event's sale closes.
    #[arg(long, default_value = "20", value_parser = clap::value_parser!(u32).range(1..))]
    sale_seconds: u32,
}

/// What one round did.
#[derive(Debug, Default)]
struct Round {
    bought: AtomicU64,
    paid: AtomicU64,
    failed: AtomicU64,
    /// Why the first failure failed.
    first_failure: std::sync::Mutex<Option<String>>,
}

impl Round {
    fn failed(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_failure.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(why);
    }
}

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    let args = Args::parse();
    let client = HttpClient::new(args.concurrency as usize + 1, Duration::from_secs(30));
    let admin = AdminApi::new(client.clone(), &args.target, &args.admin_token);
    let tokens = TokenMinter::hs256(args.jwt_hs256_secret.as_bytes(), &TokenRules::default())
        .map_err(|e| format!("--jwt-hs256-secret: {e}"))?;
    let buyer = HttpBuyer::new(
        client,
        &args.target,
        Some(args.webhook_secret.as_bytes()),
        tokens,
    );
    let pool = sqlx::MySqlPool::connect(&args.database_url)
        .await
        .map_err(|e| format!("--database-url {}: {e}", args.database_url))?;
    let redis_client = redis::Client::open(args.redis_url.as_str())?;
    let mut redis = redis::aio::ConnectionManager::new(redis_client)
        .await
        .map_err(|e| format!("--redis-url {}: {e}", args.redis_url))?;

    let (zone, Goods::Seats(seats)) = sale_zone(SaleKind::Seats(args.per_round))? else {
        unreachable!("a sale of seats sells seats")
    };
    let venue = VenueId::from_uuid(admin.create_venue(&zone).await?.id);
    let rounds = args.purchases.div_ceil(args.per_round);
    let started = Instant::now();
    println!(
        "round | purchases | paid | failed | s | {}",
        Sizes::header()
    );
    for round in 0..rounds {
        let event = open_event(&admin, venue, &zone.code, args.sale_seconds).await?;
        let done = buy_round(&buyer, event, round, &seats, &args).await;
        // Past the sale's end, hold time and payment grace: the server's sweep expires the
        // unpaid orders and its pruning runs on its own intervals.
        let sizes = measure(&pool, &mut redis, &args.redis_key_prefix).await?;
        if let Some(why) = done
            .first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            eprintln!("round {round}: first failure: {why}");
        }
        println!(
            "{round:>5} | {} | {} | {} | {:.0} | {}",
            (u64::from(round) + 1) * u64::from(args.per_round),
            done.paid.load(Ordering::Relaxed),
            done.failed.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64(),
            sizes.row()
        );
    }
    println!(
        "{rounds} rounds of {} purchases in {:.0} s",
        args.per_round,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An event at `venue` on sale now, closing in `sale_seconds`, hold time 1 s.
async fn open_event(
    admin: &AdminApi,
    venue: VenueId,
    zone: &ticketing_core::domain::ZoneCode,
    sale_seconds: u32,
) -> Result<EventId, BenchError> {
    let mut spec = sale_event(venue, zone, 1)?;
    spec.name = "Soak".into();
    spec.sale_closes = Utc::now() + TimeDelta::seconds(i64::from(sale_seconds));
    spec.hold_time = TimeDelta::seconds(1);
    Ok(EventId::from_uuid(admin.create_event(&spec).await?.id))
}

/// Buys every seat of the round's event, one per order and customer, with `concurrency` buyers;
/// pays the even ones.
async fn buy_round(
    buyer: &HttpBuyer,
    event: EventId,
    round: u32,
    seats: &Arc<[SeatRef]>,
    args: &Args,
) -> Arc<Round> {
    let next = Arc::new(AtomicU32::new(0));
    let done = Arc::new(Round::default());
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (buyer, next, done, seats) =
                (buyer.clone(), next.clone(), done.clone(), seats.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(seat) = seats.get(n as usize) else {
                        return;
                    };
                    buy_one(&buyer, event, round, n, seat.clone(), &done).await;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    done
}

/// One order: buy `seat`, pay it when `n` is even.
async fn buy_one(
    buyer: &HttpBuyer,
    event: EventId,
    round: u32,
    n: u32,
    seat: SeatRef,
    done: &Round,
) {
    let (Ok(customer), Ok(key)) = (
        CustomerId::new(format!("soak-{round}-{n}")),
        IdempotencyKey::new(format!("k{n}")),
    ) else {
        done.failed(format!("order {n} has no valid customer or key"));
        return;
    };
    let attempt = buyer
        .buy(&PurchaseRequest {
            event,
            customer,
            selection: Selection::Seats(vec![seat]),
            idempotency_key: Some(key),
            voucher: None,
            channel: None,
        })
        .await;
    let Some(order) = attempt
        .order
        .filter(|_| attempt.outcome == Outcome::Success)
    else {
        let why = attempt
            .failure
            .map_or_else(|| "rejected".into(), |f| f.message);
        done.failed(format!("purchase: {why}"));
        return;
    };
    done.bought.fetch_add(1, Ordering::Relaxed);
    if n.is_multiple_of(2) {
        match buyer
            .pay(event, &format!("r{round}-{n}"), order, ticket_price())
            .await
        {
            Ok(()) => {
                done.paid.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => done.failed(format!("payment: {e}")),
        }
    }
}
