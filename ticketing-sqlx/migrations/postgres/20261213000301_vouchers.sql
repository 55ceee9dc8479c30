-- Vouchers and promo codes (docs/DESIGN.md, "Vouchers"), as on MySQL: the catalog's voucher
-- definitions, hidden zones, and the counters of their uses, which the purchase raises and
-- every terminal transition lowers in the order's own transaction.

CREATE TABLE vouchers (
    event_id         uuid           NOT NULL REFERENCES events (id),
    code             text           COLLATE "C" NOT NULL,
    effect           text           NOT NULL,
    amount_minor     bigint         NULL, -- AMOUNT: off each ticket, in events.currency
    basis_points     bigint         NULL, -- PERCENT: share off each ticket, 10000 = all
    zone_code        text           COLLATE "C" NULL, -- ZONE_ACCESS: the hidden zone
    max_uses         bigint         NOT NULL,
    max_per_customer bigint         NOT NULL,
    valid_from       timestamptz(3) NOT NULL, -- inclusive
    valid_until      timestamptz(3) NOT NULL, -- exclusive
    PRIMARY KEY (event_id, code),
    CONSTRAINT ck_vouchers_effect CHECK (
        (effect = 'AMOUNT' AND amount_minor IS NOT NULL)
        OR (effect = 'PERCENT' AND basis_points IS NOT NULL)
        OR (effect = 'ZONE_ACCESS' AND zone_code IS NOT NULL)
    )
);

-- A hidden zone is sold only to orders using a voucher that opens it.
ALTER TABLE event_prices ADD COLUMN hidden boolean NOT NULL DEFAULT false;

-- The voucher an order uses, so the transition that makes the order terminal gives its use back.
ALTER TABLE orders ADD COLUMN voucher_code text COLLATE "C" NULL;

-- Active orders per voucher, raised with `active < max_uses` as the guard; the limits are copied
-- from the voucher by its first use.
CREATE TABLE voucher_usage (
    event_id         uuid   NOT NULL,
    code             text   COLLATE "C" NOT NULL,
    max_uses         bigint NOT NULL,
    max_per_customer bigint NOT NULL,
    active           bigint NOT NULL,
    PRIMARY KEY (event_id, code),
    CONSTRAINT ck_voucher_usage_within CHECK (active >= 0 AND active <= max_uses)
);

-- Active orders per voucher and customer.
CREATE TABLE voucher_customer_usage (
    event_id    uuid   NOT NULL,
    code        text   COLLATE "C" NOT NULL,
    customer_id text   COLLATE "C" NOT NULL,
    active      bigint NOT NULL,
    PRIMARY KEY (event_id, code, customer_id),
    CONSTRAINT ck_voucher_customer_usage_positive CHECK (active >= 0)
);
