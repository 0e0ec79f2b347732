-- Status is derived from the timestamps, never stored (rule 5).
CREATE TABLE invitations (
    id BIGSERIAL PRIMARY KEY,
    -- Catalogs with invitations are kept for their history.
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE RESTRICT,
    email TEXT NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- SHA-256 of the emailed token; the token itself is never stored.
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    channel TEXT NOT NULL CHECK (channel IN ('manual', 'bulk', 'self_enrollment', 'pre_enrollment', 'api')),
    invited_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    invited_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    declined_at TIMESTAMPTZ,
    removed_at TIMESTAMPTZ,
    removed_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    removal_reason TEXT,
    send_count INTEGER NOT NULL DEFAULT 1 CHECK (send_count >= 0),
    last_sent_at TIMESTAMPTZ,
    reminder_sent_at TIMESTAMPTZ,
    CHECK (NOT (accepted_at IS NOT NULL AND declined_at IS NOT NULL)),
    CHECK (expires_at >= invited_at)
);
-- At most one active (sent or accepted) invitation per catalog and email.
CREATE UNIQUE INDEX invitations_one_active_idx ON invitations (catalog_id, email)
    WHERE removed_at IS NULL AND declined_at IS NULL;
CREATE INDEX invitations_catalog_listing_idx ON invitations (catalog_id, invited_at DESC, id DESC);
CREATE INDEX invitations_catalog_email_idx ON invitations (catalog_id, email text_pattern_ops);
CREATE INDEX invitations_email_idx ON invitations (email);
CREATE INDEX invitations_user_idx ON invitations (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX invitations_pending_expiry_idx ON invitations (expires_at)
    WHERE accepted_at IS NULL AND declined_at IS NULL AND removed_at IS NULL;

-- One row per (catalog, user), pointing at the invitation that let them in.
CREATE TABLE catalog_learners (
    id BIGSERIAL PRIMARY KEY,
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE RESTRICT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invitation_id BIGINT NOT NULL REFERENCES invitations (id) ON DELETE RESTRICT,
    is_active BOOLEAN NOT NULL,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    removed_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (catalog_id, user_id),
    CHECK (NOT (is_active AND removed_at IS NOT NULL))
);
CREATE INDEX catalog_learners_active_idx ON catalog_learners (catalog_id, joined_at DESC, id DESC) WHERE is_active;
CREATE INDEX catalog_learners_catalog_idx ON catalog_learners (catalog_id, joined_at DESC, id DESC);
CREATE INDEX catalog_learners_user_idx ON catalog_learners (user_id);

-- Paid access to a course granted by a catalog: one per (user, course) across the platform.
CREATE TABLE licences (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id BIGINT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    -- The owning catalog: the one that granted or last re-granted the licence.
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE RESTRICT,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, course_id)
);
CREATE INDEX licences_catalog_active_idx ON licences (catalog_id, course_id) WHERE is_active;
CREATE INDEX licences_catalog_idx ON licences (catalog_id, updated_at DESC, id DESC);
CREATE INDEX licences_course_idx ON licences (course_id);
