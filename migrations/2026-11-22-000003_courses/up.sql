-- Course runs of the platform. A course is paid when it has any mode other than audit and honor.
CREATE TABLE courses (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE CHECK (key <> '' AND length(key) <= 255),
    -- Courses with enrolments keep their organisation.
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE RESTRICT,
    title TEXT NOT NULL CHECK (btrim(title) <> ''),
    starts_at TIMESTAMPTZ,
    ends_at TIMESTAMPTZ,
    modes TEXT[] NOT NULL CHECK (cardinality(modes) >= 1 AND array_position(modes, NULL) IS NULL),
    is_paid BOOLEAN NOT NULL GENERATED ALWAYS AS (NOT (modes <@ ARRAY['audit', 'honor']::TEXT[])) STORED,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at >= starts_at)
);
CREATE INDEX courses_organisation_idx ON courses (organisation_id);
CREATE INDEX courses_key_pattern_idx ON courses (key text_pattern_ops);

-- Courses any partner may put in its catalogs.
CREATE TABLE shared_pool_courses (
    course_id BIGINT PRIMARY KEY REFERENCES courses (id) ON DELETE CASCADE,
    added_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The platform's own enrolment record: one per (user, course).
CREATE TABLE platform_enrollments (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id BIGINT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode ~ '^[a-z][a-z0-9_-]*$'),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, course_id)
);
CREATE INDEX platform_enrollments_course_idx ON platform_enrollments (course_id);
