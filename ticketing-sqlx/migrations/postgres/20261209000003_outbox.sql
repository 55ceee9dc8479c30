-- The outbox on PostgreSQL, numbered after commit as on MySQL (docs/DESIGN.md, "The event
-- stream"). Writers insert with `id` from a sequence (nextval is not transactional and takes no
-- lock held to COMMIT) and `seq` NULL; one numbering transaction at a time (serialised on the
-- `outbox_relay` row) gives committed rows their `seq` in id order, continuing from
-- `outbox_relay.numbered_seq`.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq         bigint         NULL, -- publication order; NULL until numbered
    kind        text           NOT NULL,
    order_id    uuid           NOT NULL,
    recorded_at timestamptz(3) NOT NULL,
    payload     text           NOT NULL, -- OutboxEvent as JSON
    CONSTRAINT uq_outbox_seq UNIQUE (seq)
);

-- The numbering reads the unnumbered rows in id order.
CREATE INDEX ix_outbox_unnumbered ON outbox (id) WHERE seq IS NULL;

-- The relay's state, one row (id = 1): how far the outbox was numbered and published, and the
-- lease that lets one relay publish at a time.
CREATE TABLE outbox_relay (
    id           smallint       NOT NULL PRIMARY KEY,
    sent_seq     bigint         NOT NULL,
    numbered_seq bigint         NOT NULL,
    holder       text           COLLATE "C" NULL,
    lease_until  timestamptz(3) NULL
);

INSERT INTO outbox_relay (id, sent_seq, numbered_seq, holder, lease_until) VALUES (1, 0, 0, NULL, NULL);
