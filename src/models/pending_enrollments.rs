use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};

use super::schema::{external_identities, pending_enrollments, users};
use super::{PageRequest, Paginated};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = pending_enrollments)]
pub struct PendingEnrollment {
    pub id: i64,
    pub catalog_id: i64,
    pub email: Option<String>,
    pub external_provider: Option<String>,
    pub external_remote_id: Option<String>,
    pub course_ids: Vec<i64>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub fulfilled_user_id: Option<i64>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub bulk_job_id: Option<i64>,
    pub full_name: String,
}

/// Where a pre-enrolment stands, derived from its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingStatus {
    /// Waiting for the person's account.
    Pending,
    /// The account exists, but joining failed (catalog not started, limit reached): retried.
    Waiting,
    Fulfilled,
    Expired,
    Cancelled,
}

impl PendingStatus {
    pub const ALL: [PendingStatus; 5] = [
        PendingStatus::Pending,
        PendingStatus::Waiting,
        PendingStatus::Fulfilled,
        PendingStatus::Expired,
        PendingStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PendingStatus::Pending => "pending",
            PendingStatus::Waiting => "waiting",
            PendingStatus::Fulfilled => "fulfilled",
            PendingStatus::Expired => "expired",
            PendingStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl PendingEnrollment {
    /// The email, or the external identity as `provider:remote_id`.
    pub fn identifier(&self) -> String {
        match (
            &self.email,
            &self.external_provider,
            &self.external_remote_id,
        ) {
            (Some(email), _, _) => email.clone(),
            (None, Some(provider), Some(remote_id)) => format!("{provider}:{remote_id}"),
            _ => String::new(),
        }
    }

    pub fn status_at(&self, now: DateTime<Utc>) -> PendingStatus {
        if self.cancelled_at.is_some() {
            PendingStatus::Cancelled
        } else if self.fulfilled_at.is_some() {
            PendingStatus::Fulfilled
        } else if self.expires_at <= now {
            PendingStatus::Expired
        } else if self.last_error.is_some() {
            PendingStatus::Waiting
        } else {
            PendingStatus::Pending
        }
    }

    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.status_at(now),
            PendingStatus::Pending | PendingStatus::Waiting
        )
    }
}

/// One pre-enrolment to create: by email or by external identity.
#[derive(Debug, Clone)]
pub struct NewPending {
    pub email: Option<String>,
    pub external: Option<(String, String)>,
    pub full_name: String,
}

