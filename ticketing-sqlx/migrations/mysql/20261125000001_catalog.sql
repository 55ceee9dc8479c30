-- The catalog: venues with their zones and seat rows, events with their prices.
-- Ids are UUIDs as BINARY(16); codes and labels are ASCII tokens compared byte by byte (ascii_bin),
-- so `A` and `a` are different rows, as they are in the domain.

CREATE TABLE venues (
    id   BINARY(16)   NOT NULL,
    name VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

CREATE TABLE zones (
    venue_id BINARY(16)  NOT NULL,
    code     VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    position INT UNSIGNED NOT NULL COMMENT 'order of the zone in the venue',
    name     VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL,
    kind     VARCHAR(20) CHARACTER SET ascii NOT NULL,
    capacity INT UNSIGNED NULL COMMENT 'places of a general-admission zone; NULL when seated',
    PRIMARY KEY (venue_id, code),
    CONSTRAINT fk_zones_venue FOREIGN KEY (venue_id) REFERENCES venues (id),
    CONSTRAINT ck_zones_kind CHECK (
        (kind = 'SEATED' AND capacity IS NULL)
        OR (kind = 'GENERAL_ADMISSION' AND capacity IS NOT NULL)
    )
) ENGINE = InnoDB;

CREATE TABLE seat_rows (
    venue_id  BINARY(16)  NOT NULL,
    zone_code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    label     VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    position  INT UNSIGNED NOT NULL COMMENT 'order of the row in the zone',
    seats     INT UNSIGNED NOT NULL COMMENT 'seats are numbered 1..=seats',
    PRIMARY KEY (venue_id, zone_code, label),
    CONSTRAINT fk_seat_rows_zone FOREIGN KEY (venue_id, zone_code) REFERENCES zones (venue_id, code)
) ENGINE = InnoDB;

CREATE TABLE events (
    id                 BINARY(16)   NOT NULL,
    venue_id           BINARY(16)   NOT NULL,
    name               VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL,
    sale_opens         DATETIME(3)  NOT NULL COMMENT 'UTC, inclusive',
    sale_closes        DATETIME(3)  NOT NULL COMMENT 'UTC, exclusive',
    currency           CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    hold_time_ms       BIGINT       NOT NULL,
    per_customer_limit INT UNSIGNED NOT NULL,
    PRIMARY KEY (id),
    KEY ix_events_venue (venue_id),
    CONSTRAINT fk_events_venue FOREIGN KEY (venue_id) REFERENCES venues (id)
) ENGINE = InnoDB;

CREATE TABLE event_prices (
    event_id    BINARY(16)  NOT NULL,
    zone_code   VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    price_minor BIGINT      NOT NULL COMMENT 'in minor units of events.currency',
    PRIMARY KEY (event_id, zone_code),
    CONSTRAINT fk_event_prices_event FOREIGN KEY (event_id) REFERENCES events (id)
) ENGINE = InnoDB;
