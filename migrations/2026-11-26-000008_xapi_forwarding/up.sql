-- Forwarding to a learning record store: a runner holds a batch for a while (lease), and
-- a statement the store refused waits before it is offered again.
ALTER TABLE tracking_events ADD COLUMN forward_lease_until TIMESTAMPTZ;
ALTER TABLE tracking_events ADD COLUMN last_forward_error_at TIMESTAMPTZ;
-- Statements in order for the statements API.
CREATE INDEX tracking_events_order_idx ON tracking_events (occurred_at, id);
-- The latest forwarding error, for the staff page.
CREATE INDEX tracking_events_forward_error_idx ON tracking_events (last_forward_error_at)
    WHERE last_forward_error_at IS NOT NULL;
