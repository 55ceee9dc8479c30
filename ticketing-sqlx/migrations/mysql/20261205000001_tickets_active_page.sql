-- A seat-lock rebuild reads an event's active tickets in pages by ticket id (keyset pagination:
-- `event_id = ? AND id > ? ... ORDER BY id LIMIT ?`). This index serves that range in id order,
-- so a page never sorts and never reads past its own rows; `status` in the index lets InnoDB skip
-- the terminal tickets of the range without reading their rows (index condition pushdown).
-- Built in place, without blocking writes.
ALTER TABLE tickets
    ADD KEY ix_tickets_event_id (event_id, id, status),
    ALGORITHM = INPLACE, LOCK = NONE;
