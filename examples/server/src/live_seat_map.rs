//! The live seat map: every server follows the outbox into a
//! [`SeatChangeFeed`] and streams each event's seat and
//! place changes as Server-Sent Events (`GET /api/events/{eventId}/seat-changes`), resuming from
//! `Last-Event-ID`. The streams are bounded: at most [`LiveSeatMapConfig::max_streams`] at once
//! (more are `503`), a keep-alive comment every [`LiveSeatMapConfig::keep_alive`], no buffer per
//! client beyond the feed's per-event channel (a client that falls behind is reset, not
//! buffered), and all of them end when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;
use ticketing_core::domain::EventId;
use ticketing_core::service::{
    Backends, SeatAvailability, SeatChange, SeatChangeFeed, SeatChangeFeedConfig, SeatChangeItem,
    SeatChangeSubscription,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use utoipa::ToSchema;

use crate::dto::{GeneralAvailabilityDto, SeatDto};

/// The bounds of the live seat map. [`Default`] gives the flags' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSeatMapConfig {
    /// Most seat-change streams open at once over the whole server; more are refused with
    /// `503 UNAVAILABLE` and `Retry-After`.
    pub max_streams: usize,
    /// How often an idle stream sends a keep-alive comment (so proxies keep it open and a
    /// vanished client is noticed).
    pub keep_alive: Duration,
    /// How often the server reads the outbox for new changes.
    pub poll: Duration,
    /// The feed's bounds.
    pub feed: SeatChangeFeedConfig,
}

impl Default for LiveSeatMapConfig {
    fn default() -> Self {
        Self {
            max_streams: 1_024,
            keep_alive: Duration::from_secs(15),
            poll: Duration::from_millis(200),
            feed: SeatChangeFeedConfig::default(),
        }
    }
}

/// The feed, the stream slots and the shutdown signal of the streams. Cheap to clone.
#[derive(Clone)]
pub struct LiveSeatMap {
    feed: Arc<SeatChangeFeed>,
    slots: Arc<Semaphore>,
    closing: watch::Sender<bool>,
    config: LiveSeatMapConfig,
}

/// The SSE event name of a change.
pub const CHANGE_EVENT: &str = "seats";
/// The SSE event name of a reset: read the seat map again.
pub const RESET_EVENT: &str = "reset";

impl LiveSeatMap {
    /// A live seat map over `backends` (the seat lock's place counts, the catalog's zones, the
    /// repository's outbox).
    pub fn new(backends: Backends, config: LiveSeatMapConfig) -> Self {
        Self {
            feed: Arc::new(SeatChangeFeed::new(backends, config.feed)),
            slots: Arc::new(Semaphore::new(
                config.max_streams.min(Semaphore::MAX_PERMITS),
            )),
            closing: watch::channel(false).0,
            config,
        }
    }

    /// The feed the streams read.
    pub fn feed(&self) -> &Arc<SeatChangeFeed> {
        &self.feed
    }

    /// Follows the repository's outbox into the feed every [`LiveSeatMapConfig::poll`] until
    /// `shutdown` completes.
    pub async fn follow(&self, shutdown: impl Future<Output = ()> + Send) {
        self.feed.follow_outbox(self.config.poll, shutdown).await;
    }

    /// Ends every open stream (at shutdown: a stream never ends by itself, so the connection
    /// drain would otherwise wait out its whole grace).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// A slot for one more stream, or `None` at [`LiveSeatMapConfig::max_streams`] (or after
    /// [`close`](Self::close)).
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        if *self.closing.borrow() {
            return None;
        }
        self.slots.clone().try_acquire_owned().ok()
    }

    /// The SSE answer streaming the changes of `event` after `after`, holding `slot` until it
    /// ends.
    pub fn stream(
        &self,
        event: EventId,
        after: Option<u64>,
        slot: OwnedSemaphorePermit,
    ) -> Response {
        let subscription = self.feed.subscribe(event, after);
        let events = sse_events(subscription, slot, self.closing.subscribe());
        Sse::new(events)
            .keep_alive(KeepAlive::new().interval(self.config.keep_alive))
            .into_response()
    }
}

