//! The waiting room of an event: join it and read one's place (customer), set or remove its
//! admission policy (admin). Admission runs on read: each join and each place read first runs
//! one admission step for the event, so a room whose buyers poll it moves without a background
//! task (docs/DESIGN.md, "Waiting room").

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use ticketing_core::domain::{
    AdmissionMode, AdmissionPolicy, EventId, MAX_ADMISSION_LIMIT, MAX_ADMISSION_WINDOW,
    MIN_ADMISSION_WINDOW, QueueOrder,
};
use ticketing_core::service::QueueStatus;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use crate::app::AppState;
use crate::auth::Customer;
use crate::contract::{check_range, malformed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, header_text, parse_id};

/// The header a purchase shows its admission token in.
pub const ADMISSION_TOKEN: &str = "admission-token";

/// An admission token as the waiting room issues it: `<id>.<expiry in ms>.<HMAC-SHA256 hex>`.
pub const ADMISSION_TOKEN_PATTERN: &str = "^[0-9]{1,20}\\.[0-9]{1,20}\\.[0-9a-f]{64}$";

/// The `Admission-Token` header's schema. The pattern alone bounds the length (68–106): with
/// `minLength`/`maxLength` beside it, schemathesis' coverage phase sends a string of the maximum
/// length plus one as if it were valid.
pub fn admission_token() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(ADMISSION_TOKEN_PATTERN))
        .examples([
            "17.1900000060000.5f0c6a8e3b1d4c2a9e7f6b5a4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0",
        ])
        .build()
}

/// The `Admission-Token` header of a purchase: absent (or empty: a client that sends the header
/// with no token has none), or a token of the documented shape (`400 INVALID_REQUEST`
/// otherwise). Whether it admits is the waiting room's answer (`403`).
pub fn admission_token_header(headers: &axum::http::HeaderMap) -> ApiResult<Option<String>> {
    let Some(text) = header_text(headers, ADMISSION_TOKEN)?.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    let shaped = {
        let mut parts = text.split('.');
        let digits = |s: Option<&str>| {
            s.is_some_and(|s| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
        };
        let hex = |s: Option<&str>| {
            s.is_some_and(|s| {
                s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
        };
        digits(parts.next()) && digits(parts.next()) && hex(parts.next()) && parts.next().is_none()
    };
    if !shaped {
        return Err(ApiError::invalid(format!(
            "header Admission-Token must match {ADMISSION_TOKEN_PATTERN}"
        ))
        .with_details(serde_json::json!({ "field": "admission_token" })));
    }
    Ok(Some(text.to_owned()))
}

/// How buyers leave the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdmissionModeDto {
    /// At most `limit` admissions per second.
    Rate,
    /// At most `limit` buyers admitted at once (until they buy or their window ends).
    Concurrent,
}

/// In which order buyers leave the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum QueueOrderDto {
    /// First come, first admitted.
    Fifo,
    /// A uniformly random order (a lottery number per join).
    Random,
}

fn limit_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1.0))
        .maximum(Some(f64::from(MAX_ADMISSION_LIMIT)))
        .examples([200])
        .build()
}

fn window_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(MIN_ADMISSION_WINDOW.num_seconds() as f64))
        .maximum(Some(MAX_ADMISSION_WINDOW.num_seconds() as f64))
        .examples([600])
        .build()
}

/// `PUT /api/admin/events/{eventId}/waiting-room`: an event's admission policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitingRoomPolicyDto {
    /// A rate or a cap of concurrently admitted buyers.
    pub mode: AdmissionModeDto,
    /// Admissions per second (`rate`) or buyers admitted at once (`concurrent`).
    #[schema(schema_with = limit_schema)]
    #[serde(deserialize_with = "crate::dto::whole")]
    pub limit: u32,
    /// The queue order.
    pub order: QueueOrderDto,
    /// How long an admitted buyer may buy, in seconds: the token's lifetime.
    #[schema(schema_with = window_schema)]
    #[serde(deserialize_with = "crate::dto::whole")]
    pub window_seconds: u32,
}

impl WaitingRoomPolicyDto {
    /// The core policy, after the bounds the schema states (`400`).
    pub fn to_core(&self) -> ApiResult<AdmissionPolicy> {
        check_range("limit", self.limit.into(), 1, MAX_ADMISSION_LIMIT.into())?;
        check_range(
            "window",
            self.window_seconds.into(),
            MIN_ADMISSION_WINDOW.num_seconds(),
            MAX_ADMISSION_WINDOW.num_seconds(),
        )?;
        let mode = match self.mode {
            AdmissionModeDto::Rate => AdmissionMode::PerSecond(self.limit),
            AdmissionModeDto::Concurrent => AdmissionMode::Concurrent(self.limit),
        };
        let order = match self.order {
            QueueOrderDto::Fifo => QueueOrder::Fifo,
            QueueOrderDto::Random => QueueOrder::Random,
        };
        AdmissionPolicy::new(mode, order, TimeDelta::seconds(self.window_seconds.into()))
            .map_err(malformed)
    }
}

