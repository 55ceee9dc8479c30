//! `--target`: driving separately started `ticketing-server` processes over keep-alive HTTP.
//!
//! The bench owns none of their backends. It creates its venue and event through the admin API
//! of the first server, checks that every server knows the event (they must share a database),
//! warms each server up, buys (and pays, through the signed webhook) through the public API, and
//! audits either with SQL in the database the servers use (`--database-url`) or through the read
//! API. With `--database-url` / `--redis-url` it also measures the raw limits of those services,
//! so the results can be given as ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use serde::Serialize;
use sqlx::MySqlPool;
use sqlx::mysql::MySqlPoolOptions;
use ticketing_core::domain::{CustomerId, EventId, EventSpec, OrderId, SeatRef, VenueId, Zone};
use ticketing_core::service::{PurchaseRequest, Selection};
use ticketing_server::auth::{TokenMinter, TokenRules};
use ticketing_server::dto::{
    CreateEventDto, CreateVenueDto, EventDto, OrderDto, PriceDto, SeatMapDto, SoldCountDto,
    TicketStatusDto, VenueDto, ZoneDto,
};

use crate::BenchError;
use crate::audit::{self, Audit, Reported};
use crate::client::{HttpClient, RequestError};
use crate::http::HttpBuyer;
use crate::raw::{self, RawLimits};
use crate::rejection::{self, CostProbes};
use crate::report::{RunMeta, RunReport};
use crate::scenario::{self, Attempt, Buyer, Goods, LoadSpec, RawResult};
use crate::seat_map_readers::{ReaderClient, SeatMapReaders};
use crate::setup::{RunDatabase, SaleKind, sale_event, sale_zone, ticket_price};

/// Checks a `--target` value and returns it as `http://host:port` (no trailing slash).
pub fn parse_target(text: &str) -> Result<String, String> {
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{text:?}: only http:// targets are supported (e.g. http://127.0.0.1:8080)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{text:?} has no host"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{text:?}: give the server's base URL without a path, e.g. http://{authority}"
        ));
    }
    Ok(format!("http://{authority}"))
}

/// What a `--target` run does.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// The servers' base URLs (`http://host:port`); buyer task `i` uses server `i % len`.
    pub targets: Vec<String>,
    /// The servers' admin bearer token.
    pub admin_token: String,
    /// The servers' payment webhook secret (needed to pay).
    pub webhook_secret: Option<Vec<u8>>,
    /// The servers' HS256 customer-token secret (their `--jwt-hs256-secret`): the bench signs
    /// a token for each of its customers.
    pub jwt_hs256_secret: Vec<u8>,
    /// The database the servers use, for the SQL audit, `Questions` and the raw INSERT probe.
    pub database_url: Option<String>,
    /// The Redis server, for script counts and the raw EVALSHA probe.
    pub redis_url: Option<String>,
    /// What the event sells.
    pub sale: SaleKind,
    /// Most tickets per customer.
    pub per_customer_limit: u32,
    /// The load of the main phase.
    pub load: LoadSpec,
    /// Attempts of the rejection-only phase (0: skip).
    pub rejection_attempts: u64,
    /// The timeout of every request.
    pub request_timeout: Duration,
    /// Clients of the raw-limit probes.
    pub raw_clients: usize,
    /// Duration of each raw-limit probe (zero: skip them).
    pub raw_duration: Duration,
    /// Clients reading the seat map in a loop during the main phase (0: none).
    pub seat_map_readers: usize,
    /// How those clients ask for the map.
    pub seat_map_client: ReaderClient,
    /// How long each of those clients waits between two reads (zero: none).
    pub seat_map_pause: Duration,
}

/// Throughput over HTTP as a share of the raw limits measured in the same run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TargetRatios {
    /// Successful purchases/s ÷ raw single-row autocommit INSERTs/s.
    pub purchases_vs_single_insert: Option<f64>,
    /// Paid sales/s ÷ raw single-row autocommit INSERTs/s.
    pub paid_vs_single_insert: Option<f64>,
    /// Rejection-only phase rejections/s ÷ raw EVALSHA/s.
    pub rejections_vs_raw_evalsha: Option<f64>,
}

