-- The catalog on PostgreSQL: venues with their zones and seat rows, events with their prices.
-- Ids are native UUIDs; codes and labels are text compared byte by byte (COLLATE "C"), so `A`
-- and `a` are different rows, as they are in the domain. Times are UTC instants in whole
-- milliseconds (timestamptz(3)), the precision the services keep.

CREATE TABLE venues (
    id   uuid NOT NULL PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE zones (
    venue_id uuid    NOT NULL REFERENCES venues (id),
    code     text    COLLATE "C" NOT NULL,
    position integer NOT NULL, -- order of the zone in the venue
    name     text    NOT NULL,
    kind     text    NOT NULL,
    capacity bigint  NULL,     -- places of a general-admission zone; NULL when seated
    PRIMARY KEY (venue_id, code),
    CONSTRAINT ck_zones_kind CHECK (
        (kind = 'SEATED' AND capacity IS NULL)
        OR (kind = 'GENERAL_ADMISSION' AND capacity IS NOT NULL)
    )
);

CREATE TABLE seat_rows (
    venue_id  uuid    NOT NULL,
    zone_code text    COLLATE "C" NOT NULL,
    label     text    COLLATE "C" NOT NULL,
    position  integer NOT NULL, -- order of the row in the zone
    seats     bigint  NOT NULL, -- seats are numbered 1..=seats
    PRIMARY KEY (venue_id, zone_code, label),
    FOREIGN KEY (venue_id, zone_code) REFERENCES zones (venue_id, code)
);

CREATE TABLE events (
    id                 uuid           NOT NULL PRIMARY KEY,
    venue_id           uuid           NOT NULL REFERENCES venues (id),
    name               text           NOT NULL,
    sale_opens         timestamptz(3) NOT NULL, -- inclusive
    sale_closes        timestamptz(3) NOT NULL, -- exclusive
    currency           text           COLLATE "C" NOT NULL,
    hold_time_ms       bigint         NOT NULL,
    per_customer_limit bigint         NOT NULL
);

CREATE INDEX ix_events_venue ON events (venue_id);
-- Events by the end of their sale (`CatalogRepository::events_closed`, a keyset walk).
CREATE INDEX ix_events_closes ON events (sale_closes, id);

CREATE TABLE event_prices (
    event_id    uuid   NOT NULL REFERENCES events (id),
    zone_code   text   COLLATE "C" NOT NULL,
    price_minor bigint NOT NULL, -- in minor units of events.currency
    PRIMARY KEY (event_id, zone_code)
);