impl From<AdmissionPolicy> for WaitingRoomPolicyDto {
    fn from(policy: AdmissionPolicy) -> Self {
        Self {
            mode: match policy.mode() {
                AdmissionMode::PerSecond(_) => AdmissionModeDto::Rate,
                AdmissionMode::Concurrent(_) => AdmissionModeDto::Concurrent,
            },
            limit: policy.mode().limit(),
            order: match policy.order() {
                QueueOrder::Fifo => QueueOrderDto::Fifo,
                QueueOrder::Random => QueueOrderDto::Random,
            },
            window_seconds: u32::try_from(policy.window().num_seconds()).unwrap_or(u32::MAX),
        }
    }
}

/// Where the buyer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum QueueStateDto {
    /// The event needs no admission: buy without a token.
    NotRequired,
    /// Not in the queue (never joined, or the admission was used or has lapsed): join.
    NotQueued,
    /// In the queue: see `position` and `estimatedWaitSeconds`.
    Waiting,
    /// Admitted: buy with `admissionToken` (header `Admission-Token`) before `expiresAt`.
    Admitted,
}

/// A buyer's place in an event's waiting room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatusDto {
    /// Where the buyer stands.
    pub state: QueueStateDto,
    /// With `waiting`: 1 = the next to be admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// With `waiting`: the longest wait if no one ahead gives up, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<i64>,
    /// With `admitted`: the token to send as the purchase's `Admission-Token` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    /// With `admitted`: the end of the purchase window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<QueueStatus> for QueueStatusDto {
    fn from(status: QueueStatus) -> Self {
        let empty = |state| Self {
            state,
            position: None,
            estimated_wait_seconds: None,
            admission_token: None,
            expires_at: None,
        };
        match status {
            QueueStatus::Waiting {
                position,
                estimated_wait,
            } => Self {
                position: Some(position),
                estimated_wait_seconds: Some(estimated_wait.num_seconds()),
                ..empty(QueueStateDto::Waiting)
            },
            QueueStatus::Admitted { token, expires } => Self {
                admission_token: Some(token),
                expires_at: Some(expires),
                ..empty(QueueStateDto::Admitted)
            },
            QueueStatus::NotRequired => empty(QueueStateDto::NotRequired),
            // QueueStatus may grow; anything else reads as "join".
            _ => empty(QueueStateDto::NotQueued),
        }
    }
}

/// Joins the event's waiting room as the token's customer. Joining again keeps the place (and an
/// admission). Runs one admission step first, so the answer may already be `admitted`. An event
/// without a waiting room (or no such event) answers `notRequired`.
#[utoipa::path(
    post, path = "/api/events/{eventId}/waiting-room", tag = "waiting room", operation_id = "joinWaitingRoom",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = [])),
    responses(
        (status = 200, description = "Where the customer stands", body = QueueStatusDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired customer token \
            (or the admin token, which names no customer); see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn join(
    State(state): State<AppState>,
    Customer(customer): Customer,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<QueueStatusDto>> {
    let event: EventId = parse_id(&id)?;
    let room = state.waiting_room().clone();
    let status = super::run_detached(async move { room.join(event, &customer).await }).await?;
    Ok(Json(status.into()))
}

/// The token's customer's place in the event's waiting room, after one admission step; once
/// admitted, with the admission token. Poll it while `waiting`.
#[utoipa::path(
    get, path = "/api/events/{eventId}/waiting-room", tag = "waiting room", operation_id = "getWaitingRoomPlace",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = [])),
    responses(
        (status = 200, description = "Where the customer stands", body = QueueStatusDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired customer token \
            (or the admin token, which names no customer); see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn place(
    State(state): State<AppState>,
    Customer(customer): Customer,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<QueueStatusDto>> {
    let event: EventId = parse_id(&id)?;
    let room = state.waiting_room().clone();
    let status = super::run_detached(async move { room.status(event, &customer).await }).await?;
    Ok(Json(status.into()))
}

/// Makes the event require admission through its waiting room, with this policy (replacing any
/// earlier one; the queue and the admissions stay). Purchases then need an `Admission-Token`.
#[utoipa::path(
    put, path = "/api/admin/events/{eventId}/waiting-room", tag = "admin", operation_id = "setWaitingRoom",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    request_body = WaitingRoomPolicyDto,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The policy now in force", body = WaitingRoomPolicyDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID, or the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn set_policy(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WaitingRoomPolicyDto>,
) -> ApiResult<Json<WaitingRoomPolicyDto>> {
    let event: EventId = parse_id(&id)?;
    let policy = body.to_core()?;
    state.waiting_room().configure(event, Some(policy)).await?;
    Ok(Json(policy.into()))
}

/// Removes the event's waiting room: anyone may buy again, without a token.
#[utoipa::path(
    delete, path = "/api/admin/events/{eventId}/waiting-room", tag = "admin", operation_id = "removeWaitingRoom",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("admin" = [])),
    responses(
        (status = 204, description = "The event needs no admission now"),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn remove_policy(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let event: EventId = parse_id(&id)?;
    state.waiting_room().configure(event, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
