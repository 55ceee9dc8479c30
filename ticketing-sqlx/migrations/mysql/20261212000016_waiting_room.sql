-- The waiting room (`MySqlWaitingRoom`): per-event admission policies, the queues and the
-- admissions. docs/DESIGN.md, "Waiting room".

-- One row per event that ever had a policy. `mode` NULL: no policy now (the row keeps the
-- counters, so admission ids stay unique). Admit takes the row FOR UPDATE and joins take it in
-- share mode: admission steps of one event run one at a time, never during a join.
CREATE TABLE waiting_room_policies (
    event_id        BINARY(16)   NOT NULL,
    mode            VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    admission_limit INT UNSIGNED NULL,
    queue_order     VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    window_ms       BIGINT       NULL,
    -- Admissions issued so far: the last admission id.
    issued          BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- The rate's window: a second (ms since the epoch / 1000) and its admissions.
    rate_second     BIGINT       NOT NULL DEFAULT 0,
    rate_count      INT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id)
) ENGINE = InnoDB;

-- The buyers waiting, in exit order by (score, arrival): score 0 in FIFO, the lottery number in
-- the random order.
CREATE TABLE waiting_room_queue (
    event_id    BINARY(16)      NOT NULL,
    customer_id VARCHAR(128)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    score       BIGINT UNSIGNED NOT NULL,
    arrival     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    PRIMARY KEY (event_id, customer_id),
    UNIQUE KEY uq_waiting_room_arrival (arrival),
    KEY ix_waiting_room_exit (event_id, score, arrival)
) ENGINE = InnoDB;

-- The admissions not used up: live until `expires_at`; `in_use` while a purchase runs with it.
-- A bought admission is deleted; a lapsed one by the next admission step.
CREATE TABLE waiting_room_admissions (
    event_id     BINARY(16)      NOT NULL,
    customer_id  VARCHAR(128)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    admission_id BIGINT UNSIGNED NOT NULL,
    expires_at   DATETIME(3)     NOT NULL,
    in_use       BOOLEAN         NOT NULL,
    PRIMARY KEY (event_id, customer_id),
    KEY ix_waiting_room_expiry (event_id, expires_at)
) ENGINE = InnoDB;
