-- Search boxes match any part of an address or name (ILIKE '%…%'): trigram indexes keep
-- that fast on large lists.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX invitations_email_trgm_idx ON invitations USING gin (email gin_trgm_ops);
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_full_name_trgm_idx ON users USING gin (full_name gin_trgm_ops);

-- Open invitations of a catalog, newest first: the "sent" and "expired" lists and the
-- dashboard's pending count read only this index.
CREATE INDEX invitations_catalog_open_idx ON invitations (catalog_id, invited_at DESC, id DESC)
    INCLUDE (expires_at)
    WHERE accepted_at IS NULL AND declined_at IS NULL AND removed_at IS NULL;
