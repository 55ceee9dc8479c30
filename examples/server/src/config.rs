//! Command-line flags and environment variables, and the backends they select.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::HttpLimits;
use clap::{Parser, ValueEnum};
use ticketing_core::Result;
use ticketing_core::domain::{MAX_ZONE_CAPACITY, VenueLimits};
use ticketing_core::memory::InMemoryTicketRepository;
use ticketing_core::ports::OutboxStore;
use ticketing_core::service::{Backends, ServiceConfig};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use ticketing_sqlx::{BatchConfig, MySqlCatalog, MySqlSeatLock, MySqlTicketRepository};

/// The example ticketing server. Without `--database-url` it runs on the embedded in-memory
/// adapters with a demo venue and event.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticketing-server", version, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "TICKETING_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// MySQL/MariaDB URL (`mysql://user:password@host:3306/db`) for tickets and the catalog; the
    /// migrations run at start. Without it, everything is kept in memory.
    #[arg(long, env = "TICKETING_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Most database connections.
    #[arg(long, env = "TICKETING_DATABASE_CONNECTIONS", default_value_t = 16)]
    pub database_connections: u32,

    /// Redis URL (`redis://127.0.0.1:6379`) for the seat lock, or the seed nodes of a Redis
    /// Cluster separated by commas (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`). Without it
    /// the seat lock lives in the database (or in memory).
    #[arg(long, env = "TICKETING_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key (no braces).
    #[arg(long, env = "TICKETING_REDIS_KEY_PREFIX", default_value = "tkt:")]
    pub redis_key_prefix: String,

    /// Bearer token of the admin routes. When absent a random one is generated and printed.
    #[arg(long, env = "TICKETING_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Shared secret of the payment webhooks. When absent a random one is generated: only the
    /// demo's simulated payments can then be signed.
    #[arg(long, env = "TICKETING_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// How often the expiry sweep runs, e.g. `5s`, `500ms`, `1m`.
    #[arg(long, env = "TICKETING_SWEEP_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// Create the demo venue and event and serve the demo page at `/`. Defaults to on without
    /// `--database-url` and off with it.
    #[arg(long, env = "TICKETING_DEMO")]
    pub demo: Option<bool>,

    /// With `--database-url`: write each purchase in its own transaction instead of coalescing
    /// concurrent purchases into shared transactions (write batching, on by default: a stampede
    /// then pays one commit per batch).
    #[arg(long, env = "TICKETING_NO_WRITE_BATCHING")]
    pub no_write_batching: bool,

    /// Do not run the outbox relay in this process. The relay mirrors every committed change
    /// into the seat lock (repairing a lock update lost between a commit and the lock call) and,
    /// with `--redis-url`, publishes it to the Redis event stream. Turn it off only where another
    /// instance runs it.
    #[arg(long, env = "TICKETING_NO_OUTBOX_RELAY")]
    pub no_outbox_relay: bool,

    /// With `--redis-url`: do not run the sales projection (the event stream's consumer keeping
    /// the read model) in this process.
    #[arg(long, env = "TICKETING_NO_PROJECTION")]
    pub no_projection: bool,

    /// Longest time a client may take to send a request's header (also how long an idle
    /// keep-alive connection stays open); the connection is closed after it.
    #[arg(long, env = "TICKETING_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Longest time from a request's header to its response; `408 REQUEST_TIMEOUT` after it. A
    /// purchase, payment, cancellation or refund that had started runs on to completion, so a
    /// client retries it with the same idempotency key rather than assuming it failed.
    #[arg(long, env = "TICKETING_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest pause while a request body is read; `408 REQUEST_TIMEOUT` after it.
    #[arg(long, env = "TICKETING_BODY_READ_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Most requests handled at once; the rest are refused at once with `503 UNAVAILABLE` and
    /// `Retry-After` (`/health` and `/metrics` are exempt).
    #[arg(long, env = "TICKETING_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// After Ctrl-C or SIGTERM, how long open connections get to finish before they are closed.
    #[arg(long, env = "TICKETING_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Log line format.
    #[arg(long, env = "TICKETING_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long a seat map may be reused: seat-map requests within this time of a read share it
    /// (one seat-lock snapshot per period however many clients refresh the map); `0` reads for
    /// every request.
    #[arg(long, env = "TICKETING_SEAT_MAP_MAX_AGE", default_value = "1s", value_parser = parse_max_age)]
    pub seat_map_max_age: Duration,

    /// Most numbered seats in a new venue (a seat map's cost grows with it).
    #[arg(long, env = "TICKETING_MAX_VENUE_SEATS", default_value_t = VenueLimits::default().max_seats, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_venue_seats: u32,

    /// Most rows in one seated zone of a new venue.
    #[arg(long, env = "TICKETING_MAX_ROWS_PER_ZONE", default_value_t = VenueLimits::default().max_rows_per_zone, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rows_per_zone: u32,

    /// Most seats in one row of a new venue.
    #[arg(long, env = "TICKETING_MAX_SEATS_PER_ROW", default_value_t = VenueLimits::default().max_seats_per_row, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ZONE_CAPACITY)))]
    pub max_seats_per_row: u32,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` fields, for people.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl Args {
    /// The HTTP limits these flags set.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            body_read_timeout: self.body_read_timeout,
            max_in_flight: self.max_in_flight as usize,
            shutdown_grace: self.shutdown_grace,
        }
    }

    /// The core services' settings these flags set: the seat-map max age and the venue caps.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            seat_map_max_age: self.seat_map_max_age,
            venue_limits: VenueLimits {
                max_seats: self.max_venue_seats,
                max_rows_per_zone: self.max_rows_per_zone,
                max_seats_per_row: self.max_seats_per_row,
            },
            ..ServiceConfig::default()
        }
    }

    /// Whether demo mode is on.
    pub fn demo_mode(&self) -> bool {
        self.demo.unwrap_or(self.database_url.is_none())
    }

    /// Which backends these flags select, in words, for the start-up line.
    pub fn describe_backends(&self) -> String {
        let store = if self.database_url.is_some() {
            "MySQL"
        } else {
            "in-memory"
        };
        let lock = match (&self.redis_url, &self.database_url) {
            (Some(_), _) => "Redis",
            (None, Some(_)) => "SQL",
            (None, None) => "in-memory",
        };
        let batching = if self.database_url.is_some() && !self.no_write_batching {
            ", write batching"
        } else {
            ""
        };
        format!("{store} tickets and catalog, {lock} seat lock{batching}")
    }

    /// Connects the selected backends: MySQL repository (with write batching unless
    /// `--no-write-batching`) and catalog (migrated) with `--database-url`, the Redis seat lock with `--redis-url`, the SQL seat lock with a
    /// database but no Redis, in-memory adapters for the rest.
    pub async fn connect_backends(&self) -> Result<Backends> {
        Ok(self.connect_backends_with_outbox().await?.0)
    }

    /// [`connect_backends`](Self::connect_backends), plus the ticket repository as the outbox
    /// relay's store.
    pub async fn connect_backends_with_outbox(&self) -> Result<(Backends, Arc<dyn OutboxStore>)> {
        let mut backends = Backends::in_memory().to_builder();
        let memory = Arc::new(InMemoryTicketRepository::new());
        backends = backends.tickets(memory.clone());
        let mut outbox: Arc<dyn OutboxStore> = memory;
        if let Some(url) = &self.database_url {
            let pool = ticketing_sqlx::connect(url, self.database_connections).await?;
            ticketing_sqlx::migrate(&pool).await?;
            let repository = Arc::new(if self.no_write_batching {
                MySqlTicketRepository::new(pool.clone())
            } else {
                MySqlTicketRepository::with_batching(pool.clone(), BatchConfig::default())
            });
            outbox = repository.clone();
            backends = backends
                .tickets(repository)
                .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
                .seat_lock(Arc::new(MySqlSeatLock::new(pool)));
        }
        if let Some(url) = &self.redis_url {
            let config = RedisSeatLockConfig {
                key_prefix: self.redis_key_prefix.clone(),
                ..Default::default()
            };
            backends = backends.seat_lock(Arc::new(RedisSeatLock::connect(url, config).await?));
        }
        let backends = backends.build()?;
        Ok((backends, outbox))
    }
}

/// [`parse_duration`], where `0` means "never".
fn parse_max_age(text: &str) -> Result<Duration, String> {
    match text.trim() {
        "0" | "0s" | "0ms" => Ok(Duration::ZERO),
        _ => parse_duration(text),
    }
}

/// Parses `250ms`, `5s`, `2m` or a bare number of seconds; zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 5s or 1m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("unknown unit {unit:?}: use ms, s or m")),
    };
    if duration.is_zero() {
        return Err("the interval must be positive".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn write_batching_is_on_by_default_and_can_be_turned_off() {
        let args = Args::parse_from(["ticketing-server", "--database-url", "mysql://x/y"]);
        assert!(args.describe_backends().ends_with("write batching"));
        let args = Args::parse_from([
            "ticketing-server",
            "--database-url",
            "mysql://x/y",
            "--no-write-batching",
        ]);
        assert!(!args.describe_backends().contains("batching"));
    }

    #[test]
    fn the_event_stream_tasks_can_be_turned_off() {
        let args = Args::parse_from(["ticketing-server"]);
        assert!(!args.no_outbox_relay && !args.no_projection);
        let args = Args::parse_from(["ticketing-server", "--no-outbox-relay", "--no-projection"]);
        assert!(args.no_outbox_relay && args.no_projection);
    }

    #[test]
    fn http_limit_defaults_are_the_library_defaults() {
        let args = Args::parse_from(["ticketing-server"]);
        assert_eq!(args.http_limits(), HttpLimits::default());
        let args = Args::parse_from([
            "ticketing-server",
            "--header-read-timeout",
            "2s",
            "--request-timeout",
            "3s",
            "--body-read-timeout",
            "500ms",
            "--max-in-flight",
            "2",
            "--shutdown-grace",
            "1s",
        ]);
        let limits = args.http_limits();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(limits.request_timeout, Duration::from_secs(3));
        assert_eq!(limits.body_read_timeout, Duration::from_millis(500));
        assert_eq!(limits.max_in_flight, 2);
        assert_eq!(limits.shutdown_grace, Duration::from_secs(1));
        assert!(Args::try_parse_from(["ticketing-server", "--max-in-flight", "0"]).is_err());
    }

    #[test]
    fn seat_map_and_venue_settings_reach_the_service_config() {
        let config = Args::parse_from(["ticketing-server"]).service_config();
        assert_eq!(config.seat_map_max_age, Duration::from_secs(1));
        assert_eq!(config.venue_limits, VenueLimits::default());
        let config = Args::parse_from([
            "ticketing-server",
            "--seat-map-max-age",
            "0",
            "--max-venue-seats",
            "500",
            "--max-rows-per-zone",
            "20",
            "--max-seats-per-row",
            "50",
        ])
        .service_config();
        assert_eq!(config.seat_map_max_age, Duration::ZERO);
        assert_eq!(
            config.venue_limits,
            VenueLimits {
                max_seats: 500,
                max_rows_per_zone: 20,
                max_seats_per_row: 50
            }
        );
        assert!(Args::try_parse_from(["ticketing-server", "--max-seats-per-row", "0"]).is_err());
    }

    #[test]
    fn demo_defaults_to_embedded_mode() {
        let args = Args::parse_from(["ticketing-server"]);
        assert!(args.demo_mode());
        let args = Args::parse_from(["ticketing-server", "--database-url", "mysql://x/y"]);
        assert!(!args.demo_mode());
        let args = Args::parse_from([
            "ticketing-server",
            "--database-url",
            "mysql://x/y",
            "--demo",
            "true",
        ]);
        assert!(args.demo_mode());
    }
}
