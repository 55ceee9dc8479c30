-- Channel-reserved seats (docs/DESIGN.md, "Channel reservations"), as on MySQL: the purchase's
-- transaction reads the rows of its seats FOR SHARE and refuses a seat still reserved for
-- another channel; a release marks rows released in one transaction with its outbox row.

-- A sales channel of an event; only the SHA-256 of its key is stored.
CREATE TABLE channels (
    event_id uuid  NOT NULL REFERENCES events (id),
    code     text  COLLATE "C" NOT NULL,
    key_hash bytea NOT NULL, -- SHA-256 of the key
    PRIMARY KEY (event_id, code),
    CONSTRAINT ck_channels_key_hash CHECK (octet_length(key_hash) = 32)
);

-- A seat kept for a channel: at most one channel per seat of an event, ever.
CREATE TABLE channel_seats (
    event_id     uuid    NOT NULL,
    seat_key     text    COLLATE "C" NOT NULL, -- zone:row:number
    channel_code text    COLLATE "C" NOT NULL,
    released     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, seat_key),
    FOREIGN KEY (event_id, channel_code) REFERENCES channels (event_id, code)
);
CREATE INDEX ix_channel_seats_channel ON channel_seats (event_id, channel_code, seat_key);
