DROP TABLE bulk_job_rows;
DROP TABLE bulk_jobs;
DROP TABLE pending_enrollments;
