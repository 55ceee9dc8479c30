-- Vouchers and promo codes (docs/DESIGN.md, "Vouchers"): the catalog's voucher definitions,
-- hidden zones, and the counters of their uses, which the purchase raises and every terminal
-- transition lowers in the order's own transaction.

-- A voucher of an event: a discount (an amount off each ticket, or a share of its price in basis
-- points) or access to a hidden zone, within a number of uses and a validity window.
CREATE TABLE vouchers (
    event_id         BINARY(16)   NOT NULL,
    code             VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    effect           VARCHAR(16) CHARACTER SET ascii NOT NULL,
    amount_minor     BIGINT       NULL COMMENT 'AMOUNT: off each ticket, in events.currency',
    basis_points     INT UNSIGNED NULL COMMENT 'PERCENT: share off each ticket, 10000 = all',
    zone_code        VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'ZONE_ACCESS: the hidden zone',
    max_uses         INT UNSIGNED NOT NULL,
    max_per_customer INT UNSIGNED NOT NULL,
    valid_from       DATETIME(3)  NOT NULL COMMENT 'UTC, inclusive',
    valid_until      DATETIME(3)  NOT NULL COMMENT 'UTC, exclusive',
    PRIMARY KEY (event_id, code),
    CONSTRAINT fk_vouchers_event FOREIGN KEY (event_id) REFERENCES events (id),
    CONSTRAINT ck_vouchers_effect CHECK (
        (effect = 'AMOUNT' AND amount_minor IS NOT NULL)
        OR (effect = 'PERCENT' AND basis_points IS NOT NULL)
        OR (effect = 'ZONE_ACCESS' AND zone_code IS NOT NULL)
    )
) ENGINE = InnoDB;

-- A hidden zone is sold only to orders using a voucher that opens it, and left off the public
-- seat map.
ALTER TABLE event_prices ADD COLUMN hidden BOOLEAN NOT NULL DEFAULT FALSE;

-- The voucher an order uses, so the transition that makes the order terminal gives its use back.
ALTER TABLE orders ADD COLUMN voucher_code VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL;

-- Active orders (PENDING_PAYMENT or PAID) per voucher, raised by a conditional UPDATE
-- (`active < max_uses`) in the purchase's transaction, lowered when the order turns terminal.
-- The limits are copied from the voucher by its first use (vouchers do not change), so a late
-- payment taking an expired order back checks them without the catalog.
CREATE TABLE voucher_usage (
    event_id         BINARY(16)   NOT NULL,
    code             VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    max_uses         INT UNSIGNED NOT NULL,
    max_per_customer INT UNSIGNED NOT NULL,
    active           INT UNSIGNED NOT NULL,
    PRIMARY KEY (event_id, code),
    CONSTRAINT ck_voucher_usage_within CHECK (active <= max_uses)
) ENGINE = InnoDB;

-- Active orders per voucher and customer, kept like voucher_usage.
CREATE TABLE voucher_customer_usage (
    event_id    BINARY(16)   NOT NULL,
    code        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    customer_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    active      INT UNSIGNED NOT NULL,
    PRIMARY KEY (event_id, code, customer_id)
) ENGINE = InnoDB;
