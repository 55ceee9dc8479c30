//! An event's vouchers (admin): create one, list them with their uses. A purchase names a
//! voucher in its body (`voucher`); the uses are counted by the repository in the purchase's
//! transaction (docs/DESIGN.md, "Vouchers").

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing_core::Error;
use ticketing_core::domain::{
    Currency, Discount, EventId, FULL_PRICE_BASIS_POINTS, MAX_VOUCHER_USES, Money, VoucherEffect,
    VoucherSpec,
};
use ticketing_core::service::VoucherUses;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::app::AppState;
use crate::contract::{self, check_range, malformed, parse};
use crate::dto::{MoneyDto, closed, whole, whole_opt};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, parse_id};

/// What a voucher gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoucherKindDto {
    /// `amountMinor` off each ticket (never below zero), in the event's currency.
    Amount,
    /// `basisPoints` (1 to 10000) off each ticket; the discount is rounded down to the minor
    /// unit.
    Percent,
    /// The right to buy in the hidden `zone`, at its price.
    ZoneAccess,
}

/// `POST /api/admin/events/{eventId}/vouchers`: a voucher of the event (the schema is a
/// `oneOf` by `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVoucherDto {
    /// The code buyers type, unique in the event.
    pub code: String,
    /// What it gives.
    pub kind: VoucherKindDto,
    /// `AMOUNT`: minor units off each ticket.
    #[serde(default, deserialize_with = "whole_opt")]
    pub amount_minor: Option<i64>,
    /// `PERCENT`: basis points off each ticket.
    #[serde(default, deserialize_with = "whole_opt")]
    pub basis_points: Option<u32>,
    /// `ZONE_ACCESS`: the hidden zone it opens.
    #[serde(default)]
    pub zone: Option<String>,
    /// Most active (unpaid or paid) orders using it at once.
    #[serde(deserialize_with = "whole")]
    pub max_uses: u32,
    /// Most active orders of one customer using it.
    #[serde(deserialize_with = "whole")]
    pub max_per_customer: u32,
    /// From when it may be used (inclusive).
    pub valid_from: DateTime<Utc>,
    /// Until when it may be used (exclusive); after `validFrom`.
    pub valid_until: DateTime<Utc>,
}

impl CreateVoucherDto {
    /// The core spec, after what the schema states (`400`), an amount in the event's
    /// `currency`. Whether the zone is hidden, the limits consistent and the window closes
    /// after it opens are the service's rules (`422`).
    pub fn to_core(&self, currency: Currency) -> ApiResult<VoucherSpec> {
        let max = i64::from(MAX_VOUCHER_USES);
        check_range("max_uses", self.max_uses.into(), 1, max)?;
        check_range("max_per_customer", self.max_per_customer.into(), 1, max)?;
        let effect = match (self.kind, self.amount_minor, self.basis_points, &self.zone) {
            (VoucherKindDto::Amount, Some(minor), None, None) => {
                check_range("amount_minor", minor, 1, i64::MAX)?;
                VoucherEffect::Discount(Discount::Amount(Money::new(minor, currency)))
            }
            (VoucherKindDto::Percent, None, Some(basis_points), None) => {
                check_range(
                    "basis_points",
                    basis_points.into(),
                    1,
                    FULL_PRICE_BASIS_POINTS.into(),
                )?;
                VoucherEffect::Discount(Discount::Percent { basis_points })
            }
            (VoucherKindDto::ZoneAccess, None, None, Some(zone)) => {
                VoucherEffect::ZoneAccess(parse(zone)?)
            }
            (kind, ..) => {
                let field = match kind {
                    VoucherKindDto::Amount => "amountMinor",
                    VoucherKindDto::Percent => "basisPoints",
                    VoucherKindDto::ZoneAccess => "zone",
                };
                return Err(malformed(Error::invalid(
                    "kind",
                    format!("a voucher of kind {kind:?} takes {field} and no other effect field"),
                )));
            }
        };
        Ok(VoucherSpec {
            code: parse(&self.code)?,
            effect,
            max_uses: self.max_uses,
            max_per_customer: self.max_per_customer,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        })
    }
}

