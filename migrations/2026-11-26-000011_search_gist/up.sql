-- Search boxes match any part of an address or name (ILIKE '%…%'). A GIN trigram index
-- reads the whole posting list of every trigram in the typed text, and addresses share
-- most of theirs ("son", "com", "exa…"): a full address took 9–14 ms on 100,000
-- invitations. A GiST signature tree answers the same in 0.1–0.5 ms; it costs about
-- 6 µs more per inserted row.
DROP INDEX invitations_email_trgm_idx;
DROP INDEX users_email_trgm_idx;
DROP INDEX users_full_name_trgm_idx;

CREATE INDEX invitations_email_trgm_idx ON invitations USING gist (email gist_trgm_ops (siglen = 64));
CREATE INDEX users_email_trgm_idx ON users USING gist (email gist_trgm_ops (siglen = 64));
CREATE INDEX users_full_name_trgm_idx ON users USING gist (full_name gist_trgm_ops (siglen = 64));
