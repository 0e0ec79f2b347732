DROP INDEX users_full_name_trgm_idx;
DROP INDEX users_email_trgm_idx;
DROP INDEX invitations_email_trgm_idx;

CREATE INDEX invitations_email_trgm_idx ON invitations USING gin (email gin_trgm_ops);
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_full_name_trgm_idx ON users USING gin (full_name gin_trgm_ops);
