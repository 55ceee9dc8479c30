//! The one error answer of the HTTP API: a status and a JSON body `{code, message, path, traceId}`.
//!
//! Handlers and extractors return [`ApiError`]. Its response carries the code and message in a
//! response extension; the [`render_errors`](crate::middleware) middleware, which knows the request
//! path and trace id, turns it into the final JSON body. The same middleware rewrites every other
//! error response (axum's plain-text 404/405, a body-limit 413, a caught panic) into that shape,
//! so no answer of this server is ever plain text.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ticketing_core::Error;
use utoipa::ToSchema;

/// The JSON body of every error answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A stable upper-case code, e.g. `SEATS_TAKEN`.
    pub code: String,
    /// A human-readable explanation. Never a stack trace or a driver message.
    pub message: String,
    /// The request path.
    pub path: String,
    /// The request's trace id, also sent as the `x-request-id` header and logged.
    pub trace_id: String,
    /// Structured details for some codes (the taken seats, the offending field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An error answer before the middleware adds the path and the trace id.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The message for the client.
    pub message: String,
    /// Optional structured details.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// `400 INVALID_REQUEST`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// `401 UNAUTHORIZED`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// `404 NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// The code and message the middleware uses for an error response that did not come from an
    /// [`ApiError`] (a plain-text rejection, a 405, a body-limit 413, a caught panic).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("NOT_FOUND", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "this route does not accept that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as application/json",
            ),
            StatusCode::UNAUTHORIZED => ("UNAUTHORIZED", "authentication required"),
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
            s if s.is_client_error() => ("INVALID_REQUEST", "the request is invalid"),
            StatusCode::SERVICE_UNAVAILABLE => ("UNAVAILABLE", "the service is unavailable"),
            _ => ("INTERNAL", "internal error"),
        };
        Self::new(status, code, message)
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// The code of a `422`: the request is well formed but contradicts itself or the catalog.
pub const INCONSISTENT_REQUEST: &str = "INCONSISTENT_REQUEST";

/// The status docs/DESIGN.md "Errors" gives each core error a service answers.
///
/// The handlers check everything the OpenAPI document states before they call a service
/// ([`crate::contract`]; a failure there is `400 INVALID_REQUEST`), so an
/// [`Error::InvalidRequest`] from a service is a rule no schema can state — a zone code given
/// twice, a sale that closes before it opens, a seat the venue does not have — and is `422`.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::SeatsTaken { .. }
        | Error::SoldOut { .. }
        | Error::NoAdjacentSeats { .. }
        | Error::NotOnSale { .. } => StatusCode::CONFLICT,
        Error::LimitExceeded { .. } | Error::InvalidRequest { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::InvalidTransition { .. }
        | Error::PaymentTooLate { .. }
        | Error::PaymentMismatch { .. }
        | Error::HoldNotExtended { .. }
        | Error::IdempotencyConflict { .. } => StatusCode::CONFLICT,
        // A channel's key that is not the channel's: the buyer is not of the channel.
        Error::NotAdmitted { .. } | Error::ChannelKeyInvalid { .. } => StatusCode::FORBIDDEN,
        // Unknown, outside its window, used up, or used up by this customer: the voucher's
        // state refuses the purchase, under the problem's own code (`VOUCHER_USED_UP`, …).
        Error::Voucher { .. } => StatusCode::CONFLICT,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = status_of(&error);
        let code = match &error {
            Error::InvalidRequest { .. } => INCONSISTENT_REQUEST,
            // A setting found unusable while serving, and a backend failure that retrying will
            // not cure, are the operator's to fix, not the client's: no retry invited.
            Error::Config { .. } | Error::Backend { .. } => "INTERNAL",
            _ => error.code(),
        };
        let (message, details) = match &error {
            Error::Unavailable { adapter, .. } => {
                tracing::warn!(%error, "backend unavailable");
                (format!("{adapter} is unavailable; retry later"), None)
            }
            Error::Backend { .. } => {
                // The driver's message (a table name, a SQL error) stays in the log.
                tracing::error!(%error, "backend failed");
                ("internal error".to_owned(), None)
            }
            Error::Internal { .. } => {
                tracing::error!(%error, "internal error");
                ("internal error".to_owned(), None)
            }
            Error::SeatsTaken { seats } => (
                error.to_string(),
                Some(serde_json::json!({
                    "seats": seats.iter().map(crate::dto::SeatDto::from).collect::<Vec<_>>()
                })),
            ),
            Error::InvalidRequest { field, .. } => (
                error.to_string(),
                Some(serde_json::json!({ "field": field })),
            ),
            Error::NotAdmitted { reason, .. } => (
                error.to_string(),
                Some(serde_json::json!({ "reason": reason.name() })),
            ),
            Error::HoldNotExtended { reason } => (
                error.to_string(),
                Some(serde_json::json!({ "reason": reason.name() })),
            ),
            Error::PaymentTooLate { deadline } => (
                error.to_string(),
                Some(serde_json::json!({ "deadline": deadline })),
            ),
            Error::PaymentMismatch { expected, received } => (
                error.to_string(),
                Some(serde_json::json!({
                    "expected": expected.map(crate::dto::MoneyDto::from),
                    "received": crate::dto::MoneyDto::from(*received),
                })),
            ),
            _ if status.is_server_error() => {
                tracing::error!(%error, "unexpected error");
                ("internal error".to_owned(), None)
            }
            _ => (error.to_string(), None),
        };
        ApiError {
            status,
            code,
            message,
            details,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            JsonRejection::BytesRejection(inner) => inner.into(),
            // Syntax errors, wrong types, unknown and missing fields: the body text says which.
            other => ApiError::invalid(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<BytesRejection> for ApiError {
    /// A body over the limit is `413`, a body that stalls past `--body-read-timeout` is `408`.
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else if body_timed_out(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "the request body arrived too slowly",
            )
        } else {
            ApiError::invalid(format!("cannot read the body: {}", rejection.body_text()))
        }
    }
}

/// Whether reading the body failed on the body-read timeout (`tower_http`'s `TimeoutBody`).
fn body_timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

impl From<PathRejection> for ApiError {
    /// A path that does not decode (bad percent-encoding, invalid UTF-8) is malformed.
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid(format!("invalid path: {}", rejection.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Short for a handler result.
pub type ApiResult<T> = Result<T, ApiError>;