/// The SSE events of `subscription` until the server closes the streams (or the client goes).
fn sse_events(
    subscription: SeatChangeSubscription,
    slot: OwnedSemaphorePermit,
    closing: watch::Receiver<bool>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    futures::stream::unfold(
        (subscription, slot, closing),
        |(mut subscription, slot, mut closing)| async move {
            let item = tokio::select! {
                item = subscription.next() => item,
                _ = closing.wait_for(|closed| *closed) => return None,
            };
            Some((Ok(sse_event(&item)), (subscription, slot, closing)))
        },
    )
}

/// One item as an SSE event: `seats` with the change (its `id` the position to resume after),
/// or `reset` (its `id` the position the following changes come after; empty when none).
fn sse_event(item: &SeatChangeItem) -> SseEvent {
    match item {
        SeatChangeItem::Change(change) => SseEvent::default()
            .event(CHANGE_EVENT)
            .id(change.seq.to_string())
            .data(json(&SeatChangeDto::from(&**change))),
        SeatChangeItem::Reset { resume_after } => SseEvent::default()
            .event(RESET_EVENT)
            .id(resume_after.map(|p| p.to_string()).unwrap_or_default())
            .data(json(&SeatResetDto {
                resume_after: *resume_after,
            })),
    }
}

fn json(value: &impl Serialize) -> String {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// The state of a seat after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SeatStateDto {
    /// Nobody holds it.
    Free,
    /// An order holds it while its buyer pays.
    Held,
    /// Paid.
    Sold,
}

/// A seat with its state after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatChangeSeatDto {
    /// The seat.
    #[serde(flatten)]
    pub seat: SeatDto,
    /// Its state now.
    pub state: SeatStateDto,
}

/// The data of a `seats` event: what one outbox entry changed on the event's seat map. Seats and
/// places are absolute (the state now, the places taken now), so applying a change twice, or one
/// the map already shows, is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatChangeDto {
    /// The change's position (also the SSE `id`): the outbox sequence number, increasing.
    pub seq: u64,
    /// What happened: `TicketReserved`, `TicketPaid`, `TicketExpired`, `TicketCancelled` or
    /// `TicketRefunded` to an order, or `ChannelSeatsReleased` (seats a sales channel kept
    /// became public and free).
    pub kind: String,
    /// The order's seats with their new state (empty for general admission).
    pub seats: Vec<SeatChangeSeatDto>,
    /// The general-admission zones the order has places in, as counted after the change (absent
    /// from a change when a later change of the same batch carries the zone).
    pub places: Vec<GeneralAvailabilityDto>,
}

impl From<&SeatChange> for SeatChangeDto {
    fn from(change: &SeatChange) -> Self {
        Self {
            seq: change.seq,
            kind: change.kind.as_str().to_owned(),
            seats: change
                .seats
                .iter()
                .map(|view| SeatChangeSeatDto {
                    seat: SeatDto::from(&view.seat),
                    state: match view.state {
                        SeatAvailability::Free => SeatStateDto::Free,
                        SeatAvailability::Sold => SeatStateDto::Sold,
                        // Held, or a state added later: not for sale.
                        _ => SeatStateDto::Held,
                    },
                })
                .collect(),
            places: change
                .places
                .iter()
                .map(GeneralAvailabilityDto::from)
                .collect(),
        }
    }
}

/// The data of a `reset` event: the stream cannot give every change after the client's position
/// (it is older than what the server keeps, the client fell behind, or the server is new), so
/// the client reads the seat map again and applies the changes that follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatResetDto {
    /// The position the following changes come after (also the SSE `id`); `null` when the server
    /// knows none yet.
    pub resume_after: Option<u64>,
}
