-- Deleting a bulk job (a discarded draft, housekeeping of stale ones) sets its
-- pre-enrolments' reference to NULL: without an index each deletion scanned every
-- pre-enrolment.
CREATE INDEX pending_enrollments_bulk_job_idx ON pending_enrollments (bulk_job_id)
    WHERE bulk_job_id IS NOT NULL;
