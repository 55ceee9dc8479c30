//! The event stream in the background, until shutdown: the outbox relay publishes the outbox to
//! the seat lock (repairing lock updates lost between a commit and the service's own lock call)
//! in every mode, and with `--redis-url` also to the Redis stream, whose sales projection keeps
//! its read model. `--no-outbox-relay` and `--no-projection` turn either off (e.g. to run them
//! elsewhere). With the relay and Redis, the stream is trimmed every `--prune-interval` to what
//! every consumer group acknowledged.

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::Result;
use ticketing_core::ports::{Clock, EventSink, OutboxStore};
use ticketing_core::service::{FanOutSink, OutboxRelay, RelayConfig, SeatLockSync};
use ticketing_redis::{ProjectionConfig, RedisEventSink, RedisEventSinkConfig, RedisProjection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Args;

/// The running background tasks; [`EventStream::stop`] ends them.
#[derive(Debug)]
pub struct EventStream {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl EventStream {
    /// Starts what `args` ask for: the relay (unless `--no-outbox-relay`) from `outbox` to
    /// `lock_sync`, and with `--redis-url` also to the stream; with `--redis-url` the projection
    /// (unless `--no-projection`). Redis keys are under `--redis-key-prefix`.
    pub async fn start(
        args: &Args,
        outbox: Arc<dyn OutboxStore>,
        lock_sync: Arc<SeatLockSync>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if !args.no_outbox_relay {
            let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
            if let Some(url) = &args.redis_url {
                let config = RedisEventSinkConfig {
                    key_prefix: args.redis_key_prefix.clone(),
                    max_len: None,
                };
                let stream = Arc::new(RedisEventSink::connect(url, config).await?);
                let stopped = stopped.clone();
                let trimmed = stream.clone();
                let interval = args.prune_interval;
                tasks.push((
                    "stream trim",
                    tokio::spawn(async move { trim(&trimmed, interval, stopped).await }),
                ));
                sinks.push(stream);
            }
            sinks.push(lock_sync);
            let sink = Arc::new(FanOutSink::new(sinks));
            let relay = OutboxRelay::new(outbox, sink, clock, RelayConfig::default())?;
            tracing::info!(relay = relay.id(), "outbox relay started");
            let stopped = until_stopped(stopped.clone());
            tasks.push((
                "outbox relay",
                tokio::spawn(async move { relay.run(stopped).await }),
            ));
        }
        let Some(url) = &args.redis_url else {
            return Ok(Self { stop, tasks });
        };
        if !args.no_projection {
            let projection = RedisProjection::connect(
                url,
                ProjectionConfig {
                    key_prefix: args.redis_key_prefix.clone(),
                    ..ProjectionConfig::default()
                },
            )
            .await?;
            projection.ensure_group().await?;
            tracing::info!(consumer = %projection.config().consumer, "sales projection started");
            let stopped = until_stopped(stopped.clone());
            tasks.push((
                "projection",
                tokio::spawn(async move { projection.run(stopped).await }),
            ));
        }
        Ok(Self { stop, tasks })
    }

    /// Which tasks run, for the start-up line.
    pub fn running(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(name, _)| *name).collect()
    }

    /// Asks every task to stop after its current round and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "event stream task failed");
            }
        }
    }
}

/// Every `interval`, deletes the stream entries every consumer group acknowledged, until
/// stopped; a failure is logged and tried again next time.
async fn trim(stream: &RedisEventSink, interval: Duration, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        match stream.trim_acknowledged().await {
            Ok(0) => {}
            Ok(trimmed) => tracing::debug!(trimmed, "trimmed the acknowledged event stream"),
            Err(error) => tracing::warn!(%error, "trimming the event stream failed"),
        }
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
