-- Managers see each catalog's refused attempts of the last 30 days: paid seats refused
-- are `enrollment.blocked` events; joins the learner limit refused are kept here (the
-- refused join itself changes nothing and leaves no event or audit entry).
CREATE INDEX tracking_events_blocked_idx ON tracking_events (catalog_id, occurred_at)
    WHERE name = 'enrollment.blocked';
CREATE TABLE refused_joins (
    id BIGSERIAL PRIMARY KEY,
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refused_joins_catalog_idx ON refused_joins (catalog_id, occurred_at);
