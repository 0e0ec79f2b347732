DROP INDEX tracking_events_forward_error_idx;
DROP INDEX tracking_events_order_idx;
ALTER TABLE tracking_events DROP COLUMN last_forward_error_at;
ALTER TABLE tracking_events DROP COLUMN forward_lease_until;
