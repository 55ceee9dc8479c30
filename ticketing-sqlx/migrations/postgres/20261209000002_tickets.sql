-- Orders and tickets, the counters behind invariants 2 and 6, idempotency keys and the payments
-- ledger, on PostgreSQL. Tickets carry no foreign keys to the catalog (a purchase must not lock
-- the event row), as on MySQL.

-- One row per purchase. Every transition is a compare-and-set on this row first, then moves the
-- order's tickets in the same transaction; the sweep locks due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE orders (
    id          uuid           NOT NULL PRIMARY KEY,
    event_id    uuid           NOT NULL,
    customer_id text           COLLATE "C" NOT NULL,
    status      text           NOT NULL,
    expires_at  timestamptz(3) NOT NULL, -- payment deadline
    CONSTRAINT ck_orders_status CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'))
);

-- The expiry sweep reads only due unpaid orders, oldest deadline first: a partial index of the
-- orders that can still expire.
CREATE INDEX ix_orders_due ON orders (expires_at, id) WHERE status = 'PENDING_PAYMENT';

CREATE TABLE tickets (
    id          uuid           NOT NULL PRIMARY KEY, -- UUID v7: time-ordered
    order_id    uuid           NOT NULL,
    event_id    uuid           NOT NULL,
    venue_id    uuid           NOT NULL,
    zone_code   text           COLLATE "C" NOT NULL,
    seat_key    text           COLLATE "C" NULL, -- zone:row:number; NULL for general admission
    usage_shard smallint       NULL,             -- zone_usage shard of a general-admission ticket
    customer_id text           COLLATE "C" NOT NULL,
    price_minor bigint         NOT NULL,
    currency    text           COLLATE "C" NOT NULL,
    status      text           NOT NULL,
    created_on  timestamptz(3) NOT NULL,
    expires_at  timestamptz(3) NOT NULL,
    paid_at     timestamptz(3) NULL,
    payment_ref text           COLLATE "C" NULL,
    CONSTRAINT ck_tickets_status CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'))
);

-- Invariant 1, enforced by the database: a partial unique index over the active seated tickets.
-- A ticket leaves the index when it turns terminal, so terminal tickets never collide; MySQL
-- needs a generated column for the same.
CREATE UNIQUE INDEX uq_tickets_active_seat ON tickets (event_id, seat_key)
    WHERE status IN ('PENDING_PAYMENT', 'PAID') AND seat_key IS NOT NULL;
CREATE INDEX ix_tickets_order ON tickets (order_id);
-- count_by_status and revenue_minor: answered from this index alone (index-only scans).
CREATE INDEX ix_tickets_event_status ON tickets (event_id, status, venue_id, price_minor);
-- A seat-lock rebuild's keyset pages of an event's active tickets, in id order.
CREATE INDEX ix_tickets_event_active ON tickets (event_id, id)
    WHERE status IN ('PENDING_PAYMENT', 'PAID');

-- Invariant 2: a general-admission zone's capacity over up to 32 shard rows, each with its
-- slice (`capacity`) and count (`active`), raised with `active + n <= capacity` as the guard.
CREATE TABLE zone_usage (
    event_id  uuid     NOT NULL,
    zone_code text     COLLATE "C" NOT NULL,
    shard     smallint NOT NULL,
    capacity  bigint   NOT NULL,
    active    bigint   NOT NULL,
    PRIMARY KEY (event_id, zone_code, shard),
    CONSTRAINT ck_zone_usage_within CHECK (active >= 0 AND active <= capacity)
);

-- Invariant 6: active tickets per (event, customer).
CREATE TABLE customer_usage (
    event_id    uuid   NOT NULL,
    customer_id text   COLLATE "C" NOT NULL,
    active      bigint NOT NULL,
    PRIMARY KEY (event_id, customer_id),
    CONSTRAINT ck_customer_usage_active CHECK (active >= 0)
);

-- Invariant 5: an idempotency key per customer, written with the order it produced.
CREATE TABLE idempotency_keys (
    customer_id text           COLLATE "C" NOT NULL,
    idem_key    text           COLLATE "C" NOT NULL,
    fingerprint text           COLLATE "C" NOT NULL,
    order_id    uuid           NOT NULL,
    created_at  timestamptz(3) NOT NULL, -- when the order was created
    PRIMARY KEY (customer_id, idem_key)
);

CREATE INDEX ix_idempotency_keys_created ON idempotency_keys (created_at);

-- The payments ledger: every notification once per provider reference. An outcome other than
-- PAID / PAID_LATE is a refund owed until `refunded_at`; the partial index holds only those.
CREATE TABLE payments (
    reference    text           COLLATE "C" NOT NULL PRIMARY KEY,
    order_id     uuid           NOT NULL, -- as the provider named it; may name no order
    amount_minor bigint         NOT NULL,
    currency     text           COLLATE "C" NOT NULL,
    received_at  timestamptz(3) NOT NULL, -- the deadline is judged by this instant
    outcome      text           NOT NULL,
    refunded_at  timestamptz(3) NULL,
    CONSTRAINT ck_payments_outcome CHECK (outcome IN
        ('PAID', 'PAID_LATE', 'AMOUNT_MISMATCH', 'TOO_LATE', 'NOT_PAYABLE', 'UNKNOWN_ORDER'))
);

CREATE INDEX ix_payments_order ON payments (order_id, received_at);
CREATE INDEX ix_payments_refund_owed ON payments (received_at, reference)
    WHERE outcome NOT IN ('PAID', 'PAID_LATE') AND refunded_at IS NULL;
