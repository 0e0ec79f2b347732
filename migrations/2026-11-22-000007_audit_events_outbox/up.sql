-- Tokens for the JSON API; they act as the user who made them.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (btrim(name) <> ''),
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Who changed what, written in the same transaction as the change (rule 11).
CREATE TABLE audit_entries (
    id BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    actor_role TEXT NOT NULL CHECK (actor_role IN ('staff', 'partner_manager', 'learner', 'api_token', 'system')),
    api_token_id BIGINT REFERENCES api_tokens (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    partner_id BIGINT REFERENCES partners (id) ON DELETE SET NULL,
    catalog_id BIGINT REFERENCES catalogs (id) ON DELETE SET NULL,
    before JSONB,
    after JSONB,
    reason TEXT
);
CREATE INDEX audit_entries_recent_idx ON audit_entries (occurred_at DESC, id DESC);
CREATE INDEX audit_entries_partner_idx ON audit_entries (partner_id, occurred_at DESC, id DESC);
CREATE INDEX audit_entries_catalog_idx ON audit_entries (catalog_id, occurred_at DESC, id DESC);
CREATE INDEX audit_entries_actor_idx ON audit_entries (actor_user_id, occurred_at DESC);

-- Learning-analytics events (rule 12); the id doubles as the xAPI statement id.
CREATE TABLE tracking_events (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    partner_id BIGINT REFERENCES partners (id) ON DELETE SET NULL,
    catalog_id BIGINT REFERENCES catalogs (id) ON DELETE SET NULL,
    course_id BIGINT REFERENCES courses (id) ON DELETE SET NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    invitation_id BIGINT REFERENCES invitations (id) ON DELETE SET NULL,
    channel TEXT,
    reason TEXT,
    data JSONB NOT NULL DEFAULT '{}',
    forwarded_at TIMESTAMPTZ,
    forward_attempts INTEGER NOT NULL DEFAULT 0,
    last_forward_error TEXT
);
CREATE INDEX tracking_events_partner_idx ON tracking_events (partner_id, occurred_at DESC);
CREATE INDEX tracking_events_catalog_idx ON tracking_events (catalog_id, occurred_at DESC);
CREATE INDEX tracking_events_unforwarded_idx ON tracking_events (occurred_at) WHERE forwarded_at IS NULL;

-- The email outbox, written in the same transaction as the change that sends it.
CREATE TABLE outbound_emails (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    from_name TEXT NOT NULL DEFAULT '',
    reply_to TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    -- Encrypted link secret, spliced into the bodies at sending and erased afterwards.
    sealed_secret BYTEA,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error TEXT,
    sent_at TIMESTAMPTZ,
    partner_id BIGINT REFERENCES partners (id) ON DELETE SET NULL,
    invitation_id BIGINT REFERENCES invitations (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbound_emails_due_idx ON outbound_emails (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbound_emails_recent_idx ON outbound_emails (created_at DESC, id DESC);
CREATE INDEX outbound_emails_invitation_idx ON outbound_emails (invitation_id) WHERE invitation_id IS NOT NULL;
