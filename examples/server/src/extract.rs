//! Extractors whose rejections are [`ApiError`]s (JSON), never axum's plain-text defaults.

use std::str::FromStr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use ticketing_core::Error;

use crate::contract;
use crate::error::{ApiError, ApiResult};

/// A JSON request body. Malformed JSON, wrong types, unknown fields, a body that is not a JSON
/// object, a missing content type and an oversized body are 4xx JSON errors.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let body = Bytes::from_request(request, state).await?;
        require_json_object(&body, "JSON body")?;
        let Json(value) = Json::<T>::from_bytes(&body)?;
        Ok(ApiJson(value))
    }
}

/// `application/json` or an `application/*+json` type, parameters ignored: what `axum::Json`
/// accepts.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Every request body of the API is a JSON object. serde also reads a struct from a JSON array
/// of its fields in order (`[]` fills every defaulted field), which the contract does not allow.
pub fn require_json_object(body: &[u8], what: &str) -> ApiResult<()> {
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(ApiError::invalid(format!(
            "invalid {what}: expected a JSON object"
        ))),
    }
}

/// Path parameters. A path that does not decode is a 400 JSON error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Parses an id from a path segment: a hyphenated UUID, as `format: uuid` states (`400`
/// otherwise, naming the id's field).
pub fn parse_id<T: FromStr<Err = Error>>(raw: &str) -> ApiResult<T> {
    match contract::hyphenated_uuid(raw) {
        Some(uuid) => contract::parse(&uuid.to_string()),
        // The id type's own parser also takes other UUID forms; its error names the field.
        None => contract::parse(""),
    }
}

/// A header as text; a header that is not visible ASCII is a 400.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("header {name} must be visible ASCII"))),
    }
}
