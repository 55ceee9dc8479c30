-- The database-only seat lock on PostgreSQL (`PgSeatLock`): seat inventory rows locked with
-- SELECT … FOR UPDATE. It knows no venue layout: a seat or zone row is created the first time it
-- is asked for, and a missing row means "free".

-- One row per loaded event: the "loaded" marker. Holds read it FOR SHARE; a rebuild locks it
-- FOR UPDATE, so holds and a rebuild of the same event never interleave.
CREATE TABLE seat_lock_events (
    event_id uuid    NOT NULL PRIMARY KEY,
    loaded   boolean NOT NULL
);

-- One row per seat ever asked for. Free: order_id NULL (or a lapsed `until`). Held: order_id and
-- until. Sold: order_id and until NULL. Keys compare byte by byte (COLLATE "C"), so one zone's
-- seats are the key range [`zone:`, `zone;`).
CREATE TABLE seat_lock_seats (
    event_id uuid           NOT NULL,
    seat_key text           COLLATE "C" NOT NULL,
    order_id uuid           NULL,
    until    timestamptz(3) NULL,
    PRIMARY KEY (event_id, seat_key)
);

-- One row per general-admission zone ever asked for: the row a hold locks to count the zone.
CREATE TABLE seat_lock_zones (
    event_id  uuid NOT NULL,
    zone_code text COLLATE "C" NOT NULL,
    PRIMARY KEY (event_id, zone_code)
);

-- Places held (until set) or sold (until NULL) per order in a general-admission zone.
CREATE TABLE seat_lock_zone_holds (
    event_id  uuid           NOT NULL,
    zone_code text           COLLATE "C" NOT NULL,
    order_id  uuid           NOT NULL,
    quantity  bigint         NOT NULL,
    until     timestamptz(3) NULL,
    PRIMARY KEY (event_id, zone_code, order_id)
);
