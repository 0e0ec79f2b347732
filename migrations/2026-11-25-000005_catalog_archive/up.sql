-- An archived catalog is hidden from learners and from the partner's lists; its data stays.
ALTER TABLE catalogs ADD COLUMN archived_at TIMESTAMPTZ;
ALTER TABLE catalogs ADD COLUMN archived_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
