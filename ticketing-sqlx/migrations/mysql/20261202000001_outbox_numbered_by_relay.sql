-- The outbox without a global lock on the commit path.
--
-- Before: every writing transaction took its outbox numbers from the one `outbox_sequence` row
-- and held that row's lock until COMMIT, so every purchase, payment and expiry of every event
-- committed one after another.
--
-- Now a writer inserts its rows with an AUTO_INCREMENT `id` (InnoDB hands it out under a short
-- mutex, not a lock held to COMMIT) and `seq` NULL. `id` is unique but not in commit order: a
-- slow transaction can commit a lower `id` after a faster one committed a higher one. The
-- published order number `seq` is given later, to committed rows only, by one numbering
-- transaction at a time (serialised on the `outbox_relay` row): it numbers the committed
-- unnumbered rows in `id` order, continuing from `outbox_relay.numbered_seq`. So `seq` stays what
-- the relay, the sinks and the consumers rely on: unique, gapless, increasing, and never given to
-- a row below one that is already numbered. docs/DESIGN.md ("The event stream") says why the
-- changes of one order still get increasing numbers.
ALTER TABLE outbox
    DROP PRIMARY KEY,
    ADD COLUMN id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT FIRST,
    MODIFY seq BIGINT UNSIGNED NULL COMMENT 'publication order; NULL until numbered',
    ADD PRIMARY KEY (id),
    -- The numbering reads `seq IS NULL` in id order, the relay `seq > cursor`: both from here.
    ADD UNIQUE KEY uq_outbox_seq (seq);

-- The last number given: every row with `seq <= numbered_seq` is numbered.
ALTER TABLE outbox_relay
    ADD COLUMN numbered_seq BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER sent_seq;

UPDATE outbox_relay
SET numbered_seq = (SELECT last_seq FROM outbox_sequence WHERE id = 1)
WHERE id = 1;

DROP TABLE outbox_sequence;
