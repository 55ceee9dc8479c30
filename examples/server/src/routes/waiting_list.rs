//! The waiting list of a sold-out event (docs/DESIGN.md, "Waiting list"): a customer joins for
//! the event or one zone of it with a party size, reads the entry and its offer, and leaves.
//! Offers are made by the outbox relay when seats free up; an offer is an order of the
//! customer's, paid like any other before its `expiresAt`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing_core::domain::{EventId, MAX_PARTY, WaitingEntry, WaitingEntryId, WaitingState};
use ticketing_core::ports::Joined;
use ticketing_core::service::WaitingListService;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Customer;
use crate::contract::{self, check_range, parse};
use crate::dto::OrderDto;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, parse_id};

/// `POST /api/events/{eventId}/waiting-list`: wait for freed seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinWaitingListDto {
    /// The zone waited for; absent for any zone of the event.
    #[schema(schema_with = contract::zone_code)]
    #[serde(
        default,
        deserialize_with = "crate::dto::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub zone: Option<String>,
    /// Seats side by side (or places) wanted together; at most the event's per-customer limit.
    #[schema(schema_with = contract::party_size)]
    #[serde(deserialize_with = "crate::dto::whole")]
    pub party_size: u32,
}

/// Where a waiting-list entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitingStateDto {
    /// Waiting for freed seats.
    Waiting,
    /// Holds an offer: pay its order before its `expiresAt`.
    Offered,
    /// The offer was paid.
    Served,
    /// The offer expired or was cancelled; the entry is over.
    Lapsed,
    /// The customer left.
    Left,
}

impl From<WaitingState> for WaitingStateDto {
    fn from(state: WaitingState) -> Self {
        match state {
            WaitingState::Waiting => Self::Waiting,
            WaitingState::Offered => Self::Offered,
            WaitingState::Served => Self::Served,
            WaitingState::Lapsed => Self::Lapsed,
            WaitingState::Left => Self::Left,
        }
    }
}

/// A waiting-list entry, with its offer once made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitingEntryDto {
    /// The entry.
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The zone waited for; absent for any zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Seats or places wanted together.
    pub party_size: u32,
    /// When the customer joined: the list's order.
    pub joined_at: DateTime<Utc>,
    /// Where it stands.
    pub state: WaitingStateDto,
    /// The offer: an order of the customer's on the offered seats (pay it with the usual
    /// payment before its `expiresAt`; cancel it to pass). Absent before an offer is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<OrderDto>,
}

/// The waiting-list service, or `500` when the server was started without one.
fn service(state: &AppState) -> ApiResult<&WaitingListService> {
    state.waiting_list().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "this server has no waiting list",
        )
    })
}

/// The entry as the wire shows it, with its offer's order read from the repository.
async fn entry_dto(state: &AppState, entry: &WaitingEntry) -> ApiResult<WaitingEntryDto> {
    let offer = match entry.offer {
        Some(order) => state
            .backends()
            .tickets()
            .order(order)
            .await?
            .map(|o| OrderDto::from(&o)),
        None => None,
    };
    Ok(WaitingEntryDto {
        id: entry.id.as_uuid(),
        event_id: entry.event.as_uuid(),
        zone: entry.zone.as_ref().map(ToString::to_string),
        party_size: entry.party,
        joined_at: entry.joined_at,
        state: entry.state.into(),
        offer,
    })
}

/// The entry if it is the customer's; another customer's is `404`, as if it did not exist.
async fn own_entry(
    list: &WaitingListService,
    customer: &ticketing_core::domain::CustomerId,
    id: &str,
) -> ApiResult<WaitingEntry> {
    let id: WaitingEntryId = parse_id(id)?;
    let entry = list.entry(id).await?;
    if &entry.customer != customer {
        return Err(ticketing_core::Error::NotFound {
            what: "waiting-list entry",
            id: id.to_string(),
        }
        .into());
    }
    Ok(entry)
}

/// Joins the event's waiting list as the token's customer, for `partySize` seats side by side
/// (or places) in `zone`, or in any zone. When seats free up (a cancellation, an expiry, a
/// refund), the first entry they can serve is offered them as an order of its own, held for the
/// server's offer time. A customer with an open entry for the event gets that one (`200`).
#[utoipa::path(
    post, path = "/api/events/{eventId}/waiting-list", tag = "waiting list", operation_id = "joinWaitingList",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    request_body = JoinWaitingListDto,
    security(("customer" = [])),
    responses(
        (status = 201, description = "The new entry, waiting", body = WaitingEntryDto),
        (status = 200, description = "The customer's open entry for the event, unchanged", body = WaitingEntryDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID, or the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired customer token \
            (or the admin token, which names no customer); see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 409, description = "NOT_ON_SALE: the sale is over", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "LIMIT_EXCEEDED: the party is larger than the event's per-customer limit; \
            INCONSISTENT_REQUEST: the zone is not on sale in the event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn join(
    State(state): State<AppState>,
    Customer(customer): Customer,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<JoinWaitingListDto>,
) -> ApiResult<(StatusCode, Json<WaitingEntryDto>)> {
    let event: EventId = parse_id(&id)?;
    check_range("partySize", body.party_size.into(), 1, MAX_PARTY.into())?;
    let zone = body.zone.as_deref().map(parse).transpose()?;
    let list = service(&state)?.clone();
    let party = body.party_size;
    let joined =
        super::run_detached(async move { list.join(event, customer, zone, party).await }).await?;
    let (status, entry) = match joined {
        Joined::Added(entry) => (StatusCode::CREATED, entry),
        Joined::AlreadyOpen(entry) => (StatusCode::OK, entry),
    };
    Ok((status, Json(entry_dto(&state, &entry).await?)))
}

/// The token's customer's waiting-list entry: where it stands and, once offered, the offer's
/// order (its seats and `expiresAt`).
#[utoipa::path(
    get, path = "/api/waiting-list/{entryId}", tag = "waiting list", operation_id = "getWaitingListEntry",
    params(("entryId" = uuid::Uuid, Path, description = "Waiting-list entry id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = [])),
    responses(
        (status = 200, description = "The entry", body = WaitingEntryDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired customer token \
            (or the admin token, which names no customer); see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such entry, or another customer's", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn entry(
    State(state): State<AppState>,
    Customer(customer): Customer,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WaitingEntryDto>> {
    let entry = own_entry(service(&state)?, &customer, &id).await?;
    Ok(Json(entry_dto(&state, &entry).await?))
}

/// Takes the token's customer's entry off the waiting list (`LEFT`); an entry that is over
/// already is answered as it is. An offer already made stays an order the customer may pay or
/// cancel.
#[utoipa::path(
    delete, path = "/api/waiting-list/{entryId}", tag = "waiting list", operation_id = "leaveWaitingList",
    params(("entryId" = uuid::Uuid, Path, description = "Waiting-list entry id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = [])),
    responses(
        (status = 200, description = "The entry after leaving", body = WaitingEntryDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired customer token \
            (or the admin token, which names no customer); see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such entry, or another customer's", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn leave(
    State(state): State<AppState>,
    Customer(customer): Customer,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WaitingEntryDto>> {
    let list = service(&state)?.clone();
    let entry = own_entry(&list, &customer, &id).await?;
    let left = super::run_detached(async move { list.leave(entry.id).await }).await?;
    Ok(Json(entry_dto(&state, &left).await?))
}
