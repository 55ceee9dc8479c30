-- The waiting list of sold-out events (docs/DESIGN.md, "Waiting list"), as on MySQL: entries in
-- join order, each WAITING, then OFFERED (a pending order on freed seats, `offer_order`), and
-- finally SERVED (paid), LAPSED (the offer expired or was cancelled) or LEFT.
CREATE TABLE waiting_list (
    id          uuid           NOT NULL PRIMARY KEY,
    event_id    uuid           NOT NULL REFERENCES events (id),
    customer    text           COLLATE "C" NOT NULL,
    zone        text           COLLATE "C" NULL, -- NULL: any zone of the event
    party       bigint         NOT NULL CHECK (party BETWEEN 1 AND 100),
    joined_at   timestamptz(3) NOT NULL, -- the list order, then id
    state       text           NOT NULL
        CHECK (state IN ('WAITING', 'OFFERED', 'SERVED', 'LAPSED', 'LEFT')),
    offer_order uuid           NULL,
    offers      bigint         NOT NULL DEFAULT 0
);

-- One open entry per customer and event, so concurrent joins add one.
CREATE UNIQUE INDEX uq_waiting_list_open ON waiting_list (event_id, customer)
    WHERE state IN ('WAITING', 'OFFERED');
CREATE INDEX ix_waiting_list_queue ON waiting_list (event_id, joined_at, id) WHERE state = 'WAITING';
CREATE INDEX ix_waiting_list_offer ON waiting_list (offer_order) WHERE offer_order IS NOT NULL;