impl TargetRatios {
    /// The ratios of `report` to `limits`.
    pub fn of(report: &RunReport, limits: &RawLimits) -> Self {
        let rejections = report.rejection_cost.rejections_per_s;
        TargetRatios {
            purchases_vs_single_insert: raw::ratio(
                report.purchases_per_s,
                limits.single_insert_per_s,
            ),
            paid_vs_single_insert: report
                .payments
                .as_ref()
                .and_then(|p| raw::ratio(p.paid_per_s, limits.single_insert_per_s)),
            rejections_vs_raw_evalsha: (report.rejection_cost.rejected > 0)
                .then(|| raw::ratio(rejections, limits.evalsha_per_s))
                .flatten(),
        }
    }

    /// The ratios on one line, for the terminal.
    pub fn describe(&self) -> String {
        let show = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.2}x"));
        format!(
            "ratios: purchases/s / single-row commits/s {}; paid sales/s / single-row commits/s {}; rejections/s / raw EVALSHA/s {}",
            show(self.purchases_vs_single_insert),
            show(self.paid_vs_single_insert),
            show(self.rejections_vs_raw_evalsha),
        )
    }
}

/// What a `--target` run measured.
#[derive(Debug)]
pub struct TargetOutcome {
    /// The run.
    pub report: RunReport,
    /// The raw limits, when a URL was given for either side.
    pub raw_limits: Option<RawLimits>,
    /// The run as ratios of the raw limits.
    pub ratios: Option<TargetRatios>,
}

/// The event a run created on the servers.
#[derive(Debug, Clone)]
pub struct RemoteSale {
    /// Its venue.
    pub venue: VenueId,
    /// The event.
    pub event: EventId,
    /// What buyers choose from.
    pub goods: Goods,
}

/// The admin routes of one server (`Authorization: Bearer <token>`).
pub struct AdminApi {
    client: HttpClient,
    base: String,
    authorization: String,
}

impl AdminApi {
    /// The admin API of the server at `base`.
    pub fn new(client: HttpClient, base: &str, token: &str) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {token}"),
        }
    }

    /// Creates a venue with the zone of `sale` and an event selling it, on sale now.
    pub async fn create_sale(
        &self,
        sale: SaleKind,
        per_customer_limit: u32,
    ) -> Result<RemoteSale, BenchError> {
        let (zone, goods) = sale_zone(sale)?;
        let venue = self.create_venue(&zone).await?;
        let venue = VenueId::from_uuid(venue.id);
        let spec = sale_event(venue, &zone.code, per_customer_limit)?;
        let event = self.create_event(&spec).await?;
        Ok(RemoteSale {
            venue,
            event: EventId::from_uuid(event.id),
            goods,
        })
    }

    /// `POST /api/admin/venues` with one zone.
    pub async fn create_venue(&self, zone: &Zone) -> Result<VenueDto, BenchError> {
        let body = CreateVenueDto {
            name: "Flash-sale arena".into(),
            zones: vec![ZoneDto::from(zone)],
        };
        let answer = self.post("/api/admin/venues", &body).await?;
        answer.expect(StatusCode::CREATED).map_err(admin_error)
    }

    /// `POST /api/admin/events`.
    pub async fn create_event(&self, spec: &EventSpec) -> Result<EventDto, BenchError> {
        let body = CreateEventDto {
            venue_id: spec.venue_id.as_uuid(),
            name: spec.name.clone(),
            sale_opens: spec.sale_opens,
            sale_closes: spec.sale_closes,
            prices: spec
                .prices
                .iter()
                .map(|(zone, money)| PriceDto::new(zone, money))
                .collect(),
            hold_time_seconds: u32::try_from(spec.hold_time.num_seconds())?,
            per_customer_limit: spec.per_customer_limit,
            hidden_zones: None,
            price_tiers: None,
        };
        let answer = self.post("/api/admin/events", &body).await?;
        answer.expect(StatusCode::CREATED).map_err(admin_error)
    }

    /// `POST /api/admin/orders/{id}/refund`.
    pub async fn refund(&self, order: OrderId) -> Result<(), BenchError> {
        let path = format!("/api/admin/orders/{}/refund", order.as_uuid());
        let answer = self.post(&path, &serde_json::json!({})).await?;
        answer
            .expect::<OrderDto>(StatusCode::OK)
            .map_err(admin_error)?;
        Ok(())
    }

    async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<crate::client::Answer, BenchError> {
        let url = format!("{}{path}", self.base);
        self.client
            .post_json(&url, &[("authorization", &self.authorization)], body)
            .await
            .map_err(|e| format!("{url}: {e}").into())
    }
}

