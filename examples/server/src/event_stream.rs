//! The event stream in the background, until shutdown: the outbox relay publishes the outbox to
//! the seat lock (repairing lock updates lost between a commit and the service's own lock call)
//! in every mode, and to the event sink of `--event-sink` (a Redis stream, NATS JetStream, a
//! RabbitMQ stream or a Kafka topic), whose sales projection keeps its read model. `--no-outbox-relay` and
//! `--no-projection` turn either off (e.g. to run them elsewhere). With the relay and the Redis
//! stream, the stream is trimmed every `--prune-interval` to what every consumer group
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{Clock, EventSink, OutboxStore, SalesReadModel};
use ticketing_core::service::{
    Backends, FanOutSink, OutboxRelay, RelayConfig, SeatLockSync, ServiceConfig, TicketService,
    WaitingListConfig, WaitingListOffers,
};
use ticketing_core::{Error, Result};
use ticketing_redis::{
    ProjectionConfig, RedisEventSink, RedisEventSinkConfig, RedisProjection, RedisSalesReadModel,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Args, EventSinkKind};

/// The sinks every relay of the server runs after the event sink, in order: [`SeatLockSync`],
/// which makes the seat lock show each published order as stored, then the waiting list's
/// [`WaitingListOffers`] when the backends have a waiting list, which offers the seats a
/// cancellation, expiry or refund freed, so they must be free in the lock first.
pub fn repair_sinks(
    backends: &Backends,
    service: &ServiceConfig,
    waiting_list: WaitingListConfig,
) -> Result<Vec<Arc<dyn EventSink>>> {
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![Arc::new(SeatLockSync::new(
        backends.clone(),
        service.clone(),
    ))];
    if backends.waiting_list().is_some() {
        let tickets = TicketService::new(backends.clone(), service.clone());
        sinks.push(Arc::new(WaitingListOffers::new(tickets, waiting_list)?));
    }
    Ok(sinks)
}

