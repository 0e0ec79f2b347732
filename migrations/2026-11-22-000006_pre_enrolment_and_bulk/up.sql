-- Enrolments waiting for an account: by email or by an external identity (provider:remote_id).
CREATE TABLE pending_enrollments (
    id BIGSERIAL PRIMARY KEY,
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    email TEXT CHECK (email IS NULL OR (email = lower(btrim(email)) AND email <> '')),
    external_provider TEXT,
    external_remote_id TEXT,
    course_ids BIGINT[] NOT NULL DEFAULT '{}' CHECK (array_position(course_ids, NULL) IS NULL),
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    fulfilled_at TIMESTAMPTZ,
    fulfilled_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    cancelled_at TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ,
    last_error TEXT,
    CHECK ((external_provider IS NULL) = (external_remote_id IS NULL)),
    CHECK ((email IS NULL) <> (external_provider IS NULL)),
    CHECK (NOT (fulfilled_at IS NOT NULL AND cancelled_at IS NOT NULL))
);
CREATE UNIQUE INDEX pending_enrollments_open_email_idx ON pending_enrollments (catalog_id, email)
    WHERE email IS NOT NULL AND fulfilled_at IS NULL AND cancelled_at IS NULL;
CREATE UNIQUE INDEX pending_enrollments_open_external_idx
    ON pending_enrollments (catalog_id, external_provider, external_remote_id)
    WHERE external_provider IS NOT NULL AND fulfilled_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX pending_enrollments_email_lookup_idx ON pending_enrollments (email)
    WHERE fulfilled_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX pending_enrollments_external_lookup_idx ON pending_enrollments (external_provider, external_remote_id)
    WHERE fulfilled_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX pending_enrollments_catalog_idx ON pending_enrollments (catalog_id, created_at DESC);

CREATE TABLE bulk_jobs (
    id BIGSERIAL PRIMARY KEY,
    catalog_id BIGINT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    submitted_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    kind TEXT NOT NULL CHECK (kind IN ('invite', 'pre_enroll')),
    status TEXT NOT NULL CHECK (status IN ('pending_approval', 'approved', 'rejected', 'running', 'done', 'failed', 'cancelled')),
    source_name TEXT NOT NULL DEFAULT '',
    total_rows INTEGER NOT NULL DEFAULT 0 CHECK (total_rows >= 0),
    processed_rows INTEGER NOT NULL DEFAULT 0 CHECK (processed_rows >= 0),
    succeeded_rows INTEGER NOT NULL DEFAULT 0 CHECK (succeeded_rows >= 0),
    failed_rows INTEGER NOT NULL DEFAULT 0 CHECK (failed_rows >= 0),
    decided_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    decided_at TIMESTAMPTZ,
    decision_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    -- Lease so that one process at a time runs a job, and a crashed one is picked up again.
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    CHECK (processed_rows <= total_rows)
);
CREATE INDEX bulk_jobs_catalog_idx ON bulk_jobs (catalog_id, created_at DESC);
CREATE INDEX bulk_jobs_status_idx ON bulk_jobs (status, created_at);

CREATE TABLE bulk_job_rows (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
    line_number INTEGER NOT NULL CHECK (line_number >= 1),
    email TEXT NOT NULL DEFAULT '',
    external_user_key TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL DEFAULT '',
    outcome TEXT,
    detail TEXT,
    processed_at TIMESTAMPTZ,
    UNIQUE (job_id, line_number)
);
CREATE INDEX bulk_job_rows_unprocessed_idx ON bulk_job_rows (job_id, line_number) WHERE outcome IS NULL;