/// An admin answer that was not the expected one, with a hint for the common cause.
fn admin_error(error: RequestError) -> BenchError {
    match error.code() {
        Some("UNAUTHORIZED") => {
            format!("the server refused the admin token ({error}): give the server's --admin-token")
                .into()
        }
        _ => format!("admin API: {error}").into(),
    }
}

/// Before the clock starts, on every server: a purchase the validation refuses (it loads the
/// event into the server's cache, and a `404` shows a server that does not share the first
/// one's database), then one real order (which loads the event into the seat lock), paid and
/// refunded when the run pays (which checks the webhook secret) or else cancelled.
pub async fn warm_up(
    buyers: &[HttpBuyer],
    admin: &AdminApi,
    sale: &RemoteSale,
    pay: bool,
) -> Result<(), BenchError> {
    for (i, buyer) in buyers.iter().enumerate() {
        check_knows_event(buyer, sale.event).await?;
        let selection = match &sale.goods {
            Goods::Seats(seats) => Selection::Seats(vec![seats[i % seats.len()].clone()]),
            Goods::General { zone, .. } => Selection::General {
                zone: zone.clone(),
                quantity: 1,
            },
        };
        let customer: CustomerId = format!("warmup{i}").parse()?;
        let request = PurchaseRequest {
            event: sale.event,
            customer: customer.clone(),
            selection,
            idempotency_key: None,
            voucher: None,
            channel: None,
        };
        let order = match buyer.buy(&request).await {
            Attempt {
                order: Some(order), ..
            } => order,
            Attempt { failure, .. } => {
                let why = failure.map_or_else(|| "rejected".into(), |f| f.message);
                return Err(format!("{}: the warm-up purchase failed: {why}", buyer.base()).into());
            }
        };
        if pay {
            buyer
                .pay(sale.event, &format!("warmup{i}"), order, ticket_price())
                .await
                .map_err(|e| payment_error(buyer.base(), e))?;
            admin.refund(order).await?;
        } else {
            buyer
                .cancel(&customer, order)
                .await
                .map_err(|e| format!("{}: cancelling the warm-up order: {e}", buyer.base()))?;
        }
    }
    Ok(())
}

/// A warm-up payment that failed, with a hint for the common cause.
fn payment_error(base: &str, error: RequestError) -> BenchError {
    match error.code() {
        Some("UNAUTHORIZED") => format!(
            "{base} refused the payment webhook ({error}): give the server's --webhook-secret"
        )
        .into(),
        _ => format!("{base}: the warm-up payment failed: {error}").into(),
    }
}

