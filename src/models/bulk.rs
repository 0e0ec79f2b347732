use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use serde_json::Value;
use uuid::Uuid;

use super::schema::{bulk_job_rows, bulk_jobs, catalogs};
use super::{PageRequest, Paginated};

/// The states of a bulk job (the table's check constraint allows only these).
pub const DRAFT: &str = "draft";
pub const PENDING_APPROVAL: &str = "pending_approval";
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = bulk_jobs)]
pub struct BulkJob {
    pub id: i64,
    pub catalog_id: i64,
    pub submitted_by: Option<i64>,
    pub kind: String,
    pub status: String,
    pub source_name: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    pub succeeded_rows: i32,
    pub failed_rows: i32,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub course_ids: Vec<i64>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<i64>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub lease_token: Option<Uuid>,
    pub failures: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub planned_counts: Value,
    pub outcome_counts: Value,
    pub outside_patterns: i32,
}

impl BulkJob {
    /// Submitted, and not yet over.
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), PENDING_APPROVAL | APPROVED | RUNNING)
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), DONE | FAILED | CANCELLED | REJECTED)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = bulk_jobs)]
pub struct NewBulkJob<'a> {
    pub catalog_id: i64,
    pub submitted_by: Option<i64>,
    pub kind: &'a str,
    pub status: &'a str,
    pub source_name: &'a str,
    pub course_ids: &'a [i64],
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = bulk_job_rows)]
pub struct BulkRow {
    pub id: i64,
    pub job_id: i64,
    pub line_number: i32,
    pub email: String,
    pub external_user_key: String,
    pub full_name: String,
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
    pub planned: Option<String>,
    pub outside_patterns: bool,
}

/// A row as read from the file, with the preview's verdict where reading decided it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = bulk_job_rows)]
pub struct NewBulkRow {
    pub job_id: i64,
    pub line_number: i32,
    pub email: String,
    pub external_user_key: String,
    pub full_name: String,
    pub planned: Option<String>,
    pub detail: Option<String>,
    pub outside_patterns: bool,
}

