-- General admission without a hot row.
--
-- Before: one `zone_usage` row per (event, zone), raised by every purchase in the zone and locked
-- until COMMIT, so a general-admission sale committed one purchase at a time.
--
-- Now a zone's capacity is split over up to 32 shard rows, each with its own slice (`capacity`)
-- and count (`active`). A purchase takes its places from shards that have room, skipping shards
-- other purchases have locked (`FOR UPDATE SKIP LOCKED`), and records on each ticket the shard it
-- counts in (`tickets.usage_shard`) so that the release lowers the same shard. Every shard stays
-- within its slice (`active + n <= capacity` in the raising UPDATE), and the slices add up to the
-- zone's capacity, so invariant 2 is still enforced by the database alone.
ALTER TABLE zone_usage
    ADD COLUMN shard SMALLINT UNSIGNED NOT NULL DEFAULT 0 AFTER zone_code,
    ADD COLUMN capacity INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'this shard''s slice of the zone' AFTER shard,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (event_id, zone_code, shard);

-- Counters written before shards existed become shard 0 with the zone's whole capacity (from the
-- catalog when it has the zone); a zone that has a row keeps its shards as they are, so these
-- zones stay single-shard. Without catalog data the slice is the current count: the zone takes
-- no more purchases until places are released, which never oversells.
UPDATE zone_usage u
    LEFT JOIN events e ON e.id = u.event_id
    LEFT JOIN zones z ON z.venue_id = e.venue_id AND z.code = u.zone_code
SET u.capacity = GREATEST(u.active, COALESCE(z.capacity, u.active));

-- The shard a general-admission ticket counts in; NULL for seats (and, read as shard 0, for
-- general-admission tickets written before shards existed).
ALTER TABLE tickets
    ADD COLUMN usage_shard SMALLINT UNSIGNED NULL COMMENT 'zone_usage shard of a general-admission ticket' AFTER seat_key;
