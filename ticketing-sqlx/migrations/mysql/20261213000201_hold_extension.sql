-- Hold extension (docs/DESIGN.md, "Hold extension"): how often the holder of a pending order
-- moved its payment deadline. The deadline itself stays where it was (`orders.expires_at` and
-- each ticket's `expires_at`); an extension raises this count in the same compare-and-set on the
-- order row that moves them, so the count and the deadline never disagree. Existing orders were
-- never extended.
ALTER TABLE orders
    ADD COLUMN extensions INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'times the payment deadline was extended';
