//! Extractors whose rejections are [`ApiError`]s (JSON), never axum's plain-text defaults.

use std::str::FromStr;

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::HeaderMap;
use ticketing_core::Error;

use crate::contract;
use crate::error::{ApiError, ApiResult};

/// A JSON request body. Malformed JSON, wrong types, unknown fields, a missing content type and an
/// oversized body are 4xx JSON errors.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