/// Creates pre-enrolments in one statement. One that already exists, open, for the same
/// person and catalog is left alone, unless it has expired: then it is renewed. Returns
/// the pre-enrolments created or renewed.
#[allow(clippy::too_many_arguments)]
pub fn insert_many(
    conn: &mut PgConnection,
    catalog_id: i64,
    new: &[NewPending],
    course_ids: &[i64],
    created_by: Option<i64>,
    expires_at: DateTime<Utc>,
    bulk_job_id: Option<i64>,
) -> QueryResult<Vec<PendingEnrollment>> {
    let (mut by_email, mut by_identity): (Vec<&NewPending>, Vec<&NewPending>) =
        new.iter().partition(|p| p.email.is_some());
    by_email.dedup_by(|a, b| a.email == b.email);
    by_identity.dedup_by(|a, b| a.external == b.external);
    let mut created = Vec::with_capacity(new.len());
    let columns = "INSERT INTO pending_enrollments \
        (catalog_id, email, external_provider, external_remote_id, full_name, course_ids, \
         created_by, expires_at, bulk_job_id) \
        SELECT $1, t.email, t.provider, t.remote_id, t.full_name, $5, $6, $7, $8 \
        FROM unnest($2::text[], $3::text[], $4::text[], $9::text[]) \
             AS t(email, provider, remote_id, full_name)";
    let renew = "DO UPDATE SET expires_at = EXCLUDED.expires_at, course_ids = EXCLUDED.course_ids, \
        created_by = EXCLUDED.created_by, created_at = now(), full_name = EXCLUDED.full_name, \
        last_error = NULL, last_attempt_at = NULL, bulk_job_id = EXCLUDED.bulk_job_id \
        WHERE pending_enrollments.expires_at <= now() RETURNING *";
    let targets = [
        (
            by_email,
            "ON CONFLICT (catalog_id, email) WHERE email IS NOT NULL \
             AND fulfilled_at IS NULL AND cancelled_at IS NULL",
        ),
        (
            by_identity,
            "ON CONFLICT (catalog_id, external_provider, external_remote_id) \
             WHERE external_provider IS NOT NULL AND fulfilled_at IS NULL AND cancelled_at IS NULL",
        ),
    ];
    for (rows, target) in targets {
        for chunk in rows.chunks(1_000) {
            let emails: Vec<Option<&str>> = chunk.iter().map(|p| p.email.as_deref()).collect();
            let providers: Vec<Option<&str>> = chunk
                .iter()
                .map(|p| p.external.as_ref().map(|(provider, _)| provider.as_str()))
                .collect();
            let remote_ids: Vec<Option<&str>> = chunk
                .iter()
                .map(|p| p.external.as_ref().map(|(_, id)| id.as_str()))
                .collect();
            let names: Vec<&str> = chunk.iter().map(|p| p.full_name.as_str()).collect();
            let inserted: Vec<PendingEnrollment> =
                diesel::sql_query(format!("{columns} {target} {renew}"))
                    .bind::<BigInt, _>(catalog_id)
                    .bind::<Array<Nullable<Text>>, _>(&emails)
                    .bind::<Array<Nullable<Text>>, _>(&providers)
                    .bind::<Array<Nullable<Text>>, _>(&remote_ids)
                    .bind::<Array<BigInt>, _>(course_ids)
                    .bind::<Nullable<BigInt>, _>(created_by)
                    .bind::<Timestamptz, _>(expires_at)
                    .bind::<Nullable<BigInt>, _>(bulk_job_id)
                    .bind::<Array<Text>, _>(&names)
                    .load(conn)?;
            created.extend(inserted);
        }
    }
    Ok(created)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<PendingEnrollment> {
    pending_enrollments::table
        .find(id)
        .select(PendingEnrollment::as_select())
        .first(conn)
}

pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<PendingEnrollment> {
    pending_enrollments::table
        .find(id)
        .select(PendingEnrollment::as_select())
        .for_update()
        .first(conn)
}

/// Open, unexpired pre-enrolments for an email address or any of these identities.
pub fn open_for(
    conn: &mut PgConnection,
    email: &str,
    identities: &[(String, String)],
) -> QueryResult<Vec<PendingEnrollment>> {
    let mut found: Vec<PendingEnrollment> = pending_enrollments::table
        .filter(pending_enrollments::email.eq(email))
        .filter(pending_enrollments::fulfilled_at.is_null())
        .filter(pending_enrollments::cancelled_at.is_null())
        .filter(pending_enrollments::expires_at.gt(diesel::dsl::now))
        .select(PendingEnrollment::as_select())
        .order(pending_enrollments::id)
        .load(conn)?;
    for (provider, remote_id) in identities {
        found.extend(
            pending_enrollments::table
                .filter(pending_enrollments::external_provider.eq(provider))
                .filter(pending_enrollments::external_remote_id.eq(remote_id))
                .filter(pending_enrollments::fulfilled_at.is_null())
                .filter(pending_enrollments::cancelled_at.is_null())
                .filter(pending_enrollments::expires_at.gt(diesel::dsl::now))
                .select(PendingEnrollment::as_select())
                .order(pending_enrollments::id)
                .load::<PendingEnrollment>(conn)?,
        );
    }
    Ok(found)
}

pub fn set_fulfilled(conn: &mut PgConnection, id: i64, user_id: i64) -> QueryResult<()> {
    diesel::update(pending_enrollments::table.find(id))
        .set((
            pending_enrollments::fulfilled_at.eq(Some(Utc::now())),
            pending_enrollments::fulfilled_user_id.eq(Some(user_id)),
            pending_enrollments::last_attempt_at.eq(Some(Utc::now())),
            pending_enrollments::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(drop)
}

/// Tried and not fulfilled: kept open with the reason, for the retry job.
pub fn set_waiting(conn: &mut PgConnection, id: i64, reason: &str) -> QueryResult<()> {
    diesel::update(pending_enrollments::table.find(id))
        .set((
            pending_enrollments::last_attempt_at.eq(Some(Utc::now())),
            pending_enrollments::last_error.eq(Some(reason)),
        ))
        .execute(conn)
        .map(drop)
}

pub fn set_cancelled(conn: &mut PgConnection, id: i64) -> QueryResult<PendingEnrollment> {
    diesel::update(pending_enrollments::table.find(id))
        .set(pending_enrollments::cancelled_at.eq(Some(Utc::now())))
        .returning(PendingEnrollment::as_returning())
        .get_result(conn)
}

/// A catalog's pre-enrolments, newest first, optionally of one status.
pub fn list_for_catalog(
    conn: &mut PgConnection,
    catalog_id: i64,
    status: Option<PendingStatus>,
    page: PageRequest,
) -> QueryResult<Paginated<PendingEnrollment>> {
    use pending_enrollments as p;
    let now = Utc::now();
    let query = || {
        with_status(
            p::table.filter(p::catalog_id.eq(catalog_id)).into_boxed(),
            status,
            now,
        )
        .select(PendingEnrollment::as_select())
    };
    super::keyset_page(conn, query, &LIST_ORDER, page)
}

/// Newest first.
const LIST_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("pending_enrollments.created_at", super::KeyKind::Time),
        ("pending_enrollments.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for PendingEnrollment {
    fn key(&self) -> Vec<String> {
        vec![super::time_key(self.created_at), self.id.to_string()]
    }
}

/// A catalog's pre-enrolments (of one status, if given) by id after `after_id`.
pub fn page_after(
    conn: &mut PgConnection,
    catalog_id: i64,
    status: Option<PendingStatus>,
    after_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<PendingEnrollment>> {
    use pending_enrollments as p;
    with_status(
        p::table
            .filter(p::catalog_id.eq(catalog_id))
            .filter(p::id.gt(after_id.unwrap_or(0)))
            .into_boxed(),
        status,
        Utc::now(),
    )
    .select(PendingEnrollment::as_select())
    .order(p::id)
    .limit(limit)
    .load(conn)
}

/// Narrows a query to pre-enrolments whose status is `status` at `now`.
fn with_status(
    query: pending_enrollments::BoxedQuery<'_, diesel::pg::Pg>,
    status: Option<PendingStatus>,
    now: chrono::DateTime<Utc>,
) -> pending_enrollments::BoxedQuery<'_, diesel::pg::Pg> {
    use pending_enrollments as p;
    match status {
        None => query,
        Some(PendingStatus::Cancelled) => query.filter(p::cancelled_at.is_not_null()),
        Some(PendingStatus::Fulfilled) => query.filter(p::fulfilled_at.is_not_null()),
        Some(open) => {
            let query = query
                .filter(p::cancelled_at.is_null())
                .filter(p::fulfilled_at.is_null());
            match open {
                PendingStatus::Expired => query.filter(p::expires_at.le(now)),
                PendingStatus::Waiting => query
                    .filter(p::expires_at.gt(now))
                    .filter(p::last_error.is_not_null()),
                _ => query
                    .filter(p::expires_at.gt(now))
                    .filter(p::last_error.is_null()),
            }
        }
    }
}

/// Open pre-enrolments whose person now has an account (by verified email or a linked
/// identity), oldest attempt first: those the retry job tries again. Returns each with
/// its user.
pub fn ready_to_retry(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<(i64, i64)>> {
    use pending_enrollments as p;
    let by_email: Vec<(i64, i64)> = p::table
        .inner_join(users::table.on(users::email.nullable().eq(p::email)))
        .filter(p::fulfilled_at.is_null())
        .filter(p::cancelled_at.is_null())
        .filter(p::expires_at.gt(diesel::dsl::now))
        .filter(users::email_verified_at.is_not_null())
        .filter(users::is_active.eq(true))
        .order(p::last_attempt_at.asc().nulls_first())
        .select((p::id, users::id))
        .limit(limit)
        .load(conn)?;
    let by_identity: Vec<(i64, i64)> = p::table
        .inner_join(
            external_identities::table.on(external_identities::provider
                .nullable()
                .eq(p::external_provider)
                .and(
                    external_identities::remote_id
                        .nullable()
                        .eq(p::external_remote_id),
                )),
        )
        .filter(p::fulfilled_at.is_null())
        .filter(p::cancelled_at.is_null())
        .filter(p::expires_at.gt(diesel::dsl::now))
        .order(p::last_attempt_at.asc().nulls_first())
        .select((p::id, external_identities::user_id))
        .limit(limit)
        .load(conn)?;
    Ok(by_email.into_iter().chain(by_identity).collect())
}
