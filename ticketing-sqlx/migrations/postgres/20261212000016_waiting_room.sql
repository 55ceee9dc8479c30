-- The waiting room on PostgreSQL (`PgWaitingRoom`): per-event admission policies, the queues and
-- the admissions. docs/DESIGN.md, "Waiting room".

-- One row per event that ever had a policy. `mode` NULL: no policy now (the row keeps the
-- counters, so admission ids stay unique). Admit locks the row FOR UPDATE and joins FOR SHARE:
-- admission steps of one event run one at a time, never during a join.
CREATE TABLE waiting_room_policies (
    event_id        uuid    NOT NULL PRIMARY KEY,
    mode            text    NULL,
    admission_limit integer NULL,
    queue_order     text    NULL,
    window_ms       bigint  NULL,
    -- Admissions issued so far: the last admission id.
    issued          bigint  NOT NULL DEFAULT 0,
    -- The rate's window: a second (ms since the epoch / 1000) and its admissions.
    rate_second     bigint  NOT NULL DEFAULT 0,
    rate_count      integer NOT NULL DEFAULT 0
);

-- The buyers waiting, in exit order by (score, arrival): score 0 in FIFO, the lottery number in
-- the random order.
CREATE TABLE waiting_room_queue (
    event_id    uuid   NOT NULL,
    customer_id text   COLLATE "C" NOT NULL,
    score       bigint NOT NULL,
    arrival     bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (event_id, customer_id)
);
CREATE INDEX ix_waiting_room_exit ON waiting_room_queue (event_id, score, arrival);

-- The admissions not used up: live until `expires_at`; `in_use` while a purchase runs with it.
-- A bought admission is deleted; a lapsed one by the next admission step.
CREATE TABLE waiting_room_admissions (
    event_id     uuid           NOT NULL,
    customer_id  text           COLLATE "C" NOT NULL,
    admission_id bigint         NOT NULL,
    expires_at   timestamptz(3) NOT NULL,
    in_use       boolean        NOT NULL,
    PRIMARY KEY (event_id, customer_id)
);
CREATE INDEX ix_waiting_room_expiry ON waiting_room_admissions (event_id, expires_at);
