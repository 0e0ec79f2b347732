-- Institutions that own courses, e.g. ACMEx.
CREATE TABLE organisations (
    id BIGSERIAL PRIMARY KEY,
    short_name TEXT NOT NULL UNIQUE CHECK (short_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND length(short_name) <= 64),
    name TEXT NOT NULL CHECK (btrim(name) <> ''),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Corporate partners, each backed by one organisation.
CREATE TABLE partners (
    id BIGSERIAL PRIMARY KEY,
    -- An organisation with partners behind it is not deleted.
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE RESTRICT,
    code TEXT NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9-]*$' AND length(code) <= 64),
    name TEXT NOT NULL CHECK (btrim(name) <> ''),
    homepage_url TEXT NOT NULL DEFAULT '',
    logo_url TEXT NOT NULL DEFAULT '',
    accent_colour TEXT NOT NULL DEFAULT '#1f6feb' CHECK (accent_colour ~ '^#[0-9a-fA-F]{6}$'),
    email_sender_name TEXT NOT NULL DEFAULT '',
    support_email TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX partners_organisation_idx ON partners (organisation_id);

-- A user manages at most one partner: the user is the key.
CREATE TABLE partner_managers (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    partner_id BIGINT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    assigned_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    assigned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX partner_managers_partner_idx ON partner_managers (partner_id);
