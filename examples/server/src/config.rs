//! Command-line flags and environment variables, and the backends they select.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{CustomerAuth, JwtKey, PublicKeyAlgorithm, TokenRules};
use crate::limits::HttpLimits;
use crate::live_seat_map::LiveSeatMapConfig;
use crate::rate_limit::PurchaseRate;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use ticketing_core::domain::{
    AdmissionSecret, HoldExtension, MAX_ZONE_CAPACITY, OrderIdSecret, VenueLimits,
};
use ticketing_core::memory::{InMemoryTicketRepository, InMemoryWaitingList};
use ticketing_core::ports::OutboxStore;
use ticketing_core::service::{
    Backends, RetentionConfig, SeatChangeFeedConfig, ServiceConfig, WaitingListConfig,
};
use ticketing_core::{Error, Result};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig, RedisWaitingRoom};
use ticketing_sqlx::postgres::{
    PgCatalog, PgSeatLock, PgTicketRepository, PgWaitingList, PgWaitingRoom,
};
use ticketing_sqlx::{
    BatchConfig, DatabaseClock, DatabaseClockConfig, MySqlCatalog, MySqlSeatLock,
    MySqlTicketRepository, MySqlWaitingList, MySqlWaitingRoom,
};
use uuid::Uuid;

/// The example ticketing server. Without `--database-url` it runs on the embedded in-memory
/// adapters with a demo venue and event.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticketing-server", version, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "TICKETING_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL for tickets and the catalog: MySQL/MariaDB (`mysql://user:password@host:3306/db`)
    /// or PostgreSQL (`postgres://user:password@host:5432/db`); the migrations run at start.
    /// Without it, everything is kept in memory.
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

    /// Shared secret (at least 32 bytes) that verifies customer tokens signed with HS256. Give
    /// this or `--jwt-public-key-file`; in demo mode without either a random one is used.
    #[arg(long, env = "TICKETING_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,

    /// PEM file of the public key that verifies customer tokens (`-----BEGIN PUBLIC KEY-----`),
    /// with `--jwt-algorithm`. The tokens are minted by your identity provider.
    #[arg(long, env = "TICKETING_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// The algorithm of `--jwt-public-key-file`.
    #[arg(long, env = "TICKETING_JWT_ALGORITHM", value_enum)]
    pub jwt_algorithm: Option<PublicKeyAlgorithm>,

    /// When given, a customer token's `iss` claim must be this.
    #[arg(long, env = "TICKETING_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When given, a customer token's `aud` claim must be (or contain) this.
    #[arg(long, env = "TICKETING_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Secret that keys the order ids of purchases with an idempotency key, so that no one else
    /// can compute them. Every server of one deployment must share it (a retry on another server
    /// must derive the same id). When absent a random one is used: fine for one server.
    #[arg(long, env = "TICKETING_ORDER_ID_SECRET", hide_env_values = true)]
    pub order_id_secret: Option<String>,

    /// Secret that signs the waiting rooms' admission tokens (and draws their lottery). Every
    /// server of one deployment must share it (a token signed by one is checked by another).
    /// When absent a random one is used: fine for one server.
    #[arg(long, env = "TICKETING_ADMISSION_SECRET", hide_env_values = true)]
    pub admission_secret: Option<String>,

    /// Purchases per second one customer may sustain; beyond it `429 RATE_LIMITED`.
    #[arg(long, env = "TICKETING_PURCHASE_RATE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub purchase_rate: u32,

    /// Purchases one customer may make at once after a quiet spell.
    #[arg(long, env = "TICKETING_PURCHASE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub purchase_burst: u32,

    /// How often the expiry sweep runs, e.g. `5s`, `500ms`, `1m`.
    #[arg(long, env = "TICKETING_SWEEP_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// How long history is kept: published outbox entries and idempotency records older than
    /// this are deleted (orders and tickets stay), e.g. `7d`, `12h`. An idempotency key
    /// repeated after it is answered `409 IDEMPOTENCY_CONFLICT`, never a second order.
    #[arg(long, env = "TICKETING_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// How often history older than `--retention` is pruned.
    #[arg(long, env = "TICKETING_PRUNE_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub prune_interval: Duration,

    /// Create the demo venue and event and serve the demo page at `/` (and `/demo/token`, which
    /// mints tokens for `demo-…` customers). Defaults to on without `--database-url` and off
    /// with it. Its simulated payments (`/demo/orders/{id}/pay`) are served only on the
    /// in-memory backend.
    #[arg(long, env = "TICKETING_DEMO")]
    pub demo: Option<bool>,

    /// With a MySQL `--database-url`: write each purchase in its own transaction instead of
    /// coalescing concurrent purchases into shared transactions (write batching, on by default:
    /// a stampede then pays one commit per batch). PostgreSQL always writes each purchase alone.
    #[arg(long, env = "TICKETING_NO_WRITE_BATCHING")]
    pub no_write_batching: bool,

    /// With `--database-url`: judge deadlines, payments and leases by this host's own clock
    /// instead of the database's. By default every server follows the database's clock
    /// (resynced every 10 s), so servers whose clocks disagree still agree on every deadline;
    /// turn it off only where all hosts' clocks are kept in sync.
    #[arg(long, env = "TICKETING_NO_DATABASE_CLOCK")]
    pub no_database_clock: bool,

    /// Do not run the outbox relay in this process. The relay mirrors every committed change
    /// into the seat lock (repairing a lock update lost between a commit and the lock call) and,
    /// with `--redis-url`, publishes it to the Redis event stream. Turn it off only where another
    /// instance runs it.
    #[arg(long, env = "TICKETING_NO_OUTBOX_RELAY")]
    pub no_outbox_relay: bool,

    /// With an event sink: do not run the sales projection (the event stream's consumer keeping
    /// the read model) in this process.
    #[arg(long, env = "TICKETING_NO_PROJECTION")]
    pub no_projection: bool,

    /// Where the outbox relay publishes the event stream, and what the sales projection reads:
    /// `redis` (a Redis stream, needs `--redis-url`; the default with it), `nats` (JetStream,
    /// needs `--nats-url`), `rabbitmq` (a RabbitMQ stream, needs `--rabbitmq-url`) or `kafka` (a
    /// Kafka topic of one partition, needs `--kafka-brokers`; cargo feature `kafka`). A broker's
    /// projection keeps its read model in Redis with `--redis-url`, else in memory (rebuilt from
    /// the stream's start at every start).
    #[arg(long, env = "TICKETING_EVENT_SINK", value_enum)]
    pub event_sink: Option<EventSinkKind>,

    /// NATS server of `--event-sink nats` (`nats://127.0.0.1:4222`), with JetStream enabled.
    #[arg(long, env = "TICKETING_NATS_URL")]
    pub nats_url: Option<String>,

    /// The JetStream stream of `--event-sink nats` (created if missing).
    #[arg(
        long,
        env = "TICKETING_NATS_STREAM",
        default_value = "TICKETING_EVENTS"
    )]
    pub nats_stream: String,

    /// The one subject of `--nats-stream`.
    #[arg(
        long,
        env = "TICKETING_NATS_SUBJECT",
        default_value = "ticketing.events"
    )]
    pub nats_subject: String,

    /// RabbitMQ broker of `--event-sink rabbitmq` (`amqp://guest:guest@127.0.0.1:5672/%2f`).
    #[arg(long, env = "TICKETING_RABBITMQ_URL")]
    pub rabbitmq_url: Option<String>,

    /// The RabbitMQ stream queue of `--event-sink rabbitmq` (declared if missing).
    #[arg(
        long,
        env = "TICKETING_RABBITMQ_STREAM",
        default_value = "ticketing.events"
    )]
    pub rabbitmq_stream: String,

    /// Kafka bootstrap servers of `--event-sink kafka` (`host:port`, comma-separated).
    #[arg(long, env = "TICKETING_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// The Kafka topic of `--event-sink kafka`: it must exist with exactly one partition (the
    /// server does not create it).
    #[arg(
        long,
        env = "TICKETING_KAFKA_TOPIC",
        default_value = "ticketing.events"
    )]
    pub kafka_topic: String,

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

    /// Seat-map reads a second over the whole server, an answer counting once per 16 KiB; reads
    /// beyond wait their turn, so readers in a tight loop cannot take the buyers' CPU (`0`: no
    /// pace).
    #[arg(
        long,
        env = "TICKETING_SEAT_MAP_READS_PER_SECOND",
        default_value_t = 1_000
    )]
    pub seat_map_reads_per_second: u32,

    /// Most live seat-map streams (`GET /api/events/{id}/seat-changes`) open at once; more are
    /// refused with `503` and `Retry-After`.
    #[arg(long, env = "TICKETING_LIVE_SEAT_MAP_STREAMS", default_value_t = 1_024, value_parser = clap::value_parser!(u32).range(1..))]
    pub live_seat_map_streams: u32,

    /// How often the live seat map reads the outbox for new changes (every server reads it,
    /// whichever holds the relay's lease).
    #[arg(long, env = "TICKETING_LIVE_SEAT_MAP_POLL", default_value = "200ms", value_parser = parse_duration)]
    pub live_seat_map_poll: Duration,

    /// How often the holder of an unpaid order may extend its payment deadline
    /// (`POST /api/orders/{orderId}/extend`); 0 turns extension off.
    #[arg(long, env = "TICKETING_HOLD_EXTENSIONS", default_value_t = HoldExtension::default().max_extensions)]
    pub hold_extensions: u32,

    /// How far one extension moves the deadline; without it, by the event's hold time.
    #[arg(long, env = "TICKETING_HOLD_EXTENSION_STEP", value_parser = parse_duration)]
    pub hold_extension_step: Option<Duration>,

    /// Longest time from a purchase to its (extended) payment deadline.
    #[arg(long, env = "TICKETING_HOLD_EXTENSION_MAX_TOTAL", default_value = "30m", value_parser = parse_duration)]
    pub hold_extension_max_total: Duration,

    /// How long a waiting-list offer holds the freed seats for its customer (1s to 1d).
    #[arg(long, env = "TICKETING_WAITING_LIST_OFFER_TIME", default_value = "10m", value_parser = parse_duration)]
    pub waiting_list_offer_time: Duration,

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