/// A purchase of a seat in a zone the venue does not have: `422 INCONSISTENT_REQUEST` once the
/// server has loaded the event, `404` when it does not know it.
async fn check_knows_event(buyer: &HttpBuyer, event: EventId) -> Result<(), BenchError> {
    let request = PurchaseRequest {
        event,
        customer: "warmup".parse()?,
        selection: Selection::Seats(vec!["NONE:1:1".parse::<SeatRef>()?]),
        idempotency_key: None,
        voucher: None,
        channel: None,
    };
    match buyer.buy(&request).await {
        Attempt {
            failure: Some(failure),
            ..
        } if failure.kind == "HTTP 422 INCONSISTENT_REQUEST" => Ok(()),
        Attempt {
            failure: Some(failure),
            ..
        } if failure.kind == "HTTP 401 UNAUTHORIZED" => Err(format!(
            "{} refused the customer token ({}): give the servers' --jwt-hs256-secret",
            buyer.base(),
            failure.message
        )
        .into()),
        Attempt {
            failure: Some(failure),
            ..
        } if failure.kind == "HTTP 404 NOT_FOUND" => Err(format!(
            "{} does not know event {event} created through the first target: \
             the targets must share one database",
            buyer.base()
        )
        .into()),
        other => Err(format!(
            "{}: a purchase of a seat the venue lacks should be refused with 422, got {other:?}",
            buyer.base()
        )
        .into()),
    }
}

/// Opens a small pool on the servers' database (`--database-url`).
async fn connect_database(url: &str) -> Result<MySqlPool, BenchError> {
    MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| format!("cannot reach the database at --database-url {url}: {e}").into())
}

/// One client per server, each bounded to the buyer tasks that use that server (task `i` uses
/// server `i % n`), so idle connections to one server never hold back buyers of another.
fn clients_per_target(config: &TargetConfig) -> Vec<HttpClient> {
    let n = config.targets.len().max(1);
    let tasks = config.load.concurrency.max(1);
    (0..n)
        .map(|i| {
            let mine = tasks / n + usize::from(i < tasks % n);
            HttpClient::new(mine.max(1), config.request_timeout)
        })
        .collect()
}

/// A short label for the report: the sale and the servers' addresses.
fn label(sale: SaleKind, targets: &[String]) -> String {
    let hosts: Vec<&str> = targets
        .iter()
        .map(|t| t.trim_start_matches("http://"))
        .collect();
    format!("{} @ {}", sale.name(), hosts.join(","))
}

