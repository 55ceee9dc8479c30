-- Count-based price tiers (docs/DESIGN.md, "Price tiers"): the tiers of an event's zones in the
-- catalog, the counters of their active tickets in shard rows, and the tier each ticket counts
-- in, which the purchase raises and every terminal transition lowers in the order's own
-- transaction.

-- Tier `tier` (0 is the first) of a zone of an event: `size` tickets at `price_minor` (in
-- events.currency); after the last tier the zone's price in event_prices applies.
CREATE TABLE event_price_tiers (
    event_id    BINARY(16) NOT NULL,
    zone_code   VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tier        INT        NOT NULL,
    size        BIGINT     NOT NULL,
    price_minor BIGINT     NOT NULL,
    PRIMARY KEY (event_id, zone_code, tier),
    CONSTRAINT fk_event_price_tiers_event FOREIGN KEY (event_id) REFERENCES events (id),
    CONSTRAINT ck_event_price_tiers_size CHECK (size >= 1 AND tier >= 0)
) ENGINE = InnoDB;

-- Active tickets (PENDING_PAYMENT or PAID) per tier, split over up to 32 shards whose slices
-- (`capacity`) add up to the tier's size, as zone_usage splits a general-admission zone: a
-- purchase raises shards that no other transaction holds (`FOR UPDATE SKIP LOCKED`) with
-- `active + n <= capacity` as the guard, so no tier is a hot row and none passes its size.
CREATE TABLE tier_usage (
    event_id  BINARY(16) NOT NULL,
    zone_code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tier      INT        NOT NULL,
    shard     INT        NOT NULL,
    capacity  BIGINT     NOT NULL COMMENT 'this shard''s slice of the tier',
    active    BIGINT     NOT NULL,
    PRIMARY KEY (event_id, zone_code, tier, shard),
    CONSTRAINT ck_tier_usage_within CHECK (active >= 0 AND active <= capacity)
) ENGINE = InnoDB;

-- The tier and shard a ticket counts in (NULL past the last tier, or in a zone without tiers),
-- so the release lowers the same shard and a late payment takes the same tier back.
ALTER TABLE tickets
    ADD COLUMN price_tier INT NULL COMMENT 'tier of event_price_tiers the ticket was priced in',
    ADD COLUMN tier_shard INT NULL COMMENT 'tier_usage shard the ticket counts in';
