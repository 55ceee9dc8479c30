//! An event's sales channels (admin): keep seats back for a channel (its key is answered once),
//! list the channels with their counts, release seats to the public. A purchase shows a
//! channel's key in its body (`channel`) to buy the channel's seats (docs/DESIGN.md, "Channel
//! reservations").

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use ticketing_core::domain::{Channel, ChannelAccess, ChannelCode, ChannelKey, EventId, SeatRef};
use utoipa::ToSchema;
use utoipa::openapi::{Array, ArrayBuilder, Ref};

use crate::app::AppState;
use crate::contract::{self, malformed, parse};
use crate::dto::SeatDto;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, parse_id};

/// Most seats one request keeps back or releases: a body of this many seats stays well within
/// the 64 KiB body limit. (The library allows a channel up to 10,000 seats.)
pub const MAX_CHANNEL_SEATS_PER_REQUEST: u32 = 1_000;

/// A buyer's channel: its code and the key the admin handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelAccessDto {
    /// The channel's code.
    #[schema(schema_with = contract::channel_code)]
    pub code: String,
    /// The channel's key.
    #[schema(schema_with = contract::channel_key)]
    pub key: String,
}

impl ChannelAccessDto {
    /// The core access (code and key checked).
    pub fn to_core(&self) -> ApiResult<ChannelAccess> {
        Ok(ChannelAccess {
            code: parse(&self.code)?,
            key: ChannelKey::new(self.key.as_str()).map_err(malformed)?,
        })
    }
}

/// The schema of a request's seats: 1 to [`MAX_CHANNEL_SEATS_PER_REQUEST`], each once.
fn seats_schema() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(SeatDto::name()))
        .min_items(Some(1))
        .max_items(Some(MAX_CHANNEL_SEATS_PER_REQUEST as usize))
        .unique_items(true)
        .description(Some("Seats of the event's venue, each at most once."))
        .build()
}

/// The seats of a request, checked: 1 to [`MAX_CHANNEL_SEATS_PER_REQUEST`], each once.
fn seats_of(seats: &[SeatDto]) -> ApiResult<Vec<SeatRef>> {
    SeatDto::distinct(seats, MAX_CHANNEL_SEATS_PER_REQUEST.into())
}

/// `POST /api/admin/events/{eventId}/channels`: a channel and the seats it keeps back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannelDto {
    /// The channel's code, unique in the event (e.g. `BOX-OFFICE`).
    #[schema(schema_with = contract::channel_code)]
    pub code: String,
    /// The seats to keep back, each at most once, none kept by another channel of the event.
    #[schema(schema_with = seats_schema)]
    pub seats: Vec<SeatDto>,
}

/// A channel just created, with its key: shown this once (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedChannelDto {
    /// The event.
    pub event_id: uuid::Uuid,
    /// The channel's code.
    pub code: String,
    /// The key its buyers show in a purchase's `channel`; not shown again.
    pub key: String,
    /// Seats kept back.
    pub reserved: u32,
}

/// A channel with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelDto {
    /// The channel's code.
    pub code: String,
    /// Seats still kept back (the public cannot buy them).
    pub reserved: u32,
    /// Seats released to the public.
    pub released: u32,
}

impl From<&Channel> for ChannelDto {
    fn from(channel: &Channel) -> Self {
        Self {
            code: channel.code().to_string(),
            reserved: channel.reserved().len() as u32,
            released: channel.released().len() as u32,
        }
    }
}

/// `POST /api/admin/events/{eventId}/channels/{code}/release`: the seats to give to the public;
/// without `seats`, every seat the channel still keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseChannelDto {
    /// The seats to release (each kept by the channel, at most once); absent for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = seats_schema)]
    pub seats: Option<Vec<SeatDto>>,
}

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedDto {
    /// The seats that became public now, in seat order; empty when all were released before
    /// (then no event is written).
    pub released: Vec<SeatDto>,
}

/// Keeps seats of the event back for a new sales channel, and answers its key once.
#[utoipa::path(
    post, path = "/api/admin/events/{eventId}/channels", tag = "admin", operation_id = "createChannel",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    request_body = CreateChannelDto,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The channel and its key, shown this once", body = CreatedChannelDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID, or the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "INCONSISTENT_REQUEST: the event has the code already, the venue has no such \
            seat, its zone is not on sale, or another channel keeps a seat", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn create_channel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateChannelDto>,
) -> ApiResult<(StatusCode, Json<CreatedChannelDto>)> {
    let event: EventId = parse_id(&id)?;
    let code: ChannelCode = parse(&body.code)?;
    let seats = seats_of(&body.seats)?;
    let (channel, key) = state.catalog().create_channel(event, code, seats).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedChannelDto {
            event_id: event.as_uuid(),
            code: channel.code().to_string(),
            key: key.as_str().to_owned(),
            reserved: channel.reserved().len() as u32,
        }),
    ))
}

/// The event's sales channels, by code, with their kept and released seat counts.
#[utoipa::path(
    get, path = "/api/admin/events/{eventId}/channels", tag = "admin", operation_id = "listChannels",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The channels, by code (never their keys)", body = Vec<ChannelDto>),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn list_channels(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ChannelDto>>> {
    let event: EventId = parse_id(&id)?;
    let channels = state.catalog().channels(event).await?;
    Ok(Json(channels.iter().map(ChannelDto::from).collect()))
}

/// Gives seats of a channel to the public, all at once, with one `ChannelSeatsReleased` event.
/// Releasing seats released before is no error and writes no event.
#[utoipa::path(
    post, path = "/api/admin/events/{eventId}/channels/{code}/release", tag = "admin", operation_id = "releaseChannelSeats",
    params(
        ("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"),
        ("code" = String, Path, description = "The channel's code", example = "BOX-OFFICE", min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.@+-]+$"),
    ),
    request_body = ReleaseChannelDto,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The seats released now", body = ReleasedDto),
        (status = 400, description = "INVALID_REQUEST: the id or code is malformed, or the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event or channel", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "INCONSISTENT_REQUEST: the channel never kept one of the seats", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn release_channel_seats(
    State(state): State<AppState>,
    ApiPath((id, code)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ReleaseChannelDto>,
) -> ApiResult<Json<ReleasedDto>> {
    let event: EventId = parse_id(&id)?;
    let code: ChannelCode = parse(&code)?;
    let seats = body.seats.as_deref().map(seats_of).transpose()?;
    let released = state
        .catalog()
        .release_channel_seats(event, code, seats)
        .await?;
    Ok(Json(ReleasedDto {
        released: released.iter().map(SeatDto::from).collect(),
    }))
}
