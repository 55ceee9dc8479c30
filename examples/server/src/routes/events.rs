//! Read routes of events and venues: details, sold count, revenue, seat map.

use axum::Json;
use axum::body::HttpBody;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ticketing_core::domain::{EventId, VenueId, ZoneCode};

use crate::app::AppState;
use crate::contract::parse;
use crate::dto::{EventDto, RevenueDto, SeatMapDto, SoldCountDto, VenueDto};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, parse_id};

/// An event: venue, sale window, prices, payment window, limit.
#[utoipa::path(
    get, path = "/api/events/{eventId}", tag = "events", operation_id = "getEvent",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    responses(
        (status = 200, description = "The event", body = EventDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn event(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<EventDto>> {
    let id: EventId = parse_id(&id)?;
    let event = state.catalog().event(id).await?;
    let tiers = state.queries().price_tiers(&event).await?;
    Ok(Json(
        EventDto::from(&event).with_tiers(&event, &tiers, true),
    ))
}

/// A venue with its zones and rows.
#[utoipa::path(
    get, path = "/api/venues/{venueId}", tag = "events", operation_id = "getVenue",
    params(("venueId" = uuid::Uuid, Path, description = "Venue id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    responses(
        (status = 200, description = "The venue", body = VenueDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn venue(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<VenueDto>> {
    let id: VenueId = parse_id(&id)?;
    let venue = state.catalog().venue(id).await?;
    Ok(Json(VenueDto::from(&venue)))
}

/// How many tickets of the event are PAID.
#[utoipa::path(
    get, path = "/api/events/{eventId}/sold-count", tag = "events", operation_id = "getSoldCount",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    responses(
        (status = 200, description = "PAID tickets of the event", body = SoldCountDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn sold_count(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SoldCountDto>> {
    let id: EventId = parse_id(&id)?;
    let sold_count = state.queries().sold_count(id).await?;
    Ok(Json(SoldCountDto {
        event_id: id.as_uuid(),
        sold_count,
    }))
}

/// The sum of PAID ticket prices of an event at a venue.
#[utoipa::path(
    get, path = "/api/venues/{venueId}/events/{eventId}/revenue", tag = "events", operation_id = "getRevenue",
    params(
        ("venueId" = uuid::Uuid, Path, description = "Venue id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"),
        ("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"),
    ),
    responses(
        (status = 200, description = "Revenue of PAID tickets", body = RevenueDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event at this venue", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn revenue(
    State(state): State<AppState>,
    ApiPath((venue, event)): ApiPath<(String, String)>,
) -> ApiResult<Json<RevenueDto>> {
    let venue: VenueId = parse_id(&venue)?;
    let event: EventId = parse_id(&event)?;
    let revenue = state.queries().revenue(venue, event).await?;
    Ok(Json(RevenueDto {
        venue_id: venue.as_uuid(),
        event_id: event.as_uuid(),
        revenue: revenue.into(),
    }))
}

/// Free and sold seats as ranges per row of every priced zone, and the places left per
/// general-admission zone. The server may answer from a map read up to a second ago
/// (`--seat-map-max-age`): a crowd of readers costs the seat lock one read per period.
#[utoipa::path(
    get, path = "/api/events/{eventId}/seats", tag = "events", operation_id = "getSeatMap",
    params(
        ("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a map the client holds: 304 if it is still the map"),
    ),
    responses(
        (status = 200, description = "The seat map", body = SeatMapDto, headers(("ETag" = String, description = "The map's entity tag, for If-None-Match"), ("Cache-Control" = String, description = "How long the map may be reused: max-age in seconds, or no-cache"))),
        (status = 304, description = "Not modified: the request's If-None-Match names the map's ETag (no body)", headers(("ETag" = String, description = "The map's entity tag, for If-None-Match"), ("Cache-Control" = String, description = "How long the map may be reused: max-age in seconds, or no-cache"))),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn seat_map(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: EventId = parse_id(&id)?;
    let map = state.queries().seat_map(id).await?;
    let answer = state.seat_map_bodies().answer((id, None), &map, &headers);
    Ok(paced(&state, answer).await)
}

/// The seat map of one priced zone, reading only that zone: `seated` holds the zone's rows, or
/// `generalAdmission` its places.
#[utoipa::path(
    get, path = "/api/events/{eventId}/zones/{zone}/seats", tag = "events", operation_id = "getZoneSeatMap",
    params(
        ("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"),
        ("zone" = String, Path, description = "Zone code", example = "STALLS", min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_.@+-]+$"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a map the client holds: 304 if it is still the map"),
    ),
    responses(
        (status = 200, description = "The zone's seat map", body = SeatMapDto, headers(("ETag" = String, description = "The map's entity tag, for If-None-Match"), ("Cache-Control" = String, description = "How long the map may be reused: max-age in seconds, or no-cache"))),
        (status = 304, description = "Not modified: the request's If-None-Match names the map's ETag (no body)", headers(("ETag" = String, description = "The map's entity tag, for If-None-Match"), ("Cache-Control" = String, description = "How long the map may be reused: max-age in seconds, or no-cache"))),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID, or the zone code is malformed", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event, or the event does not sell this zone", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn zone_seat_map(
    State(state): State<AppState>,
    ApiPath((id, zone)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: EventId = parse_id(&id)?;
    let zone: ZoneCode = parse(&zone)?;
    let map = state.queries().zone_seat_map(id, &zone).await?;
    let answer = state
        .seat_map_bodies()
        .answer((id, Some(zone)), &map, &headers);
    Ok(paced(&state, answer).await)
}

/// `answer` once the server's pace of seat-map reads allows its size.
async fn paced(state: &AppState, answer: Response) -> Response {
    let bytes = answer.body().size_hint().exact().unwrap_or(0);
    state.seat_map_pacer().wait_turn(bytes).await;
    answer
}