/// Where the event stream goes (`--event-sink`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventSinkKind {
    /// A Redis stream (`ticketing-redis`).
    Redis,
    /// NATS JetStream (`ticketing-brokers`, feature `nats`).
    Nats,
    /// A RabbitMQ stream (`ticketing-brokers`, feature `rabbitmq`).
    Rabbitmq,
    /// A Kafka topic (`ticketing-brokers`, feature `kafka`; this crate's feature `kafka`, off by
    /// default).
    Kafka,
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
    /// Parses `argv` as flags only, ignoring every `TICKETING_*` environment variable: for a
    /// program or a test that configures the server itself. The test suites find their services
    /// through the same names (`TICKETING_REDIS_URL`, …), so a server a test starts with
    /// [`Parser::parse_from`] while they are exported would pick up a Redis seat lock or a
    /// broker it was not given.
    pub fn try_from_flags<I, T>(argv: I) -> std::result::Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command()
            .mut_args(|arg| arg.env(None::<&'static str>))
            .try_get_matches_from(argv)?;
        Self::from_arg_matches(&matches)
    }

    /// [`Args::try_from_flags`] for flags known to be good: panics with clap's message
    /// otherwise.
    pub fn from_flags<I, T>(argv: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_from_flags(argv).unwrap_or_else(|e| panic!("bad flags: {e}"))
    }

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

    /// The waiting list's settings these flags set: the offer time.
    pub fn waiting_list_config(&self) -> WaitingListConfig {
        WaitingListConfig {
            offer_time: self.waiting_list_offer_time,
            ..WaitingListConfig::default()
        }
    }

    /// The core services' settings these flags set: the seat-map max age, the venue caps, the
    /// order-id secret and the hold-extension policy.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            hold_extension: HoldExtension {
                step: self.hold_extension_step,
                max_extensions: self.hold_extensions,
                max_total: self.hold_extension_max_total,
            },
            seat_map_max_age: self.seat_map_max_age,
            venue_limits: VenueLimits {
                max_seats: self.max_venue_seats,
                max_rows_per_zone: self.max_rows_per_zone,
                max_seats_per_row: self.max_seats_per_row,
            },
            order_id_secret: self.order_id_secret(),
            ..ServiceConfig::default()
        }
    }

    /// Whether demo mode is on.
    pub fn demo_mode(&self) -> bool {
        self.demo.unwrap_or(self.database_url.is_none())
    }

    /// Whether the demo's simulated payments are served: in demo mode on the in-memory backend
    /// only, where nothing real can be paid for.
    pub fn demo_payments(&self) -> bool {
        self.demo_mode() && self.database_url.is_none() && self.redis_url.is_none()
    }

    /// The pace of seat-map reads these flags set (`None`: none).
    pub fn seat_map_reads(&self) -> Option<NonZeroU32> {
        NonZeroU32::new(self.seat_map_reads_per_second)
    }

    /// The bounds of the live seat map these flags set. A new stream replays the changes of the
    /// last `--seat-map-max-age` plus four seconds (at least five), so a seat map reused for up
    /// to that age, read after subscribing, misses no change.
    pub fn live_seat_map(&self) -> LiveSeatMapConfig {
        let defaults = LiveSeatMapConfig::default();
        LiveSeatMapConfig {
            max_streams: self.live_seat_map_streams as usize,
            poll: self.live_seat_map_poll,
            feed: SeatChangeFeedConfig {
                fresh_replay: defaults
                    .feed
                    .fresh_replay
                    .max(self.seat_map_max_age.saturating_add(Duration::from_secs(4))),
                ..defaults.feed
            },
            ..defaults
        }
    }

    /// The per-customer purchase rate limit these flags set.
    pub fn purchase_rate(&self) -> PurchaseRate {
        PurchaseRate {
            per_second: NonZeroU32::new(self.purchase_rate).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(self.purchase_burst).unwrap_or(NonZeroU32::MIN),
        }
    }

    /// The key that verifies customer tokens, from `--jwt-hs256-secret` or
    /// `--jwt-public-key-file` + `--jwt-algorithm`; `None` when neither is given. A combination
    /// that cannot work is [`Error::Config`].
    pub fn jwt_key(&self) -> Result<Option<JwtKey>> {
        match (
            &self.jwt_hs256_secret,
            &self.jwt_public_key_file,
            self.jwt_algorithm,
        ) {
            (Some(_), Some(_), _) => Err(Error::config(
                "jwt-hs256-secret",
                "give either --jwt-hs256-secret or --jwt-public-key-file, not both",
            )),
            (Some(_), None, Some(_)) => Err(Error::config(
                "jwt-algorithm",
                "--jwt-algorithm goes with --jwt-public-key-file; --jwt-hs256-secret is HS256",
            )),
            (Some(secret), None, None) => Ok(Some(JwtKey::Hs256(secret.as_bytes().to_vec()))),
            (None, Some(_), None) => Err(Error::config(
                "jwt-algorithm",
                "--jwt-public-key-file needs --jwt-algorithm EdDSA or RS256",
            )),
            (None, Some(path), Some(algorithm)) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::config(
                        "jwt-public-key-file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Ok(Some(JwtKey::PublicKey { algorithm, pem }))
            }
            (None, None, Some(_)) => Err(Error::config(
                "jwt-algorithm",
                "--jwt-algorithm goes with --jwt-public-key-file",
            )),
            (None, None, None) => Ok(None),
        }
    }

    /// The verifier of customer tokens. Without a key, demo mode gets a random HS256 secret
    /// (its tokens come from `/demo/token`) and anything else is [`Error::Config`]; demo mode
    /// with a public key is too, since the demo must mint the tokens it verifies.
    pub fn customer_auth(&self) -> Result<CustomerAuth> {
        let rules = TokenRules {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        };
        let key = match self.jwt_key()? {
            Some(JwtKey::PublicKey { .. }) if self.demo_mode() => {
                return Err(Error::config(
                    "demo",
                    "demo mode mints customer tokens, which a public key cannot: give \
                     --jwt-hs256-secret (or no key, for a random one), or --demo false",
                ));
            }
            Some(key) => key,
            None if self.demo_mode() => {
                let random = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
                JwtKey::Hs256(random.into_bytes())
            }
            None => {
                return Err(Error::config(
                    "jwt-hs256-secret",
                    "customer routes need a token key: give --jwt-hs256-secret, or \
                     --jwt-public-key-file with --jwt-algorithm",
                ));
            }
        };
        CustomerAuth::new(&key, &rules)
    }

    /// The secret of idempotent order ids: `--order-id-secret`, or a random one.
    pub fn order_id_secret(&self) -> OrderIdSecret {
        match &self.order_id_secret {
            Some(secret) if !secret.is_empty() => OrderIdSecret::new(secret.as_bytes()),
            _ => {
                if self.database_url.is_some() {
                    tracing::warn!(
                        "no --order-id-secret given: using a random one, so an idempotent retry \
                         that reaches another server gets another order id"
                    );
                }
                OrderIdSecret::new(Uuid::new_v4().as_bytes())
            }
        }
    }

    /// The secret of admission tokens: `--admission-secret`, or a random one.
    pub fn admission_secret(&self) -> Result<AdmissionSecret> {
        match &self.admission_secret {
            Some(secret) if !secret.is_empty() => AdmissionSecret::new(secret.as_bytes()),
            _ => {
                if self.database_url.is_some() || self.redis_url.is_some() {
                    tracing::warn!(
                        "no --admission-secret given: using a random one, so another server \
                         refuses the admission tokens this one signs"
                    );
                }
                Ok(AdmissionSecret::random())
            }
        }
    }

    /// Which backends these flags select, in words, for the start-up line.
    pub fn describe_backends(&self) -> String {
        let store = match self.database() {
            Some(Database::MySql) => "MySQL",
            Some(Database::Postgres) => "PostgreSQL",
            None => "in-memory",
        };
        let lock = match (&self.redis_url, &self.database_url) {
            (Some(_), _) => "Redis",
            (None, Some(_)) => "SQL",
            (None, None) => "in-memory",
        };
        let batching = if self.write_batching() {
            ", write batching"
        } else {
            ""
        };
        let clock = if self.database_clock() {
            ", database clock"
        } else {
            ""
        };
        format!("{store} tickets and catalog, {lock} seat lock{clock}{batching}")
    }

    /// Which database `--database-url` names, by its scheme (`postgres://` or `postgresql://`
    /// is PostgreSQL, anything else MySQL/MariaDB, whose driver then judges the URL).
    pub fn database(&self) -> Option<Database> {
        let url = self.database_url.as_deref()?;
        Some(
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Database::Postgres
            } else {
                Database::MySql
            },
        )
    }

    /// Whether concurrent purchases share transactions: on MySQL unless `--no-write-batching`.
    /// The PostgreSQL repository writes each purchase in its own transaction.
    pub fn write_batching(&self) -> bool {
        self.database() == Some(Database::MySql) && !self.no_write_batching
    }

    /// The event sink: `--event-sink`, or Redis with `--redis-url`, or none. A sink without its
    /// broker's URL is [`Error::Config`].
    pub fn event_sink(&self) -> Result<Option<EventSinkKind>> {
        let kind = self
            .event_sink
            .or(self.redis_url.as_ref().map(|_| EventSinkKind::Redis));
        let (missing, flag) = match kind {
            Some(EventSinkKind::Redis) => (self.redis_url.is_none(), "redis-url"),
            Some(EventSinkKind::Nats) => (self.nats_url.is_none(), "nats-url"),
            Some(EventSinkKind::Rabbitmq) => (self.rabbitmq_url.is_none(), "rabbitmq-url"),
            Some(EventSinkKind::Kafka) => (self.kafka_brokers.is_none(), "kafka-brokers"),
            None => (false, ""),
        };
        if missing {
            return Err(Error::config(
                "event-sink",
                format!("this event sink needs --{flag}"),
            ));
        }
        Ok(kind)
    }

    /// Whether the services read the database's clock: with `--database-url`, unless
    /// `--no-database-clock`.
    pub fn database_clock(&self) -> bool {
        self.database_url.is_some() && !self.no_database_clock
    }

    /// Connects the selected backends: the MySQL repository (with write batching unless
    /// `--no-write-batching`) or the PostgreSQL one, and the catalog (migrated) with
    /// `--database-url`, the Redis seat lock with `--redis-url`, the SQL seat lock with a
    /// database but no Redis, the waiting room likewise (Redis, else the database's),
    /// in-memory adapters for the rest; the database's clock with a
    /// database (unless `--no-database-clock`), the system clock without.
    pub async fn connect_backends(&self) -> Result<Backends> {
        Ok(self.connect_backends_with_outbox().await?.0)
    }

    /// The retention of history, from `--retention`.
    pub fn retention_config(&self) -> RetentionConfig {
        RetentionConfig {
            retention: self.retention,
            ..RetentionConfig::default()
        }
    }

    /// [`connect_backends`](Self::connect_backends), plus the ticket repository as the outbox
    /// relay's store.
    pub async fn connect_backends_with_outbox(&self) -> Result<(Backends, Arc<dyn OutboxStore>)> {
        let mut backends = Backends::in_memory().to_builder();
        let memory = Arc::new(InMemoryTicketRepository::new());
        backends = backends
            .tickets(memory.clone())
            .waiting_list(Arc::new(InMemoryWaitingList::new(memory.clone())));
        let mut outbox: Arc<dyn OutboxStore> = memory;
        match (self.database(), &self.database_url) {
            (Some(Database::MySql), Some(url)) => {
                let pool = ticketing_sqlx::connect(url, self.database_connections).await?;
                ticketing_sqlx::migrate(&pool).await?;
                let repository = Arc::new(if self.write_batching() {
                    MySqlTicketRepository::with_batching(pool.clone(), BatchConfig::default())
                } else {
                    MySqlTicketRepository::new(pool.clone())
                });
                outbox = repository.clone();
                backends = backends
                    .tickets(repository)
                    .waiting_list(Arc::new(MySqlWaitingList::new(pool.clone())))
                    .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
                    .seat_lock(Arc::new(MySqlSeatLock::new(pool.clone())))
                    .waiting_room(Arc::new(MySqlWaitingRoom::new(pool.clone())));
                if self.database_clock() {
                    backends = backends
                        .clock(DatabaseClock::start(pool, DatabaseClockConfig::default()).await?);
                }
            }
            (Some(Database::Postgres), Some(url)) => {
                let pool =
                    ticketing_sqlx::postgres::connect(url, self.database_connections).await?;
                ticketing_sqlx::postgres::migrate(&pool).await?;
                let repository = Arc::new(PgTicketRepository::new(pool.clone()));
                outbox = repository.clone();
                backends = backends
                    .tickets(repository)
                    .waiting_list(Arc::new(PgWaitingList::new(pool.clone())))
                    .catalog(Arc::new(PgCatalog::new(pool.clone())))
                    .seat_lock(Arc::new(PgSeatLock::new(pool.clone())))
                    .waiting_room(Arc::new(PgWaitingRoom::new(pool.clone())));
                if self.database_clock() {
                    backends = backends
                        .clock(DatabaseClock::start(pool, DatabaseClockConfig::default()).await?);
                }
            }
            _ => {}
        }
        if let Some(url) = &self.redis_url {
            let config = RedisSeatLockConfig {
                key_prefix: self.redis_key_prefix.clone(),
                ..Default::default()
            };
            backends = backends
                .waiting_room(Arc::new(
                    RedisWaitingRoom::connect(url, config.key_prefix.clone()).await?,
                ))
                .seat_lock(Arc::new(RedisSeatLock::connect(url, config).await?));
        }
        let backends = backends.build()?;
        Ok((backends, outbox))
    }
}

