#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod best_available;
mod config;
mod connection;
mod error;
mod eviction;
mod health;
mod keys;
mod lock;
mod rebuild;
mod scripts;
mod snapshot;
mod stream;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod values;
mod waiting_room;

pub use config::RedisSeatLockConfig;
pub use connection::{RedisConnection, RedisConnectionConfig};
pub use eviction::check_eviction_policy;
pub use lock::RedisSeatLock;
/// The `redis` crate this adapter is built on (for `redis::Client` and connection settings).
pub use redis;
/// The reconnecting Redis connection the lock runs on, re-exported so callers need no direct
/// `redis` dependency.
pub use redis::aio::ConnectionManager;
pub use snapshot::SNAPSHOT_CHUNK;
pub use stream::{
    EventTotals, ProjectionConfig, ProjectionRound, RedisEventSink, RedisEventSinkConfig,
    RedisProjection, RedisSalesReadModel, ZoneTotals,
};
pub use waiting_room::RedisWaitingRoom;