/// The whole `--target` run: set-up, warm-up, the sale, the rejection-only phase, the audit and
/// the raw limits.
pub async fn run(config: &TargetConfig) -> Result<TargetOutcome, BenchError> {
    let first = config.targets.first().ok_or("--target is required")?;
    let clients = clients_per_target(config);
    let client = clients[0].clone();
    let admin = AdminApi::new(client.clone(), first, &config.admin_token);
    let database = match &config.database_url {
        Some(url) => Some(connect_database(url).await?),
        None => None,
    };
    let sale = admin
        .create_sale(config.sale, config.per_customer_limit)
        .await?;
    if let Some(pool) = &database
        && !audit::event_exists(pool, sale.event).await?
    {
        return Err(format!(
            "event {} created through {first} is not in the --database-url database: \
             give the database the servers use",
            sale.event
        )
        .into());
    }
    let tokens = TokenMinter::hs256(&config.jwt_hs256_secret, &TokenRules::default())
        .map_err(|e| format!("--jwt-hs256-secret: {e}"))?;
    let http_buyers: Vec<HttpBuyer> = config
        .targets
        .iter()
        .zip(&clients)
        .map(|(t, c)| {
            HttpBuyer::new(
                c.clone(),
                t,
                config.webhook_secret.as_deref(),
                tokens.clone(),
            )
        })
        .collect();
    warm_up(&http_buyers, &admin, &sale, config.load.pay).await?;
    let buyers: Vec<Buyer> = http_buyers.into_iter().map(Buyer::Http).collect();
    let opened = || {
        clients
            .iter()
            .map(HttpClient::connections_opened)
            .sum::<u64>()
    };
    let connections_before = opened();
    println!(
        "{}: event {} ({} {}), {} server(s)",
        label(config.sale, &config.targets),
        sale.event,
        config.sale.capacity(),
        config.sale.name(),
        config.targets.len()
    );
    let readers = if config.seat_map_readers > 0 {
        let readers = SeatMapReaders::start(
            &config.targets,
            sale.event,
            config.seat_map_readers,
            config.seat_map_client,
            config.seat_map_pause,
            config.request_timeout,
        )
        .map_err(|e| format!("starting the seat-map readers' thread: {e}"))?;
        Some(readers)
    } else {
        None
    };
    let raw = scenario::run(&buyers, sale.event, &sale.goods, &config.load).await;
    let readers = match readers {
        Some(readers) => Some(readers.stop().await),
        None => None,
    };
    let connections_opened = opened() - connections_before;

    let mut rejection_cost = Default::default();
    let losing = rejection::losing_goods(&sale.goods, &raw, config.load.seats_per_order);
    if let (Some(losing), true) = (losing, config.rejection_attempts > 0) {
        let spec = rejection::phase_spec(&config.load, config.rejection_attempts);
        let probes = CostProbes {
            pool: database.as_ref(),
            redis_url: config.redis_url.as_deref(),
            calls: None,
        };
        rejection_cost = rejection::measure(&buyers, sale.event, &losing, &spec, probes).await?;
    }

    let reported = Reported::of(&raw, config.load.seats_per_order, config.load.pay);
    let capacity = config.sale.capacity();
    let audit = match &database {
        Some(pool) => audit::audit_sql(pool, sale.event, capacity, reported).await?,
        None => {
            audit_api(
                &client,
                first,
                &config.admin_token,
                &sale,
                &raw,
                reported,
                config.load.concurrency,
            )
            .await?
        }
    };
    let meta = RunMeta {
        label: label(config.sale, &config.targets),
        mode: "target",
        targets: config.targets.clone(),
        sale: config.sale.name(),
        capacity,
    };
    let mut report = RunReport::new(meta, &config.load, &raw, audit);
    report.rejection_cost = rejection_cost;
    report.connections_opened = Some(connections_opened);
    report.seat_map_readers = readers;
    if let Some(pool) = database {
        pool.close().await;
    }
    let raw_limits = measure_raw_limits(config).await?;
    let ratios = raw_limits.as_ref().map(|l| TargetRatios::of(&report, l));
    Ok(TargetOutcome {
        report,
        raw_limits,
        ratios,
    })
}

/// The raw limits of the services given by URL; the INSERT probes run in a scratch database
/// created (and dropped) next to the servers' one.
async fn measure_raw_limits(config: &TargetConfig) -> Result<Option<RawLimits>, BenchError> {
    if config.raw_duration.is_zero()
        || (config.database_url.is_none() && config.redis_url.is_none())
    {
        return Ok(None);
    }
    println!(
        "raw limits: {} clients, {} s per probe",
        config.raw_clients,
        config.raw_duration.as_secs_f64()
    );
    let scratch = match &config.database_url {
        Some(url) => {
            Some(RunDatabase::create(url, "--database-url", config.raw_clients as u32).await?)
        }
        None => None,
    };
    let limits = raw::measure(
        scratch.as_ref().map(|d| &d.pool),
        config.redis_url.as_deref(),
        config.raw_clients,
        config.raw_duration,
    )
    .await;
    if let Some(scratch) = scratch {
        scratch.drop_database().await?;
    }
    Ok(Some(limits?))
}