/// The database `--database-url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// MySQL or MariaDB (`mysql://…`).
    MySql,
    /// PostgreSQL (`postgres://…` or `postgresql://…`).
    Postgres,
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
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 5s, 1m, 2h or 7d"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(60 * 60)),
        "d" => Duration::from_secs(n.saturating_mul(24 * 60 * 60)),
        _ => return Err(format!("unknown unit {unit:?}: use ms, s, m, h or d")),
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
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn a_postgres_url_selects_the_postgres_adapters() {
        for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
            let args = Args::from_flags(["ticketing-server", "--database-url", url]);
            assert_eq!(args.database(), Some(Database::Postgres));
            assert_eq!(
                args.describe_backends(),
                "PostgreSQL tickets and catalog, SQL seat lock, database clock"
            );
        }
        let args = Args::from_flags(["ticketing-server", "--database-url", "mysql://u@h/db"]);
        assert_eq!(args.database(), Some(Database::MySql));
        assert_eq!(Args::from_flags(["ticketing-server"]).database(), None);
    }

    #[test]
    fn write_batching_is_on_by_default_and_can_be_turned_off() {
        let args = Args::from_flags(["ticketing-server", "--database-url", "mysql://x/y"]);
        assert!(args.describe_backends().ends_with("write batching"));
        let args = Args::from_flags([
            "ticketing-server",
            "--database-url",
            "mysql://x/y",
            "--no-write-batching",
        ]);
        assert!(!args.describe_backends().contains("batching"));
    }

    #[test]
    fn the_database_clock_is_on_with_a_database_and_can_be_turned_off() {
        assert!(!Args::from_flags(["ticketing-server"]).database_clock());
        let args = Args::from_flags(["ticketing-server", "--database-url", "mysql://x/y"]);
        assert!(args.database_clock());
        assert!(args.describe_backends().contains("database clock"));
        let args = Args::from_flags([
            "ticketing-server",
            "--database-url",
            "mysql://x/y",
            "--no-database-clock",
        ]);
        assert!(!args.database_clock());
        assert!(!args.describe_backends().contains("clock"));
    }

    #[test]
    fn the_event_sink_is_redis_with_redis_and_a_broker_needs_its_url() {
        let sink = |args: &[&str]| {
            let mut all = vec!["ticketing-server"];
            all.extend_from_slice(args);
            Args::from_flags(all).event_sink()
        };
        assert_eq!(sink(&[]).unwrap(), None);
        assert_eq!(
            sink(&["--redis-url", "redis://x"]).unwrap(),
            Some(EventSinkKind::Redis)
        );
        assert_eq!(
            sink(&[
                "--redis-url",
                "redis://x",
                "--event-sink",
                "nats",
                "--nats-url",
                "nats://x"
            ])
            .unwrap(),
            Some(EventSinkKind::Nats)
        );
        for args in [
            &["--event-sink", "nats"][..],
            &["--event-sink", "rabbitmq", "--nats-url", "nats://x"],
            &["--event-sink", "redis"],
            &["--event-sink", "kafka", "--rabbitmq-url", "amqp://x"],
        ] {
            assert!(matches!(sink(args), Err(Error::Config { .. })), "{args:?}");
        }
        assert_eq!(
            sink(&["--event-sink", "kafka", "--kafka-brokers", "127.0.0.1:9092"]).unwrap(),
            Some(EventSinkKind::Kafka)
        );
        assert!(Args::try_from_flags(["ticketing-server", "--event-sink", "pulsar"]).is_err());
    }

    #[test]
    fn the_event_stream_tasks_can_be_turned_off() {
        let args = Args::from_flags(["ticketing-server"]);
        assert!(!args.no_outbox_relay && !args.no_projection);
        let args = Args::from_flags(["ticketing-server", "--no-outbox-relay", "--no-projection"]);
        assert!(args.no_outbox_relay && args.no_projection);
    }

    #[test]
    fn http_limit_defaults_are_the_library_defaults() {
        let args = Args::from_flags(["ticketing-server"]);
        assert_eq!(args.http_limits(), HttpLimits::default());
        let args = Args::from_flags([
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
        assert!(Args::try_from_flags(["ticketing-server", "--max-in-flight", "0"]).is_err());
    }

    #[test]
    fn live_seat_map_flags_bound_the_streams_and_cover_the_map_s_reuse() {
        let live = Args::from_flags(["ticketing-server"]).live_seat_map();
        assert_eq!(live.max_streams, 1_024);
        assert_eq!(live.poll, Duration::from_millis(200));
        // 1 s of map reuse + 4 s is under the 5 s floor.
        assert_eq!(live.feed.fresh_replay, Duration::from_secs(5));
        let live = Args::from_flags([
            "ticketing-server",
            "--live-seat-map-streams",
            "3",
            "--live-seat-map-poll",
            "50ms",
            "--seat-map-max-age",
            "10s",
        ])
        .live_seat_map();
        assert_eq!(live.max_streams, 3);
        assert_eq!(live.poll, Duration::from_millis(50));
        assert_eq!(live.feed.fresh_replay, Duration::from_secs(14));
        assert!(
            Args::try_from_flags(["ticketing-server", "--live-seat-map-streams", "0"]).is_err()
        );
    }

    #[test]
    fn seat_map_and_venue_settings_reach_the_service_config() {
        let config = Args::from_flags(["ticketing-server"]).service_config();
        assert_eq!(config.seat_map_max_age, Duration::from_secs(1));
        assert_eq!(config.venue_limits, VenueLimits::default());
        let config = Args::from_flags([
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
        assert!(Args::try_from_flags(["ticketing-server", "--max-seats-per-row", "0"]).is_err());
        let paced = Args::from_flags(["ticketing-server"]).seat_map_reads();
        assert_eq!(paced, NonZeroU32::new(1_000));
        let unpaced = Args::from_flags(["ticketing-server", "--seat-map-reads-per-second", "0"]);
        assert_eq!(unpaced.seat_map_reads(), None);
    }

    #[test]
    fn demo_defaults_to_embedded_mode() {
        let args = Args::from_flags(["ticketing-server"]);
        assert!(args.demo_mode());
        let args = Args::from_flags(["ticketing-server", "--database-url", "mysql://x/y"]);
        assert!(!args.demo_mode());
        let args = Args::from_flags([
            "ticketing-server",
            "--database-url",
            "mysql://x/y",
            "--demo",
            "true",
        ]);
        assert!(args.demo_mode());
    }
}