/// The running background tasks; [`EventStream::stop`] ends them.
#[derive(Debug)]
pub struct EventStream {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl EventStream {
    /// Starts what `args` ask for: the relay (unless `--no-outbox-relay`) from `outbox` to the
    /// event sink and `repairs` (the seat-lock repair, then the waiting-list offers, in that
    /// order: [`repair_sinks`]), and the sink's projection (unless `--no-projection`). Redis keys
    /// are under `--redis-key-prefix`.
    pub async fn start(
        args: &Args,
        outbox: Arc<dyn OutboxStore>,
        repairs: Vec<Arc<dyn EventSink>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let kind = args.event_sink()?;
        if !args.no_outbox_relay {
            let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
            match (kind, &args.redis_url) {
                (Some(EventSinkKind::Redis), Some(url)) => {
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
                (Some(broker), _) => sinks.push(brokers::sink(args, broker).await?),
                (None, _) => {}
            }
            sinks.extend(repairs);
            let sink = Arc::new(FanOutSink::new(sinks));
            let relay = OutboxRelay::new(outbox, sink, clock, RelayConfig::default())?;
            tracing::info!(relay = relay.id(), "outbox relay started");
            let stopped = until_stopped(stopped.clone());
            tasks.push((
                "outbox relay",
                tokio::spawn(async move { relay.run(stopped).await }),
            ));
        }
        match (kind, args.no_projection) {
            (None, _) | (_, true) => {}
            (Some(EventSinkKind::Redis), false) => {
                let url = args.redis_url.as_deref().unwrap_or_default();
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
            (Some(broker), false) => {
                let model = read_model(args).await?;
                let run = brokers::projection(args, broker, model).await?;
                let stopped = until_stopped(stopped.clone());
                tasks.push(("projection", tokio::spawn(run(Box::pin(stopped)))));
            }
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

/// Where a broker's projection keeps the read model: the Redis hashes with `--redis-url` (the
/// Redis stream's projection keeps the same), else memory.
async fn read_model(args: &Args) -> Result<Arc<dyn SalesReadModel>> {
    Ok(match &args.redis_url {
        Some(url) => Arc::new(RedisSalesReadModel::connect(url, &args.redis_key_prefix).await?),
        None => Arc::new(InMemorySalesReadModel::new()),
    })
}

/// A projection's run loop, given its shutdown future.
type ProjectionRun = Box<
    dyn FnOnce(
            std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send,
>;

/// The brokers of `ticketing-brokers`, each compiled in with its feature of this crate.
mod brokers {
    use super::*;

    /// The sink of `broker`, connected.
    pub(super) async fn sink(args: &Args, broker: EventSinkKind) -> Result<Arc<dyn EventSink>> {
        let _ = args; // unused when the server is built without brokers
        match broker {
            #[cfg(feature = "nats")]
            EventSinkKind::Nats => {
                use ticketing_brokers::nats::NatsEventSink;
                let url = args.nats_url.as_deref().unwrap_or_default();
                Ok(Arc::new(
                    NatsEventSink::connect(url, nats_stream(args)).await?,
                ))
            }
            #[cfg(feature = "rabbitmq")]
            EventSinkKind::Rabbitmq => {
                use ticketing_brokers::rabbitmq::RabbitEventSink;
                let url = args.rabbitmq_url.as_deref().unwrap_or_default();
                Ok(Arc::new(
                    RabbitEventSink::connect(url, rabbitmq_stream(args)).await?,
                ))
            }
            #[cfg(feature = "kafka")]
            EventSinkKind::Kafka => {
                use ticketing_brokers::kafka::KafkaEventSink;
                Ok(Arc::new(KafkaEventSink::connect(kafka_topic(args)).await?))
            }
            other => Err(not_built(other)),
        }
    }

    /// The projection of `broker` into `model`, connected, as a run loop.
    pub(super) async fn projection(
        args: &Args,
        broker: EventSinkKind,
        model: Arc<dyn SalesReadModel>,
    ) -> Result<ProjectionRun> {
        let _ = (args, &model); // unused when the server is built without brokers
        match broker {
            #[cfg(feature = "nats")]
            EventSinkKind::Nats => {
                use ticketing_brokers::nats::{NatsProjection, NatsProjectionConfig};
                let url = args.nats_url.as_deref().unwrap_or_default();
                let config = NatsProjectionConfig {
                    stream: nats_stream(args),
                    ..NatsProjectionConfig::default()
                };
                let projection = NatsProjection::connect(url, model, config).await?;
                projection.ensure_consumer().await?;
                if projection.model().last_applied().await? == 0 {
                    // A new (or in-memory) model reads the stream from its start, whatever the
                    // durable consumer acknowledged for a model before it.
                    projection.replay().await?;
                }
                tracing::info!(durable = %projection.config().durable, "sales projection started (NATS)");
                Ok(Box::new(move |stopped| {
                    Box::pin(async move { projection.run(stopped).await })
                }))
            }
            #[cfg(feature = "rabbitmq")]
            EventSinkKind::Rabbitmq => {
                use ticketing_brokers::rabbitmq::{RabbitProjection, RabbitProjectionConfig};
                let url = args.rabbitmq_url.as_deref().unwrap_or_default();
                let config = RabbitProjectionConfig {
                    stream: rabbitmq_stream(args),
                    ..RabbitProjectionConfig::default()
                };
                let projection = RabbitProjection::new(url, model, config)?;
                tracing::info!(stream = %args.rabbitmq_stream, "sales projection started (RabbitMQ)");
                Ok(Box::new(move |stopped| {
                    Box::pin(async move { projection.run(stopped).await })
                }))
            }
            #[cfg(feature = "kafka")]
            EventSinkKind::Kafka => {
                use ticketing_brokers::kafka::{KafkaProjection, KafkaProjectionConfig};
                let config = KafkaProjectionConfig {
                    topic: kafka_topic(args),
                    ..KafkaProjectionConfig::default()
                };
                let projection = KafkaProjection::new(model, config)?;
                tracing::info!(topic = %args.kafka_topic, "sales projection started (Kafka)");
                Ok(Box::new(move |stopped| {
                    Box::pin(async move { projection.run(stopped).await })
                }))
            }
            other => Err(not_built(other)),
        }
    }

    #[cfg(feature = "nats")]
    fn nats_stream(args: &Args) -> ticketing_brokers::nats::NatsStreamConfig {
        ticketing_brokers::nats::NatsStreamConfig {
            stream: args.nats_stream.clone(),
            subject: args.nats_subject.clone(),
        }
    }

    #[cfg(feature = "rabbitmq")]
    fn rabbitmq_stream(args: &Args) -> ticketing_brokers::rabbitmq::RabbitStreamConfig {
        ticketing_brokers::rabbitmq::RabbitStreamConfig {
            stream: args.rabbitmq_stream.clone(),
            max_length_bytes: None,
        }
    }

    #[cfg(feature = "kafka")]
    fn kafka_topic(args: &Args) -> ticketing_brokers::kafka::KafkaTopicConfig {
        ticketing_brokers::kafka::KafkaTopicConfig::new(
            args.kafka_brokers.as_deref().unwrap_or_default(),
            &args.kafka_topic,
        )
    }

    fn not_built(kind: EventSinkKind) -> Error {
        Error::config(
            "event-sink",
            format!("this server was built without the {kind:?} event sink (cargo feature)"),
        )
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
