-- A bulk job starts as a draft: its rows are read and previewed, and nothing happens
-- until the person submits it (or discards it).
ALTER TABLE bulk_jobs DROP CONSTRAINT bulk_jobs_status_check;
ALTER TABLE bulk_jobs ADD CONSTRAINT bulk_jobs_status_check CHECK (status IN (
    'draft', 'pending_approval', 'approved', 'rejected', 'running', 'done', 'failed', 'cancelled'));
-- Courses of the catalog to give access to on joining (rule 7).
ALTER TABLE bulk_jobs ADD COLUMN course_ids BIGINT[] NOT NULL DEFAULT '{}'
    CHECK (array_position(course_ids, NULL) IS NULL);
ALTER TABLE bulk_jobs ADD COLUMN submitted_at TIMESTAMPTZ;
ALTER TABLE bulk_jobs ADD COLUMN cancelled_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE bulk_jobs ADD COLUMN cancelled_at TIMESTAMPTZ;
-- Who holds the job's lease: only that runner may write its rows.
ALTER TABLE bulk_jobs ADD COLUMN lease_token UUID;
-- Failed runs in a row, and when the next may start (backoff).
ALTER TABLE bulk_jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);
ALTER TABLE bulk_jobs ADD COLUMN next_attempt_at TIMESTAMPTZ;
-- How many rows had (in the preview) or got (in the run) each outcome.
ALTER TABLE bulk_jobs ADD COLUMN planned_counts JSONB NOT NULL DEFAULT '{}';
ALTER TABLE bulk_jobs ADD COLUMN outcome_counts JSONB NOT NULL DEFAULT '{}';
ALTER TABLE bulk_jobs ADD COLUMN outside_patterns INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bulk_jobs_runnable_idx ON bulk_jobs (created_at) WHERE status IN ('approved', 'running');
CREATE INDEX bulk_jobs_queue_idx ON bulk_jobs (status, submitted_at DESC, id DESC);

-- The preview's outcome of each row; the run writes the final one in `outcome`.
ALTER TABLE bulk_job_rows ADD COLUMN planned TEXT;
ALTER TABLE bulk_job_rows ADD COLUMN outside_patterns BOOLEAN NOT NULL DEFAULT FALSE;

-- Pre-enrolments made by a bulk job, and the name the list gave.
ALTER TABLE pending_enrollments ADD COLUMN bulk_job_id BIGINT REFERENCES bulk_jobs (id) ON DELETE SET NULL;
ALTER TABLE pending_enrollments ADD COLUMN full_name TEXT NOT NULL DEFAULT '';
-- Waiting ones (tried, not fulfilled) are retried by the worker.
CREATE INDEX pending_enrollments_waiting_idx ON pending_enrollments (last_attempt_at)
    WHERE fulfilled_at IS NULL AND cancelled_at IS NULL AND last_error IS NOT NULL;

-- Courses an invitation gives access to when accepted (bulk lists may name some).
ALTER TABLE invitations ADD COLUMN course_ids BIGINT[] NOT NULL DEFAULT '{}'
    CHECK (array_position(course_ids, NULL) IS NULL);
