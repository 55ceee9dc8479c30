-- Count-based price tiers (docs/DESIGN.md, "Price tiers"), as on MySQL: the tiers of an event's
-- zones in the catalog, the counters of their active tickets in shard rows, and the tier each
-- ticket counts in.

-- Tier `tier` (0 is the first) of a zone of an event: `size` tickets at `price_minor`.
CREATE TABLE event_price_tiers (
    event_id    uuid    NOT NULL REFERENCES events (id),
    zone_code   text    COLLATE "C" NOT NULL,
    tier        integer NOT NULL,
    size        bigint  NOT NULL,
    price_minor bigint  NOT NULL,
    PRIMARY KEY (event_id, zone_code, tier),
    CONSTRAINT ck_event_price_tiers_size CHECK (size >= 1 AND tier >= 0)
);

-- Active tickets per tier, split over up to 32 shards whose slices add up to the tier's size.
CREATE TABLE tier_usage (
    event_id  uuid    NOT NULL,
    zone_code text    COLLATE "C" NOT NULL,
    tier      integer NOT NULL,
    shard     integer NOT NULL,
    capacity  bigint  NOT NULL, -- this shard's slice of the tier
    active    bigint  NOT NULL,
    PRIMARY KEY (event_id, zone_code, tier, shard),
    CONSTRAINT ck_tier_usage_within CHECK (active >= 0 AND active <= capacity)
);

-- The tier and shard a ticket counts in (NULL past the last tier, or without tiers).
ALTER TABLE tickets
    ADD COLUMN price_tier integer NULL,
    ADD COLUMN tier_shard integer NULL;