impl PartialSchema for CreateVoucherDto {
    /// `oneOf` an amount, a percentage and a zone access, each closed to other properties.
    fn schema() -> RefOr<Schema> {
        let uses = || contract::bounded(1, MAX_VOUCHER_USES.into(), 3);
        let branch = |title: &str, kind: &str, field: &str, content: RefOr<Schema>| {
            closed(ObjectBuilder::new())
                .title(Some(title))
                .property("code", contract::voucher_code())
                .required("code")
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .required("kind")
                .property(field, content)
                .required(field)
                .property("maxUses", uses())
                .required("maxUses")
                .property("maxPerCustomer", uses())
                .required("maxPerCustomer")
                .property("validFrom", date_time())
                .required("validFrom")
                .property("validUntil", date_time())
                .required("validUntil")
                .build()
        };
        let schema = OneOfBuilder::new()
            .description(Some(
                "A voucher of the event: an amount or a percentage off each ticket of the \
                 order that uses it, or access to a hidden zone; at most maxUses active orders \
                 use it at once, at most maxPerCustomer of one customer, within \
                 [validFrom, validUntil).",
            ))
            .item(branch(
                "AmountVoucher",
                "AMOUNT",
                "amountMinor",
                contract::bounded(1, i64::MAX, 500).into(),
            ))
            .item(branch(
                "PercentVoucher",
                "PERCENT",
                "basisPoints",
                contract::bounded(1, FULL_PRICE_BASIS_POINTS.into(), 1500).into(),
            ))
            .item(branch(
                "ZoneAccessVoucher",
                "ZONE_ACCESS",
                "zone",
                contract::zone_code().into(),
            ))
            .build();
        RefOr::T(Schema::OneOf(schema))
    }
}

impl ToSchema for CreateVoucherDto {}

fn date_time() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).format(Some(
        utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime),
    ))
}

/// A voucher with its uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoucherDto {
    /// The event.
    pub event_id: uuid::Uuid,
    /// The code.
    pub code: String,
    /// What it gives.
    pub kind: VoucherKindDto,
    /// `AMOUNT`: off each ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<MoneyDto>,
    /// `PERCENT`: basis points off each ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis_points: Option<u32>,
    /// `ZONE_ACCESS`: the hidden zone it opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Most active orders using it.
    pub max_uses: u32,
    /// Most active orders of one customer using it.
    pub max_per_customer: u32,
    /// From when it may be used (inclusive).
    pub valid_from: DateTime<Utc>,
    /// Until when it may be used (exclusive).
    pub valid_until: DateTime<Utc>,
    /// Active (unpaid or paid) orders using it now; never above `maxUses`.
    pub uses: u32,
}

impl From<&VoucherUses> for VoucherDto {
    fn from(v: &VoucherUses) -> Self {
        let voucher = &v.voucher;
        let (kind, amount, basis_points, zone) = match voucher.effect() {
            VoucherEffect::Discount(Discount::Amount(money)) => (
                VoucherKindDto::Amount,
                Some(MoneyDto::from(*money)),
                None,
                None,
            ),
            VoucherEffect::Discount(Discount::Percent { basis_points }) => {
                (VoucherKindDto::Percent, None, Some(*basis_points), None)
            }
            VoucherEffect::ZoneAccess(zone) => (
                VoucherKindDto::ZoneAccess,
                None,
                None,
                Some(zone.to_string()),
            ),
        };
        Self {
            event_id: voucher.event().as_uuid(),
            code: voucher.code().to_string(),
            kind,
            amount,
            basis_points,
            zone,
            max_uses: voucher.max_uses(),
            max_per_customer: voucher.max_per_customer(),
            valid_from: voucher.valid_from(),
            valid_until: voucher.valid_until(),
            uses: v.uses,
        }
    }
}

/// Creates a voucher of the event.
#[utoipa::path(
    post, path = "/api/admin/events/{eventId}/vouchers", tag = "admin", operation_id = "createVoucher",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    request_body = CreateVoucherDto,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The voucher, with no use yet", body = VoucherDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID, or the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "INCONSISTENT_REQUEST: the event has the code already, validUntil is not \
            after validFrom, maxPerCustomer exceeds maxUses, or the zone is not a hidden zone of the event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn create_voucher(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateVoucherDto>,
) -> ApiResult<(StatusCode, Json<VoucherDto>)> {
    let event: EventId = parse_id(&id)?;
    let currency = state.catalog().event(event).await?.currency();
    let spec = body.to_core(currency)?;
    let voucher = state.catalog().create_voucher(event, spec).await?;
    let created = VoucherUses { voucher, uses: 0 };
    Ok((StatusCode::CREATED, Json(VoucherDto::from(&created))))
}

/// The event's vouchers, by code, with the active orders using each.
#[utoipa::path(
    get, path = "/api/admin/events/{eventId}/vouchers", tag = "admin", operation_id = "listVouchers",
    params(("eventId" = uuid::Uuid, Path, description = "Event id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The vouchers, by code", body = Vec<VoucherDto>),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn list_vouchers(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<VoucherDto>>> {
    let event: EventId = parse_id(&id)?;
    let vouchers = state.catalog().vouchers(event).await?;
    Ok(Json(vouchers.iter().map(VoucherDto::from).collect()))
}
