-- Channel-reserved seats (docs/DESIGN.md, "Channel reservations"): seats an event keeps back for
-- a sales channel. The purchase's transaction reads the rows of its seats in share mode and
-- refuses a seat still reserved for another channel; a release marks rows released in one
-- transaction with its outbox row, so a purchase sees a seat either reserved or released.

-- A sales channel of an event; only the SHA-256 of its key is stored.
CREATE TABLE channels (
    event_id BINARY(16) NOT NULL,
    code     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    key_hash BINARY(32) NOT NULL COMMENT 'SHA-256 of the key',
    PRIMARY KEY (event_id, code),
    CONSTRAINT fk_channels_event FOREIGN KEY (event_id) REFERENCES events (id)
) ENGINE = InnoDB;

-- A seat kept for a channel: at most one channel per seat of an event, ever (released rows
-- stay, so a seat given to the public is not kept again).
CREATE TABLE channel_seats (
    event_id     BINARY(16)  NOT NULL,
    seat_key     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'zone:row:number',
    channel_code VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    released     BOOLEAN     NOT NULL DEFAULT FALSE,
    PRIMARY KEY (event_id, seat_key),
    KEY ix_channel_seats_channel (event_id, channel_code, seat_key),
    CONSTRAINT fk_channel_seats_channel FOREIGN KEY (event_id, channel_code)
        REFERENCES channels (event_id, code)
) ENGINE = InnoDB;
