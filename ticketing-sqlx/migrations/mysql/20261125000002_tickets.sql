-- Orders and tickets, the counters behind invariants 2 and 6, idempotency keys and the outbox.
--
-- Tickets carry no foreign keys to the catalog: a foreign key would take a shared lock on the
-- event row for every purchase, and the repository is usable without the catalog tables filled.

-- One row per purchase. Every transition is a compare-and-set on this row first (one row lock per
-- order, which is what makes pay / cancel / expiry race safely and lets sweepers use SKIP LOCKED),
-- then moves the order's tickets in the same transaction.
CREATE TABLE orders (
    id          BINARY(16)   NOT NULL,
    event_id    BINARY(16)   NOT NULL,
    customer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    status      VARCHAR(16) CHARACTER SET ascii NOT NULL,
    expires_at  DATETIME(3)  NOT NULL COMMENT 'payment deadline, UTC',
    PRIMARY KEY (id),
    -- The expiry sweeper: due PENDING_PAYMENT orders, oldest deadline first.
    KEY ix_orders_due (status, expires_at),
    CONSTRAINT ck_orders_status CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'))
) ENGINE = InnoDB;

CREATE TABLE tickets (
    id          BINARY(16)   NOT NULL COMMENT 'UUID v7: time-ordered, so inserts append to the primary key',
    order_id    BINARY(16)   NOT NULL,
    event_id    BINARY(16)   NOT NULL,
    venue_id    BINARY(16)   NOT NULL,
    zone_code   VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seat_key    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'zone:row:number; NULL for general admission',
    customer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    price_minor BIGINT       NOT NULL,
    currency    CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    status      VARCHAR(16) CHARACTER SET ascii NOT NULL,
    created_on  DATETIME(3)  NOT NULL,
    expires_at  DATETIME(3)  NOT NULL,
    paid_at     DATETIME(3)  NULL,
    payment_ref VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
    -- Invariant 1, enforced by the database: the seat key while the ticket is active, NULL once it
    -- released the seat. A UNIQUE key allows many NULLs, so terminal tickets never collide.
    -- STORED (not VIRTUAL): the value is materialised in the row, so the unique index never has to
    -- recompute it (InnoDB's indexed virtual columns have had purge and crash-recovery bugs) and the
    -- same DDL works on MySQL 5.7+, 8.x and MariaDB 10.2+.
    active_seat VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin
        AS (IF(status IN ('PENDING_PAYMENT', 'PAID'), seat_key, NULL)) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY uq_tickets_active_seat (event_id, active_seat),
    KEY ix_tickets_order (order_id),
    -- count_by_status (prefix event_id, status) and revenue_minor (all four columns): both are
    -- answered from this index alone, without touching the rows.
    KEY ix_tickets_event_status (event_id, status, venue_id, price_minor),
    CONSTRAINT ck_tickets_status CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED'))
) ENGINE = InnoDB;

-- Invariant 2: active general-admission tickets per (event, zone). Raised by a conditional UPDATE
-- (`active + n <= capacity`) when an order is inserted, lowered when its tickets turn terminal, in
-- the same transaction.
CREATE TABLE zone_usage (
    event_id  BINARY(16)  NOT NULL,
    zone_code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    active    INT UNSIGNED NOT NULL,
    PRIMARY KEY (event_id, zone_code)
) ENGINE = InnoDB;

-- Invariant 6: active tickets per (event, customer), kept like zone_usage.
CREATE TABLE customer_usage (
    event_id    BINARY(16)   NOT NULL,
    customer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    active      INT UNSIGNED NOT NULL,
    PRIMARY KEY (event_id, customer_id)
) ENGINE = InnoDB;

-- Invariant 5: an idempotency key per customer, written with the order it produced.
CREATE TABLE idempotency_keys (
    customer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    idem_key    VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    fingerprint VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    order_id    BINARY(16)   NOT NULL,
    PRIMARY KEY (customer_id, idem_key)
) ENGINE = InnoDB;

-- The outbox. `seq` is not AUTO_INCREMENT: InnoDB hands out auto-increment values at INSERT time,
-- not at COMMIT, so a relay reading `seq > last_seen` could pass over a row whose transaction
-- commits late. Each writing transaction instead takes its numbers from `outbox_sequence` as its
-- last statement; the row lock is held until COMMIT, so numbers increase in commit order and have
-- no gaps (a rollback returns them).
CREATE TABLE outbox (
    seq         BIGINT UNSIGNED NOT NULL,
    kind        VARCHAR(32) CHARACTER SET ascii NOT NULL,
    order_id    BINARY(16)  NOT NULL,
    recorded_at DATETIME(3) NOT NULL,
    payload     LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'OutboxEvent as JSON',
    PRIMARY KEY (seq),
    CONSTRAINT ck_outbox_payload CHECK (JSON_VALID(payload))
) ENGINE = InnoDB;

CREATE TABLE outbox_sequence (
    id       TINYINT UNSIGNED NOT NULL,
    last_seq BIGINT UNSIGNED  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT INTO outbox_sequence (id, last_seq) VALUES (1, 0);
