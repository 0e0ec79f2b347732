CREATE TABLE catalogs (
    id BIGSERIAL PRIMARY KEY,
    -- A partner with catalogs is not deleted: their history matters.
    partner_id BIGINT NOT NULL REFERENCES partners (id) ON DELETE RESTRICT,
    slug TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name TEXT NOT NULL CHECK (btrim(name) <> ''),
    description TEXT NOT NULL DEFAULT '',
    available_start TIMESTAMPTZ NOT NULL,
    available_end TIMESTAMPTZ NOT NULL,
    -- 0 means unlimited for both limits.
    user_limit INTEGER NOT NULL DEFAULT 0 CHECK (user_limit >= 0),
    course_enrollments_limit INTEGER NOT NULL DEFAULT 0 CHECK (course_enrollments_limit >= 0),
    is_self_enrollment BOOLEAN NOT NULL DEFAULT FALSE,
    allow_self_unenrollment BOOLEAN NOT NULL DEFAULT FALSE,
    support_email TEXT NOT NULL DEFAULT '',
    authorization_message TEXT NOT NULL DEFAULT '',
    alternative_link TEXT NOT NULL DEFAULT '',
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (available_end >= available_start)
);
CREATE INDEX catalogs_partner_idx ON catalogs (partner_id, name);
CREATE INDEX catalogs_self_enrollment_idx ON catalogs (id) WHERE is_self_enrollment;

CREATE TABLE catalog_email_patterns (
    id BIGSERIAL PRIMARY KEY,
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    pattern TEXT NOT NULL CHECK (pattern = btrim(pattern) AND length(pattern) BETWEEN 1 AND 500),
    UNIQUE (catalog_id, position)
);

CREATE TABLE catalog_courses (
    id BIGSERIAL PRIMARY KEY,
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    -- A course listed in a catalog is not deleted.
    course_id BIGINT NOT NULL REFERENCES courses (id) ON DELETE RESTRICT,
    position INTEGER NOT NULL CHECK (position >= 0),
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (catalog_id, course_id),
    -- Deferred so that a reorder can shift several positions in one transaction.
    CONSTRAINT catalog_courses_position_key UNIQUE (catalog_id, position) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX catalog_courses_course_idx ON catalog_courses (course_id);
