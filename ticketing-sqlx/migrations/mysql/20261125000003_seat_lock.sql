-- The database-only seat lock (`MySqlSeatLock`): seat inventory rows locked with SELECT … FOR UPDATE,
-- as pretix and alf.io do. It knows no venue layout: a seat or zone row is created the first time
-- it is asked for, and a missing row means "free".

-- One row per loaded event: the "loaded" marker. Holds read it with a shared lock; a rebuild takes
-- it exclusively, so holds and a rebuild of the same event never interleave.
CREATE TABLE seat_lock_events (
    event_id BINARY(16) NOT NULL,
    loaded   BOOLEAN    NOT NULL,
    PRIMARY KEY (event_id)
) ENGINE = InnoDB;

-- One row per seat ever asked for. Free: order_id NULL (or a lapsed `until`). Held: order_id and
-- until. Sold: order_id and until NULL.
CREATE TABLE seat_lock_seats (
    event_id BINARY(16)  NOT NULL,
    seat_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    order_id BINARY(16)  NULL,
    until    DATETIME(3) NULL,
    PRIMARY KEY (event_id, seat_key)
) ENGINE = InnoDB;

-- One row per general-admission zone ever asked for: the row a hold locks to count the zone.
CREATE TABLE seat_lock_zones (
    event_id  BINARY(16)  NOT NULL,
    zone_code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (event_id, zone_code)
) ENGINE = InnoDB;

-- Places held (until set) or sold (until NULL) per order in a general-admission zone.
CREATE TABLE seat_lock_zone_holds (
    event_id  BINARY(16)  NOT NULL,
    zone_code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    order_id  BINARY(16)  NOT NULL,
    quantity  INT UNSIGNED NOT NULL,
    until     DATETIME(3) NULL,
    PRIMARY KEY (event_id, zone_code, order_id)
) ENGINE = InnoDB;
