-- People who sign in. Emails are stored normalised (trimmed, lower-case).
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(btrim(email)) AND email <> ''),
    email_verified_at TIMESTAMPTZ,
    full_name TEXT NOT NULL DEFAULT '',
    -- Unset for accounts created by staff until their first sign-in.
    password_hash TEXT,
    is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sign_in_at TIMESTAMPTZ
);
CREATE INDEX users_created_at_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_email_pattern_idx ON users (email text_pattern_ops);

-- Single-use, expiring tokens; only the SHA-256 of the token is kept.
CREATE TABLE user_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    new_email TEXT CHECK (new_email IS NULL OR new_email = lower(btrim(new_email))),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    CHECK ((purpose = 'change_email') = (new_email IS NOT NULL))
);
CREATE INDEX user_tokens_user_idx ON user_tokens (user_id);

-- Links an outside identity (e.g. a university student id) to a user: shown as provider:remote_id.
CREATE TABLE external_identities (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9_-]*$'),
    remote_id TEXT NOT NULL CHECK (remote_id <> ''),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, remote_id)
);
CREATE INDEX external_identities_user_idx ON external_identities (user_id);

-- Sign-in attempts, kept in the database so throttling holds across processes.
CREATE TABLE sign_in_attempts (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_attempts_email_idx ON sign_in_attempts (email, attempted_at DESC);
CREATE INDEX sign_in_attempts_ip_idx ON sign_in_attempts (client_ip, attempted_at DESC);
