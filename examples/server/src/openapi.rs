//! The OpenAPI document (`GET /openapi.json`): generated from the handlers' annotations and the
//! wire types' schemas ([`crate::contract`]), plus the links between operations that let a
//! client (or schemathesis' stateful tests) chain venue → event → purchase → pay → read.

use serde_json::{Value, json};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use ticketing_core::domain::{MAX_ZONE_CAPACITY, VenueLimits};

use crate::dto;
use crate::error::ErrorBody;
use crate::middleware::REQUEST_ID;
use crate::{demo, routes};

/// The API without the demo routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing-server",
        description = "Example HTTP server of the ticketing library. Every error is JSON \
            {code, message, path, traceId, details?}; every answer carries x-request-id. \
            400 INVALID_REQUEST: the request breaks this document. 422: it is well formed but \
            breaks a rule no schema can state (LIMIT_EXCEEDED, INCONSISTENT_REQUEST). \
            Customer routes take Authorization: Bearer <JWT> (the customer is its sub claim); \
            401 UNAUTHORIZED: no, a malformed, a forged or an expired token; 404 also answers \
            for another customer's order or ticket; 429 RATE_LIMITED: too many purchases by \
            one customer (see Retry-After); 403 NOT_ADMITTED: the event requires admission \
            through its waiting room and the purchase showed no live Admission-Token of this \
            customer for this event."
    ),
    paths(
        routes::tickets::purchase,
        routes::tickets::ticket,
        routes::orders::order,
        routes::orders::cancel,
        routes::orders::extend,
        routes::events::event,
        routes::events::venue,
        routes::events::sold_count,
        routes::events::revenue,
        routes::events::seat_map,
        routes::events::zone_seat_map,
        routes::seat_changes::seat_changes,
        routes::waiting_room::join,
        routes::waiting_room::place,
        routes::waiting_list::join,
        routes::waiting_list::entry,
        routes::waiting_list::leave,
        routes::payments::webhook,
        routes::admin::create_venue,
        routes::admin::create_event,
        routes::admin::refund_order,
        routes::admin::refunds_due,
        routes::admin::mark_refunded,
        routes::admin::order_payments,
        routes::waiting_room::set_policy,
        routes::waiting_room::remove_policy,
        routes::channels::create_channel,
        routes::channels::list_channels,
        routes::channels::release_channel_seats,
        routes::vouchers::create_voucher,
        routes::vouchers::list_vouchers,
        routes::ops::health,
        routes::ops::metrics,
        routes::ops::openapi,
    ),
    components(schemas(
        ErrorBody,
        dto::PurchaseRequestDto,
        dto::SeatDto,
        dto::GeneralAdmissionDto,
        dto::BestAvailableDto,
        dto::RowRangeDto,
        dto::MoneyDto,
        dto::PaymentDto,
        dto::TicketDto,
        dto::TicketStatusDto,
        dto::OrderDto,
        dto::ExtendedHoldDto,
        dto::SoldCountDto,
        dto::RevenueDto,
        dto::SeatMapDto,
        dto::SeatedZoneMapDto,
        dto::RowMapDto,
        dto::GeneralAvailabilityDto,
        crate::live_seat_map::SeatChangeDto,
        crate::live_seat_map::SeatChangeSeatDto,
        crate::live_seat_map::SeatStateDto,
        crate::live_seat_map::SeatResetDto,
        dto::CreateVenueDto,
        dto::ZoneDto,
        dto::ZoneKindDto,
        dto::RowDto,
        dto::VenueDto,
        dto::CreateEventDto,
        dto::PriceDto,
        dto::ZoneTiersDto,
        dto::PriceTierDto,
        dto::TierStandingDto,
        dto::EventDto,
        dto::PaymentWebhookDto,
        dto::WebhookAnswerDto,
        dto::HealthDto,
        routes::waiting_room::WaitingRoomPolicyDto,
        routes::waiting_room::AdmissionModeDto,
        routes::waiting_room::QueueOrderDto,
        routes::waiting_room::QueueStatusDto,
        routes::waiting_room::QueueStateDto,
        routes::channels::ChannelAccessDto, routes::channels::CreateChannelDto, routes::channels::CreatedChannelDto, routes::channels::ChannelDto, routes::channels::ReleaseChannelDto, routes::channels::ReleasedDto, routes::waiting_list::JoinWaitingListDto, routes::waiting_list::WaitingStateDto, routes::waiting_list::WaitingEntryDto,
        routes::vouchers::CreateVoucherDto,
        routes::vouchers::VoucherKindDto,
        routes::vouchers::VoucherDto,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The demo routes, served (and documented) only in demo mode.
#[derive(OpenApi)]
#[openapi(
    paths(demo::page, demo::config, demo::token),
    components(schemas(dto::DemoConfigDto, dto::DemoTokenRequestDto, dto::DemoTokenDto))
)]
pub struct DemoApiDoc;

