//! The live seat map's stream: an event's seat and place changes as Server-Sent Events.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ticketing_core::domain::EventId;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, header_text, parse_id};
use crate::limits::RETRY_AFTER_SECONDS;

/// The header a reconnecting `EventSource` sends: the `id` of the last event it received.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The seat and place changes of an event as Server-Sent Events, in order, until the client
/// disconnects. Each `seats` event is one change (its `id` the position, its data a
/// SeatChangeDto: seats with their new state, general-admission places as counted after it);
/// a `reset` event (data SeatResetDto) says the changes after the client's position cannot all
/// be given, so the client reads the seat map again. Without `Last-Event-ID` the stream starts
/// with the changes of the last few seconds, so a client that subscribes, then reads the seat
/// map, then applies every change in order is exact even if the map was reused
/// (`--seat-map-max-age`). An idle stream sends a keep-alive comment. The stream never ends by
/// itself: it is not for clients that wait for the end of the answer.
#[utoipa::path(
    get, path = "/api/events/{eventId}/seat-changes", tag = "events", operation_id = "getSeatChanges",
    params(
        ("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received (EventSource sends it when it reconnects): the changes after it are replayed, or a reset is sent when the server no longer holds them all. Empty: as absent."),
    ),
    responses(
        (status = 200, description = "An endless text/event-stream of `seats` events (data: SeatChangeDto) and `reset` events (data: SeatResetDto)", content_type = "text/event-stream", body = String),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID, or Last-Event-ID is not a position this stream gave", body = crate::error::ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = crate::error::ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = crate::error::ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = crate::error::ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, the server is at its in-flight limit, or at its cap on open seat-change streams (see Retry-After); retry", body = crate::error::ErrorBody),
    )
)]
pub async fn seat_changes(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: EventId = parse_id(&id)?;
    let after = last_event_id(&headers)?;
    state.catalog().event(id).await?;
    let live = state.live_seat_map();
    let Some(slot) = live.slot() else {
        let mut refused = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "too many seat-change streams open; retry shortly",
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        return Ok(refused);
    };
    Ok(live.stream(id, after, slot))
}

/// The position in `Last-Event-ID`: absent or empty is `None`, else a sequence number.
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match header_text(headers, LAST_EVENT_ID)?.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::invalid(format!(
                "Last-Event-ID must be the id of an event of this stream, not {text:?}"
            ))
        }),
    }
}
