-- Bounded growth (docs/DESIGN.md, "Bounded growth"): idempotency records and published outbox
-- rows are deleted once older than the deployment's retention, oldest first, in bounded batches.
--
-- `idempotency_keys.created_at`: when the key's order was created (the caller's clock, like every
-- time this schema stores). Records from before this migration count as created now, so they
-- live one more retention. The index serves the pruning `DELETE … ORDER BY created_at LIMIT n`.
-- The outbox needs no new index: it is pruned as a prefix by `seq` (`uq_outbox_seq`).
ALTER TABLE idempotency_keys
    ADD COLUMN created_at DATETIME(3) NULL COMMENT 'when the order was created (UTC)';

UPDATE idempotency_keys SET created_at = UTC_TIMESTAMP(3);

ALTER TABLE idempotency_keys
    MODIFY created_at DATETIME(3) NOT NULL COMMENT 'when the order was created (UTC)',
    ADD KEY ix_idempotency_keys_created (created_at);

-- Events by the end of their sale, for dropping the seat-lock state of events that are over
-- (`CatalogRepository::events_closed`, a keyset walk by (sale_closes, id)).
ALTER TABLE events
    ADD KEY ix_events_closes (sale_closes, id);
