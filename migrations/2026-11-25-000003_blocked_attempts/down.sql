DROP TABLE refused_joins;
DROP INDEX tracking_events_blocked_idx;
