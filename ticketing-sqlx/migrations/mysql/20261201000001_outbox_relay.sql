-- The outbox relay's state: how far the outbox was published, and the lease that lets one relay
-- publish at a time. One row (id = 1).
--
-- `sent_seq`: every outbox row with `seq <= sent_seq` was published to the event sink. Moved
-- forward after each published batch (`GREATEST`, never backwards by a late relay) and moved back
-- only when the sink is found to have lost entries.
-- `holder` / `lease_until`: the relay that may publish, until when (UTC, the relay's clock). Taken
-- by a compare-and-set: free, lapsed at the caller's `now`, or already the caller's.
CREATE TABLE outbox_relay (
    id          TINYINT UNSIGNED NOT NULL,
    sent_seq    BIGINT UNSIGNED  NOT NULL,
    holder      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
    lease_until DATETIME(3)      NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT INTO outbox_relay (id, sent_seq, holder, lease_until) VALUES (1, 0, NULL, NULL);