/// The demo's simulated payment, served (and documented) only in demo mode on the in-memory
/// backend.
#[derive(OpenApi)]
#[openapi(paths(demo::simulate_payment))]
pub struct DemoPaymentsApiDoc;

/// Declares the two bearer schemes: `admin` (the admin token) and `customer` (a JWT whose `sub`
/// is the customer).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The server's admin token (--admin-token)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "customer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT signed with the server's key (HS256, EdDSA or RS256); sub is \
                         the customer, exp is required",
                    ))
                    .build(),
            ),
        );
    }
}

/// Which demo routes a server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoRoutes {
    /// None (demo mode off).
    Off,
    /// The page, its configuration and its tokens.
    Page,
    /// Those and the simulated payment (the in-memory backend).
    PageAndPayments,
}

/// The document of a server with the default [`VenueLimits`]; see [`document_with_limits`].
pub fn document(demo: DemoRoutes) -> Value {
    document_with_limits(demo, &VenueLimits::default())
}

/// The document a server serves, as JSON: [`ApiDoc`], plus [`DemoApiDoc`] (and
/// [`DemoPaymentsApiDoc`]) as `demo` says, with the `x-request-id` header on every answer, the
/// links between operations, and the server's venue caps as the bounds of a new venue's rows.
pub fn document_with_limits(demo: DemoRoutes, limits: &VenueLimits) -> Value {
    let mut doc = ApiDoc::openapi();
    if demo != DemoRoutes::Off {
        doc.merge(DemoApiDoc::openapi());
    }
    if demo == DemoRoutes::PageAndPayments {
        doc.merge(DemoPaymentsApiDoc::openapi());
    }
    add_request_id_header(&mut doc);
    let mut doc = serde_json::to_value(doc)
        .unwrap_or_else(|_| unreachable!("an OpenAPI document is maps with string keys"));
    for link in LINKS {
        link.add_to(&mut doc);
    }
    state_venue_limits(&mut doc, limits);
    doc
}

/// Writes the configured caps into the venue schemas: rows per zone (`maxItems`), seats per row
/// (`maximum`), and the seats of a whole venue (which no schema keyword can state) in words.
fn state_venue_limits(doc: &mut Value, limits: &VenueLimits) {
    let schemas = "/components/schemas";
    let row_seats = limits.max_seats_per_row.min(MAX_ZONE_CAPACITY);
    if let Some(seats) = doc.pointer_mut(&format!("{schemas}/RowDto/properties/seats")) {
        seats["maximum"] = row_seats.into();
    }
    if let Some(rows) = doc.pointer_mut(&format!("{schemas}/ZoneDto/oneOf/0/properties/rows")) {
        rows["maxItems"] = limits.max_rows_per_zone.into();
    }
    if let Some(venue) = doc.pointer_mut(&format!("{schemas}/CreateVenueDto")) {
        venue["description"] = format!(
            "A new venue. At most {} rows per seated zone, {row_seats} seats per row (both 400 \
             INVALID_REQUEST above) and {} numbered seats in the whole venue (422 \
             INCONSISTENT_REQUEST above): a seat map costs in proportion to the seats it shows.",
            limits.max_rows_per_zone, limits.max_seats
        )
        .into();
    }
}

/// A link from one operation's answer to another operation, with the values it carries over
/// (OpenAPI runtime expressions such as `$response.body#/id`, or constants). A link with a body
/// gives the whole request body; a purchase's customer is the answer's fresh `x-request-id`, so
/// chained purchases do not run into the per-customer limit.
struct Link {
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
    body: fn() -> Option<Value>,
}