pub fn insert_job(conn: &mut PgConnection, new: &NewBulkJob<'_>) -> QueryResult<BulkJob> {
    diesel::insert_into(bulk_jobs::table)
        .values(new)
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

/// Rows are written in chunks: one statement per thousand rows.
pub fn insert_rows(conn: &mut PgConnection, rows: &[NewBulkRow]) -> QueryResult<()> {
    for chunk in rows.chunks(1_000) {
        diesel::insert_into(bulk_job_rows::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<BulkJob> {
    bulk_jobs::table
        .find(id)
        .select(BulkJob::as_select())
        .first(conn)
}

pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<BulkJob> {
    bulk_jobs::table
        .find(id)
        .select(BulkJob::as_select())
        .for_update()
        .first(conn)
}

pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(bulk_jobs::table.find(id)).execute(conn)
}

/// Rows not decided while reading that are already learners of the catalog.
pub fn plan_already_learners(
    conn: &mut PgConnection,
    job_id: i64,
    catalog_id: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE bulk_job_rows r SET planned = 'already_learner' \
         FROM users u JOIN catalog_learners cl ON cl.user_id = u.id \
         WHERE r.job_id = $1 AND r.planned IS NULL AND r.email <> '' \
           AND cl.catalog_id = $2 AND cl.is_active AND u.email = r.email",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<BigInt, _>(catalog_id)
    .execute(conn)
}

/// Rows not decided yet with a sent, unexpired invitation to the catalog.
pub fn plan_already_invited(
    conn: &mut PgConnection,
    job_id: i64,
    catalog_id: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE bulk_job_rows r SET planned = 'already_invited' \
         FROM invitations i \
         WHERE r.job_id = $1 AND r.planned IS NULL AND i.catalog_id = $2 AND i.email = r.email \
           AND i.accepted_at IS NULL AND i.declined_at IS NULL AND i.removed_at IS NULL \
           AND i.expires_at > now()",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<BigInt, _>(catalog_id)
    .execute(conn)
}

/// Rows not decided yet with an open, unexpired pre-enrolment in the catalog.
pub fn plan_already_pending(
    conn: &mut PgConnection,
    job_id: i64,
    catalog_id: i64,
) -> QueryResult<usize> {
    // Two plain joins, each on its own index: an `OR` of both would compare every row
    // with every open pre-enrolment of the catalog.
    let by_email = diesel::sql_query(
        "UPDATE bulk_job_rows r SET planned = 'already_pending' \
         FROM pending_enrollments p \
         WHERE r.job_id = $1 AND r.planned IS NULL AND r.email <> '' \
           AND p.catalog_id = $2 AND p.email = r.email \
           AND p.fulfilled_at IS NULL AND p.cancelled_at IS NULL AND p.expires_at > now()",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<BigInt, _>(catalog_id)
    .execute(conn)?;
    let by_key = diesel::sql_query(
        "UPDATE bulk_job_rows r SET planned = 'already_pending' \
         FROM pending_enrollments p \
         WHERE r.job_id = $1 AND r.planned IS NULL AND r.email = '' \
           AND r.external_user_key <> '' AND p.catalog_id = $2 \
           AND p.external_provider = split_part(r.external_user_key, ':', 1) \
           AND p.external_remote_id = substr(r.external_user_key, \
                 length(split_part(r.external_user_key, ':', 1)) + 2) \
           AND p.fulfilled_at IS NULL AND p.cancelled_at IS NULL AND p.expires_at > now()",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<BigInt, _>(catalog_id)
    .execute(conn)?;
    Ok(by_email + by_key)
}

/// Rows not decided yet whose person already has an account that can join at once: a
/// confirmed, active address, or an active account linked to the outside identity.
pub fn plan_existing_accounts(
    conn: &mut PgConnection,
    job_id: i64,
    planned: &str,
) -> QueryResult<usize> {
    let by_email = diesel::sql_query(
        "UPDATE bulk_job_rows r SET planned = $2 FROM users u \
         WHERE r.job_id = $1 AND r.planned IS NULL AND r.email <> '' AND u.email = r.email \
           AND u.email_verified_at IS NOT NULL AND u.is_active",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<Text, _>(planned)
    .execute(conn)?;
    let by_key = diesel::sql_query(
        "UPDATE bulk_job_rows r SET planned = $2 \
         FROM external_identities i JOIN users u ON u.id = i.user_id \
         WHERE r.job_id = $1 AND r.planned IS NULL AND r.email = '' AND r.external_user_key <> '' \
           AND i.provider = split_part(r.external_user_key, ':', 1) \
           AND i.remote_id = substr(r.external_user_key, \
                 length(split_part(r.external_user_key, ':', 1)) + 2) \
           AND u.is_active",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<Text, _>(planned)
    .execute(conn)?;
    Ok(by_email + by_key)
}

/// Every row not decided yet gets `planned`.
pub fn plan_rest(conn: &mut PgConnection, job_id: i64, planned: &str) -> QueryResult<usize> {
    diesel::update(
        bulk_job_rows::table
            .filter(bulk_job_rows::job_id.eq(job_id))
            .filter(bulk_job_rows::planned.is_null()),
    )
    .set(bulk_job_rows::planned.eq(planned))
    .execute(conn)
}

/// How many rows have each planned outcome (or, with `final_outcomes`, each outcome).
pub fn counts(
    conn: &mut PgConnection,
    job_id: i64,
    final_outcomes: bool,
) -> QueryResult<Vec<(String, i64)>> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = Text)]
        outcome: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let column = if final_outcomes { "outcome" } else { "planned" };
    let rows: Vec<Count> = diesel::sql_query(format!(
        "SELECT {column} AS outcome, COUNT(*) AS n FROM bulk_job_rows \
         WHERE job_id = $1 AND {column} IS NOT NULL GROUP BY {column} ORDER BY {column}"
    ))
    .bind::<BigInt, _>(job_id)
    .load(conn)?;
    Ok(rows.into_iter().map(|c| (c.outcome, c.n)).collect())
}

pub fn count_outside_patterns(conn: &mut PgConnection, job_id: i64) -> QueryResult<i64> {
    bulk_job_rows::table
        .filter(bulk_job_rows::job_id.eq(job_id))
        .filter(bulk_job_rows::outside_patterns.eq(true))
        .count()
        .get_result(conn)
}

/// The first rows with a planned outcome, by line.
pub fn first_planned(
    conn: &mut PgConnection,
    job_id: i64,
    planned: &str,
    limit: i64,
) -> QueryResult<Vec<BulkRow>> {
    bulk_job_rows::table
        .filter(bulk_job_rows::job_id.eq(job_id))
        .filter(bulk_job_rows::planned.eq(planned))
        .order(bulk_job_rows::line_number)
        .select(BulkRow::as_select())
        .limit(limit)
        .load(conn)
}

/// The first rows outside the catalog's email patterns, by line.
pub fn first_outside_patterns(
    conn: &mut PgConnection,
    job_id: i64,
    limit: i64,
) -> QueryResult<Vec<BulkRow>> {
    bulk_job_rows::table
        .filter(bulk_job_rows::job_id.eq(job_id))
        .filter(bulk_job_rows::outside_patterns.eq(true))
        .order(bulk_job_rows::line_number)
        .select(BulkRow::as_select())
        .limit(limit)
        .load(conn)
}

/// Records what reading found: the totals and the preview's counts; the job stays a draft.
pub fn set_preview(
    conn: &mut PgConnection,
    job_id: i64,
    total_rows: i32,
    planned_counts: &Value,
    outside_patterns: i32,
) -> QueryResult<BulkJob> {
    diesel::update(bulk_jobs::table.find(job_id))
        .set((
            bulk_jobs::total_rows.eq(total_rows),
            bulk_jobs::planned_counts.eq(planned_counts),
            bulk_jobs::outside_patterns.eq(outside_patterns),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

pub fn set_submitted(conn: &mut PgConnection, job_id: i64, status: &str) -> QueryResult<BulkJob> {
    diesel::update(bulk_jobs::table.find(job_id))
        .set((
            bulk_jobs::status.eq(status),
            bulk_jobs::submitted_at.eq(Some(Utc::now())),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

/// A staff decision: approved, or rejected with its reason.
pub fn set_decision(
    conn: &mut PgConnection,
    job_id: i64,
    status: &str,
    decided_by: i64,
    reason: Option<&str>,
) -> QueryResult<BulkJob> {
    let now = Utc::now();
    diesel::update(bulk_jobs::table.find(job_id))
        .set((
            bulk_jobs::status.eq(status),
            bulk_jobs::decided_by.eq(Some(decided_by)),
            bulk_jobs::decided_at.eq(Some(now)),
            bulk_jobs::decision_reason.eq(reason),
            bulk_jobs::finished_at.eq((status == REJECTED).then_some(now)),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

pub fn set_cancelled(conn: &mut PgConnection, job_id: i64, by: i64) -> QueryResult<BulkJob> {
    let now = Utc::now();
    diesel::update(bulk_jobs::table.find(job_id))
        .set((
            bulk_jobs::status.eq(CANCELLED),
            bulk_jobs::cancelled_by.eq(Some(by)),
            bulk_jobs::cancelled_at.eq(Some(now)),
            bulk_jobs::finished_at.eq(Some(now)),
            bulk_jobs::lease_token.eq(None::<Uuid>),
            bulk_jobs::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

/// Claims the oldest runnable job (approved, or running with an expired lease, and past
/// its backoff): rows another runner holds are skipped.
pub fn claim_runnable(
    conn: &mut PgConnection,
    lease_until: DateTime<Utc>,
    token: Uuid,
) -> QueryResult<Option<BulkJob>> {
    let now = Utc::now();
    let candidate: Option<i64> = bulk_jobs::table
        .filter(bulk_jobs::status.eq_any([APPROVED, RUNNING]))
        .filter(
            bulk_jobs::locked_until
                .is_null()
                .or(bulk_jobs::locked_until.lt(now)),
        )
        .filter(
            bulk_jobs::next_attempt_at
                .is_null()
                .or(bulk_jobs::next_attempt_at.le(now)),
        )
        .order(bulk_jobs::created_at)
        .select(bulk_jobs::id)
        .for_update()
        .skip_locked()
        .first(conn)
        .optional()?;
    let Some(id) = candidate else {
        return Ok(None);
    };
    diesel::update(bulk_jobs::table.find(id))
        .set((
            bulk_jobs::status.eq(RUNNING),
            bulk_jobs::lease_token.eq(Some(token)),
            bulk_jobs::locked_until.eq(Some(lease_until)),
            bulk_jobs::started_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("COALESCE(started_at, now())")),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
        .optional()
}

/// The job, locked, if this runner still holds its lease and it is still running.
pub fn lock_if_held(
    conn: &mut PgConnection,
    job_id: i64,
    token: Uuid,
) -> QueryResult<Option<BulkJob>> {
    bulk_jobs::table
        .find(job_id)
        .filter(bulk_jobs::status.eq(RUNNING))
        .filter(bulk_jobs::lease_token.eq(token))
        .select(BulkJob::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// The next unprocessed rows of a job, by line.
pub fn next_rows(conn: &mut PgConnection, job_id: i64, limit: i64) -> QueryResult<Vec<BulkRow>> {
    bulk_job_rows::table
        .filter(bulk_job_rows::job_id.eq(job_id))
        .filter(bulk_job_rows::outcome.is_null())
        .order(bulk_job_rows::line_number)
        .select(BulkRow::as_select())
        .limit(limit)
        .load(conn)
}

/// Writes the outcomes of rows, all in one statement.
pub fn set_outcomes(
    conn: &mut PgConnection,
    ids: &[i64],
    outcomes: &[&str],
    details: &[Option<String>],
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE bulk_job_rows r SET outcome = t.outcome, detail = t.detail, processed_at = now() \
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(id, outcome, detail) \
         WHERE r.id = t.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(outcomes)
    .bind::<Array<diesel::sql_types::Nullable<Text>>, _>(details)
    .execute(conn)
}

/// Adds a batch's results to the job's counters and extends the lease.
pub fn record_batch(
    conn: &mut PgConnection,
    job_id: i64,
    processed: i32,
    succeeded: i32,
    failed: i32,
    outcome_counts: &Value,
    lease_until: DateTime<Utc>,
) -> QueryResult<BulkJob> {
    diesel::update(bulk_jobs::table.find(job_id))
        .set((
            bulk_jobs::processed_rows.eq(bulk_jobs::processed_rows + processed),
            bulk_jobs::succeeded_rows.eq(bulk_jobs::succeeded_rows + succeeded),
            bulk_jobs::failed_rows.eq(bulk_jobs::failed_rows + failed),
            bulk_jobs::outcome_counts.eq(outcome_counts),
            bulk_jobs::locked_until.eq(Some(lease_until)),
            bulk_jobs::failures.eq(0),
            bulk_jobs::last_error.eq(None::<String>),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

pub fn set_finished(conn: &mut PgConnection, job_id: i64, status: &str) -> QueryResult<BulkJob> {
    diesel::update(bulk_jobs::table.find(job_id))
        .set((
            bulk_jobs::status.eq(status),
            bulk_jobs::finished_at.eq(Some(Utc::now())),
            bulk_jobs::lease_token.eq(None::<Uuid>),
            bulk_jobs::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .returning(BulkJob::as_returning())
        .get_result(conn)
}

/// A failed run: the lease is given up, and the next attempt waits; after too many
/// failures in a row the job fails for good.
pub fn record_failure(
    conn: &mut PgConnection,
    job_id: i64,
    token: Uuid,
    error: &str,
    next_attempt_at: DateTime<Utc>,
    max_failures: i32,
) -> QueryResult<Option<BulkJob>> {
    diesel::sql_query(
        "UPDATE bulk_jobs SET failures = failures + 1, last_error = $3, \
             next_attempt_at = $4, lease_token = NULL, locked_until = NULL, \
             status = CASE WHEN failures + 1 >= $5 THEN 'failed' ELSE status END, \
             finished_at = CASE WHEN failures + 1 >= $5 THEN now() ELSE finished_at END \
         WHERE id = $1 AND lease_token = $2 AND status = 'running' RETURNING *",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<diesel::sql_types::Uuid, _>(token)
    .bind::<Text, _>(error)
    .bind::<diesel::sql_types::Timestamptz, _>(next_attempt_at)
    .bind::<Integer, _>(max_failures)
    .get_result::<BulkJob>(conn)
    .optional()
}

/// A job with what its list rows show.
#[derive(Debug, Clone, Queryable)]
pub struct BulkJobRow {
    pub job: BulkJob,
    pub catalog_name: String,
    pub partner_id: i64,
}

/// Jobs newest first: of one catalog, or (staff queue) of a status and partner.
pub fn search(
    conn: &mut PgConnection,
    catalog_id: Option<i64>,
    status: Option<&str>,
    partner_id: Option<i64>,
    page: PageRequest,
) -> QueryResult<Paginated<BulkJobRow>> {
    let query = || {
        let mut query = bulk_jobs::table
            .inner_join(catalogs::table)
            .filter(bulk_jobs::status.ne(DRAFT))
            .select((BulkJob::as_select(), catalogs::name, catalogs::partner_id))
            .into_boxed();
        if let Some(catalog_id) = catalog_id {
            query = query.filter(bulk_jobs::catalog_id.eq(catalog_id));
        }
        if let Some(status) = status {
            query = query.filter(bulk_jobs::status.eq(status.to_string()));
        }
        if let Some(partner_id) = partner_id {
            query = query.filter(catalogs::partner_id.eq(partner_id));
        }
        query
    };
    super::keyset_page(conn, query, &SEARCH_ORDER, page)
}

/// Latest submitted first, then lists never submitted.
const SEARCH_ORDER: super::SortKey = super::SortKey {
    columns: &[
        (
            "COALESCE(bulk_jobs.submitted_at, '-infinity'::timestamptz)",
            super::KeyKind::Time,
        ),
        ("bulk_jobs.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for BulkJobRow {
    fn key(&self) -> Vec<String> {
        vec![
            self.job
                .submitted_at
                .map_or_else(|| "-infinity".to_string(), super::time_key),
            self.job.id.to_string(),
        ]
    }
}

/// One person's previews of a catalog that were never submitted, newest first.
pub fn drafts_of(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_id: i64,
) -> QueryResult<Vec<BulkJob>> {
    bulk_jobs::table
        .filter(bulk_jobs::catalog_id.eq(catalog_id))
        .filter(bulk_jobs::status.eq(DRAFT))
        .filter(bulk_jobs::submitted_by.eq(user_id))
        .order((bulk_jobs::created_at.desc(), bulk_jobs::id.desc()))
        .limit(20)
        .select(BulkJob::as_select())
        .load(conn)
}

pub fn count_pending_approval(conn: &mut PgConnection) -> QueryResult<i64> {
    bulk_jobs::table
        .filter(bulk_jobs::status.eq(PENDING_APPROVAL))
        .count()
        .get_result(conn)
}

/// Drafts nobody submitted or discarded, older than `before`, are removed.
pub fn delete_stale_drafts(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        bulk_jobs::table
            .filter(bulk_jobs::status.eq(DRAFT))
            .filter(bulk_jobs::created_at.lt(before)),
    )
    .execute(conn)
}

/// Rows after `after_line`, by line: the result file is read in such batches.
pub fn rows_after(
    conn: &mut PgConnection,
    job_id: i64,
    after_line: i32,
    limit: i64,
) -> QueryResult<Vec<BulkRow>> {
    bulk_job_rows::table
        .filter(bulk_job_rows::job_id.eq(job_id))
        .filter(bulk_job_rows::line_number.gt(after_line))
        .order(bulk_job_rows::line_number)
        .select(BulkRow::as_select())
        .limit(limit)
        .load(conn)
}

/// Gives a job's lease back (the runner is stopping): another runner may take it at once.
pub fn release(conn: &mut PgConnection, job_id: i64, token: Uuid) -> QueryResult<usize> {
    diesel::update(
        bulk_jobs::table
            .find(job_id)
            .filter(bulk_jobs::lease_token.eq(token)),
    )
    .set((
        bulk_jobs::lease_token.eq(None::<Uuid>),
        bulk_jobs::locked_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
}
