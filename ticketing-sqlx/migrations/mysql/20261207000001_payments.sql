-- The payments ledger: every payment notification, once per provider reference, written in the
-- same transaction as its effect on the order (issue: money the provider took must never go
-- unrecorded). An outcome other than PAID / PAID_LATE is a refund owed until `refunded_at`.
CREATE TABLE payments (
    reference    VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    order_id     BINARY(16)   NOT NULL COMMENT 'as the provider named it; may name no order',
    amount_minor BIGINT       NOT NULL,
    currency     CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    received_at  DATETIME(3)  NOT NULL COMMENT 'UTC; the deadline is judged by this instant',
    outcome      VARCHAR(20) CHARACTER SET ascii NOT NULL,
    refunded_at  DATETIME(3)  NULL COMMENT 'when the refund owed was reported sent',
    -- 1 while a refund is owed, NULL otherwise: the index below then holds only what is owed.
    refund_owed  TINYINT AS (IF(outcome NOT IN ('PAID', 'PAID_LATE') AND refunded_at IS NULL, 1, NULL)) STORED,
    PRIMARY KEY (reference),
    KEY ix_payments_order (order_id, received_at),
    KEY ix_payments_refund_owed (refund_owed, received_at),
    CONSTRAINT ck_payments_outcome CHECK (outcome IN
        ('PAID', 'PAID_LATE', 'AMOUNT_MISMATCH', 'TOO_LATE', 'NOT_PAYABLE', 'UNKNOWN_ORDER'))
) ENGINE = InnoDB;
