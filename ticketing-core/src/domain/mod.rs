//! The domain: plain values that cannot hold invalid states. No I/O here.

mod admission;
mod best_available;
mod channel;
mod event;
mod extension;
mod ids;
mod money;
mod outbox;
mod payment;
mod price_tier;
mod sales;
mod status;
mod ticket;
mod venue;
mod voucher;
mod waiting_list;

pub use admission::{
    AdmissionMode, AdmissionPolicy, AdmissionRefusal, AdmissionSecret, LOTTERY_BOUND,
    MAX_ADMISSION_LIMIT, MAX_ADMISSION_WINDOW, MIN_ADMISSION_WINDOW, QueueOrder,
};
pub use best_available::{Placement, RowOccupancy, centre_distance, choose_block, orphans_left};
pub use channel::{
    Channel, ChannelAccess, ChannelKey, ChannelKeyHash, ChannelRelease, MAX_CHANNEL_SEATS,
};
pub use event::{Event, EventSpec, MAX_HOLD_TIME, MAX_PER_CUSTOMER_LIMIT, MIN_HOLD_TIME};
pub use extension::{ExtensionRefusal, HoldExtension};
pub use ids::{
    ChannelCode, CustomerId, EventId, IdempotencyKey, OrderId, OrderIdSecret, PaymentRef, RowLabel,
    TicketId, VenueId, VoucherCode, WaitingEntryId, ZoneCode,
};
pub use money::{Currency, Money};
pub use outbox::{
    OUTBOX_SCHEMA_VERSION, OutboxEntry, OutboxEvent, OutboxKind, OutboxLine, OutboxOffer,
    OutboxPayment,
};
pub use payment::{
    LatePaymentPolicy, Payment, PaymentDecision, PaymentEffect, PaymentNotice, PaymentOutcome,
    PaymentRecorded, PaymentWrite, refusal,
};
pub use price_tier::{MAX_PRICE_TIERS, PriceTier, assign_tiers};
pub use sales::{EventTotals, SalesChange, SalesCounter, ZoneTotals};
pub use status::{TicketAction, TicketStatus};
pub use ticket::{Order, Ticket};
pub use venue::{
    MAX_NAME_CHARS, MAX_ZONE_CAPACITY, Row, SeatRef, Venue, VenueLimits, Zone, ZoneKind,
};
pub use voucher::{
    Discount, FULL_PRICE_BASIS_POINTS, MAX_VOUCHER_USES, Voucher, VoucherEffect, VoucherProblem,
    VoucherSpec,
};
pub use waiting_list::{MAX_PARTY, WaitingEntry, WaitingState};
