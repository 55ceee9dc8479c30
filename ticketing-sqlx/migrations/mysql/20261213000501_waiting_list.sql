-- The waiting list of sold-out events (docs/DESIGN.md, "Waiting list"): entries in join order,
-- each WAITING, then OFFERED (a pending order on freed seats, `offer_order`), and finally
-- SERVED (paid), LAPSED (the offer expired or was cancelled) or LEFT.
CREATE TABLE waiting_list (
    id            BINARY(16)   NOT NULL,
    event_id      BINARY(16)   NOT NULL,
    customer      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    zone          VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'NULL: any zone of the event',
    party         BIGINT       NOT NULL,
    joined_at     DATETIME(3)  NOT NULL COMMENT 'UTC; the list order, then id',
    state         VARCHAR(8) CHARACTER SET ascii NOT NULL,
    offer_order   BINARY(16)   NULL,
    offers        BIGINT       NOT NULL DEFAULT 0,
    -- The customer while the entry is open, NULL after: one open entry per customer and event
    -- is the unique key below (many NULLs are allowed), so concurrent joins add one.
    open_customer VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin
        AS (CASE WHEN state IN ('WAITING', 'OFFERED') THEN customer END) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY uq_waiting_list_open (event_id, open_customer),
    KEY ix_waiting_list_queue (event_id, state, joined_at, id),
    KEY ix_waiting_list_offer (offer_order),
    CONSTRAINT fk_waiting_list_event FOREIGN KEY (event_id) REFERENCES events (id),
    CONSTRAINT ck_waiting_list_state CHECK (state IN ('WAITING', 'OFFERED', 'SERVED', 'LAPSED', 'LEFT')),
    CONSTRAINT ck_waiting_list_party CHECK (party BETWEEN 1 AND 100)
) ENGINE = InnoDB;
