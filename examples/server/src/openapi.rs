//! The OpenAPI document, generated from the handlers' annotations (`GET /openapi.json`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::error::ErrorBody;
use crate::routes;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing-server",
        description = "Example HTTP server of the ticketing library. Every error is JSON \
            {code, message, path, traceId}; every answer carries x-request-id."
    ),
    paths(
        routes::tickets::purchase,
        routes::tickets::ticket,
        routes::orders::order,
        routes::orders::cancel,
        routes::events::event,
        routes::events::venue,
        routes::events::sold_count,
        routes::events::revenue,
        routes::events::seat_map,
        routes::payments::webhook,
        routes::admin::create_venue,
        routes::admin::create_event,
        routes::admin::refund_order,
        routes::ops::health,
        routes::ops::metrics,
        routes::ops::openapi,
    ),
    components(schemas(
        ErrorBody,
        dto::PurchaseRequestDto,
        dto::SeatDto,
        dto::GeneralAdmissionDto,
        dto::MoneyDto,
        dto::TicketDto,
        dto::TicketStatusDto,
        dto::OrderDto,
        dto::SoldCountDto,
        dto::RevenueDto,
        dto::SeatMapDto,
        dto::SeatViewDto,
        dto::SeatStateDto,
        dto::GeneralAvailabilityDto,
        dto::CreateVenueDto,
        dto::ZoneDto,
        dto::ZoneKindDto,
        dto::RowDto,
        dto::VenueDto,
        dto::CreateEventDto,
        dto::PriceDto,
        dto::EventDto,
        dto::PaymentWebhookDto,
        dto::WebhookAnswerDto,
        dto::HealthDto,
    )),
    modifiers(&AdminAuth)
)]
pub struct ApiDoc;

/// Declares the admin routes' bearer token.
struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