fn no_body() -> Option<Value> {
    None
}

/// Every link. A link whose operations are not both in the document (the demo routes outside
/// demo mode) is left out.
const LINKS: &[Link] = &[
    Link {
        from: "createVenue",
        status: "201",
        name: "GetVenue",
        to: "getVenue",
        parameters: &[("venueId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "createVenue",
        status: "201",
        name: "CreateEvent",
        to: "createEvent",
        parameters: &[],
        // An event on sale now, priced in the venue's first zone.
        body: || {
            Some(json!({
                "venueId": "$response.body#/id",
                "name": "Linked event",
                "prices": [{
                    "zone": "$response.body#/zones/0/code",
                    "amountMinor": 4500,
                    "currency": "EUR",
                }],
                "saleOpens": "2020-01-01T00:00:00Z",
                "saleCloses": "2100-01-01T00:00:00Z",
                "holdTimeSeconds": 600,
                "perCustomerLimit": 4,
            }))
        },
    },
    Link {
        from: "createEvent",
        status: "201",
        name: "GetEvent",
        to: "getEvent",
        parameters: &[("eventId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "createEvent",
        status: "201",
        name: "GetSeatMap",
        to: "getSeatMap",
        parameters: &[("eventId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "createEvent",
        status: "201",
        name: "GetSoldCount",
        to: "getSoldCount",
        parameters: &[("eventId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "createEvent",
        status: "201",
        name: "GetRevenue",
        to: "getRevenue",
        parameters: &[
            ("venueId", "$response.body#/venueId"),
            ("eventId", "$response.body#/id"),
        ],
        body: no_body,
    },
    Link {
        from: "createEvent",
        status: "201",
        name: "BuyPlaces",
        to: "purchase",
        parameters: &[],
        // One place in the first priced zone (bought when it is a general-admission zone).
        body: || {
            Some(json!({
                "eventId": "$response.body#/id",
                "generalAdmission": {"zone": "$response.body#/prices/0/zone", "quantity": 1},
            }))
        },
    },
    Link {
        from: "demoConfig",
        status: "200",
        name: "BuySeat",
        to: "purchase",
        parameters: &[],
        // Seat 1 of the first row of the demo venue's first zone.
        body: || {
            Some(json!({
                "eventId": "$response.body#/event/id",
                "seats": [{
                    "zone": "$response.body#/venue/zones/0/code",
                    "row": "$response.body#/venue/zones/0/rows/0/label",
                    "number": 1,
                }],
            }))
        },
    },
    Link {
        from: "demoConfig",
        status: "200",
        name: "GetSeatMap",
        to: "getSeatMap",
        parameters: &[("eventId", "$response.body#/event/id")],
        body: no_body,
    },
    Link {
        from: "getSeatMap",
        status: "200",
        name: "BuySeat",
        to: "purchase",
        parameters: &[],
        // The first free seat of the map's first row.
        body: || {
            Some(json!({
                "eventId": "$response.body#/eventId",
                "seats": [{
                    "zone": "$response.body#/seated/0/zone",
                    "row": "$response.body#/seated/0/rows/0/row",
                    "number": "$response.body#/seated/0/rows/0/free/0/0",
                }],
            }))
        },
    },
    Link {
        from: "getSeatMap",
        status: "200",
        name: "BuyPlaces",
        to: "purchase",
        parameters: &[],
        body: || {
            Some(json!({
                "eventId": "$response.body#/eventId",
                "generalAdmission": {
                    "zone": "$response.body#/generalAdmission/0/zone",
                    "quantity": 1,
                },
            }))
        },
    },
    Link {
        from: "purchase",
        status: "201",
        name: "GetOrder",
        to: "getOrder",
        parameters: &[("orderId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "purchase",
        status: "201",
        name: "ExtendOrder",
        to: "extendOrder",
        parameters: &[("orderId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "purchase",
        status: "201",
        name: "CancelOrder",
        to: "cancelOrder",
        parameters: &[("orderId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "purchase",
        status: "201",
        name: "Pay",
        to: "paymentWebhook",
        parameters: &[],
        body: || {
            Some(json!({
                "id": "$response.body#/id",
                "orderId": "$response.body#/id",
                "paymentReference": "pi_linked",
            }))
        },
    },
    Link {
        from: "purchase",
        status: "201",
        name: "PayInDemo",
        to: "demoPay",
        parameters: &[("orderId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "paymentWebhook",
        status: "200",
        name: "GetOrder",
        to: "getOrder",
        parameters: &[("orderId", "$response.body#/order/id")],
        body: no_body,
    },
    Link {
        from: "paymentWebhook",
        status: "200",
        name: "RefundOrder",
        to: "refundOrder",
        parameters: &[("orderId", "$response.body#/order/id")],
        body: no_body,
    },
    Link {
        from: "demoPay",
        status: "200",
        name: "GetOrder",
        to: "getOrder",
        parameters: &[("orderId", "$response.body#/order/id")],
        body: no_body,
    },
    Link {
        from: "demoPay",
        status: "200",
        name: "RefundOrder",
        to: "refundOrder",
        parameters: &[("orderId", "$response.body#/order/id")],
        body: no_body,
    },
    Link {
        from: "demoPay",
        status: "200",
        name: "GetSoldCount",
        to: "getSoldCount",
        parameters: &[("eventId", "$response.body#/order/eventId")],
        body: no_body,
    },
    Link {
        from: "demoPay",
        status: "200",
        name: "GetRevenue",
        to: "getRevenue",
        parameters: &[
            ("venueId", "$response.body#/order/venueId"),
            ("eventId", "$response.body#/order/eventId"),
        ],
        body: no_body,
    },
    Link {
        from: "getOrder",
        status: "200",
        name: "GetTicket",
        to: "getTicket",
        parameters: &[("ticketId", "$response.body#/tickets/0/id")],
        body: no_body,
    },
    Link {
        from: "cancelOrder",
        status: "200",
        name: "GetOrder",
        to: "getOrder",
        parameters: &[("orderId", "$response.body#/id")],
        body: no_body,
    },
    Link {
        from: "refundOrder",
        status: "200",
        name: "GetOrder",
        to: "getOrder",
        parameters: &[("orderId", "$response.body#/id")],
        body: no_body,
    },
];

impl Link {
    /// Adds the link to the JSON document: utoipa 5's `Link` type serialises its fields in
    /// snake case (`operation_id`), which no OpenAPI tool reads, so links are written as JSON.
    fn add_to(&self, doc: &mut Value) {
        if json_operation(doc, self.to).is_none() {
            return;
        }
        let Some(response) = json_operation(doc, self.from)
            .and_then(|op| op.pointer_mut(&format!("/responses/{}", self.status)))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let mut link = serde_json::Map::new();
        link.insert("operationId".into(), self.to.into());
        if !self.parameters.is_empty() {
            let parameters = self
                .parameters
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Value::from(*value)))
                .collect();
            link.insert("parameters".into(), Value::Object(parameters));
        }
        if let Some(body) = (self.body)() {
            link.insert("requestBody".into(), body);
            // The body is whole: merged into a generated one (schemathesis' default), a
            // generated second price or seat would make most chained requests fail.
            link.insert("x-schemathesis".into(), json!({ "merge_body": false }));
        }
        let links = response
            .entry("links")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(links) = links.as_object_mut() {
            links.insert(self.name.to_owned(), Value::Object(link));
        }
    }
}

/// The operation with `operation_id` in a JSON document.
fn json_operation<'a>(doc: &'a mut Value, operation_id: &str) -> Option<&'a mut Value> {
    doc.get_mut("paths")?
        .as_object_mut()?
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .find(|op| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
}

/// Every operation of the document.
fn operations_mut(doc: &mut Document) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// Every answer carries `x-request-id` (the request's, when it is a short token, or a new one).
fn add_request_id_header(doc: &mut Document) {
    let header = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "The request's trace id (the one sent, when it is a short token; else a new UUID)",
        ))
        .build();
    for operation in operations_mut(doc) {
        for response in operation.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response
                    .headers
                    .insert(REQUEST_ID.to_owned(), header.clone());
            }
        }
    }
}