/// The audit through the read API of the server at `base`, for servers whose database the bench
/// cannot read: every acknowledged order must be stored and active (`GET /api/orders/{id}`), no
/// seat may be in two acknowledged orders, the seat map (the seat lock's view) must show as many
/// places taken as were sold and no zone over capacity, and with payments the PAID count
/// (`GET /api/events/{id}/sold-count`) must match. Orders are read with the admin token, which
/// sees every customer's.
pub async fn audit_api(
    client: &HttpClient,
    base: &str,
    admin_token: &str,
    sale: &RemoteSale,
    raw: &RawResult,
    reported: Reported,
    concurrency: usize,
) -> Result<Audit, BenchError> {
    let event = sale.event.as_uuid();
    let map: SeatMapDto = client
        .get(&format!("{base}/api/events/{event}/seats"))
        .await?
        .expect(StatusCode::OK)?;
    let seats_taken: u64 = map
        .seated
        .iter()
        .flat_map(|zone| &zone.rows)
        .map(|row| {
            let free: u32 = row.free.iter().map(|[first, last]| last - first + 1).sum();
            u64::from(row.seats - free)
        })
        .sum();
    let places_taken: u64 = map
        .general_admission
        .iter()
        .map(|g| u64::from(g.taken))
        .sum();
    let zones_over_capacity = map
        .general_admission
        .iter()
        .filter(|g| g.taken > g.capacity)
        .count() as u64;
    let paid_tickets = match reported.tickets_paid {
        Some(_) => {
            let sold: SoldCountDto = client
                .get(&format!("{base}/api/events/{event}/sold-count"))
                .await?
                .expect(StatusCode::OK)?;
            Some(sold.sold_count)
        }
        None => None,
    };
    let orders_missing =
        count_missing_orders(client, base, admin_token, &raw.orders, concurrency).await?;
    Ok(Audit {
        source: "api",
        active_tickets: seats_taken + places_taken,
        capacity: sale.goods.capacity(),
        double_sold_seats: audit::repeated_seats(&raw.sold),
        zones_over_capacity,
        reported,
        paid_tickets,
        orders_missing: Some(orders_missing),
    })
}

/// How many of `orders` the server does not show as PENDING_PAYMENT or PAID, read by
/// `concurrency` tasks at once. A read that fails is an error, not a missing order.
async fn count_missing_orders(
    client: &HttpClient,
    base: &str,
    admin_token: &str,
    orders: &[OrderId],
    concurrency: usize,
) -> Result<u64, BenchError> {
    let orders: Arc<[OrderId]> = orders.into();
    let next = Arc::new(AtomicUsize::new(0));
    let missing = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, 64) {
        let (client, orders, next, missing) = (
            client.clone(),
            orders.clone(),
            next.clone(),
            missing.clone(),
        );
        let base = base.to_owned();
        let authorization = format!("Bearer {admin_token}");
        readers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(order) = orders.get(i) else {
                    return Ok::<_, RequestError>(());
                };
                let url = format!("{base}/api/orders/{}", order.as_uuid());
                let answer = client
                    .get_with(&url, &[("authorization", &authorization)])
                    .await?;
                if answer.status == StatusCode::NOT_FOUND {
                    missing.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let stored: OrderDto = answer.expect(StatusCode::OK)?;
                if !matches!(
                    stored.status,
                    TicketStatusDto::PendingPayment | TicketStatusDto::Paid
                ) {
                    missing.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(done) = readers.join_next().await {
        done??;
    }
    Ok(missing.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised_base_urls() {
        assert_eq!(
            parse_target("http://127.0.0.1:18081"),
            Ok("http://127.0.0.1:18081".into())
        );
        assert_eq!(
            parse_target("http://10.0.0.5:8080/"),
            Ok("http://10.0.0.5:8080".into())
        );
        assert_eq!(
            parse_target("http://localhost"),
            Ok("http://localhost".into())
        );
        assert!(parse_target("https://127.0.0.1:8443").is_err());
        assert!(parse_target("127.0.0.1:8080").is_err());
        assert!(parse_target("http://127.0.0.1:8080/api").is_err());
        assert!(parse_target("not a url").is_err());
    }

    #[test]
    fn labels_name_the_sale_and_the_servers() {
        let targets = vec!["http://a:1".to_owned(), "http://b:2".to_owned()];
        assert_eq!(label(SaleKind::Seats(10), &targets), "seats @ a:1,b:2");
    }
}
