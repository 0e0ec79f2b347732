use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::invitations;
use crate::domain::InvitationStatus;
use crate::domain::invitation_status::InvitationTimes;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable, Serialize)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: i64,
    pub catalog_id: i64,
    pub email: String,
    pub user_id: Option<i64>,
    pub channel: String,
    pub invited_at: DateTime<Utc>,
    pub invited_by: Option<i64>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removed_by: Option<i64>,
    pub removal_reason: Option<String>,
    pub send_count: i32,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub reminder_sent_at: Option<DateTime<Utc>>,
    /// Courses given when the invitation is accepted.
    pub course_ids: Vec<i64>,
    /// The name a list gave for the person, offered on their sign-up form.
    pub full_name: String,
}

impl Invitation {
    pub fn status_at(&self, now: DateTime<Utc>) -> InvitationStatus {
        InvitationStatus::derive(
            &InvitationTimes {
                expires_at: self.expires_at,
                accepted_at: self.accepted_at,
                declined_at: self.declined_at,
                removed_at: self.removed_at,
            },
            now,
        )
    }

    pub fn status(&self) -> InvitationStatus {
        self.status_at(Utc::now())
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = invitations)]
pub struct NewInvitation<'a> {
    pub catalog_id: i64,
    pub email: &'a str,
    pub user_id: Option<i64>,
    pub token_hash: &'a [u8],
    pub channel: &'a str,
    pub invited_by: Option<i64>,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub send_count: i32,
    pub last_sent_at: Option<DateTime<Utc>>,
}

pub fn insert(conn: &mut PgConnection, new: &NewInvitation<'_>) -> QueryResult<Invitation> {
    diesel::insert_into(invitations::table)
        .values(new)
        .returning(Invitation::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Invitation> {
    invitations::table
        .find(id)
        .select(Invitation::as_select())
        .first(conn)
}

pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<Invitation> {
    invitations::table
        .find(id)
        .select(Invitation::as_select())
        .for_update()
        .first(conn)
}

pub fn find_by_token_hash(conn: &mut PgConnection, hash: &[u8]) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::token_hash.eq(hash))
        .select(Invitation::as_select())
        .first(conn)
        .optional()
}

/// The invitation still counted as active by the unique index (not removed, not declined).
pub fn find_open(
    conn: &mut PgConnection,
    catalog_id: i64,
    email: &str,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::catalog_id.eq(catalog_id))
        .filter(invitations::email.eq(email))
        .filter(invitations::removed_at.is_null())
        .filter(invitations::declined_at.is_null())
        .select(Invitation::as_select())
        .for_update()
        .first(conn)
        .optional()
}

pub fn mark_accepted(
    conn: &mut PgConnection,
    id: i64,
    user_id: i64,
    at: DateTime<Utc>,
) -> QueryResult<Invitation> {
    diesel::update(invitations::table.find(id))
        .set((
            invitations::accepted_at.eq(at),
            invitations::user_id.eq(user_id),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
}

pub fn mark_declined(
    conn: &mut PgConnection,
    id: i64,
    at: DateTime<Utc>,
) -> QueryResult<Invitation> {
    diesel::update(invitations::table.find(id))
        .set(invitations::declined_at.eq(at))
        .returning(Invitation::as_returning())
        .get_result(conn)
}

pub fn mark_removed(
    conn: &mut PgConnection,
    id: i64,
    by: Option<i64>,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> QueryResult<Invitation> {
    diesel::update(invitations::table.find(id))
        .set((
            invitations::removed_at.eq(at),
            invitations::removed_by.eq(by),
            invitations::removal_reason.eq(reason),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
}

/// A new token and expiry: the old link stops working.
pub fn renew(
    conn: &mut PgConnection,
    id: i64,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> QueryResult<Invitation> {
    diesel::update(invitations::table.find(id))
        .set((
            invitations::token_hash.eq(token_hash),
            invitations::expires_at.eq(expires_at),
            invitations::send_count.eq(invitations::send_count + 1),
            invitations::last_sent_at.eq(at),
            invitations::reminder_sent_at.eq(None::<DateTime<Utc>>),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
}

/// Links invitations sent to an email to the account that now has it.
pub fn link_user_by_email(
    conn: &mut PgConnection,
    email: &str,
    user_id: i64,
) -> QueryResult<usize> {
    diesel::update(
        invitations::table
            .filter(invitations::email.eq(email))
            .filter(invitations::user_id.is_null()),
    )
    .set(invitations::user_id.eq(user_id))
    .execute(conn)
}

/// Catalog ids with a sent, unexpired invitation for this email.
pub fn pending_catalog_ids(
    conn: &mut PgConnection,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    invitations::table
        .filter(invitations::email.eq(email))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::declined_at.is_null())
        .filter(invitations::removed_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .select(invitations::catalog_id)
        .load(conn)
}

pub fn pending_for_email(
    conn: &mut PgConnection,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Invitation>> {
    invitations::table
        .filter(invitations::email.eq(email))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::declined_at.is_null())
        .filter(invitations::removed_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .select(Invitation::as_select())
        .order(invitations::invited_at.desc())
        .load(conn)
}

/// Filters of the invitation list.
#[derive(Debug, Clone, Default)]
pub struct InvitationFilter {
    pub status: Option<InvitationStatus>,
    /// Part of the email address.
    pub search: String,
}

/// Newest first.
const LIST_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("invitations.invited_at", super::KeyKind::Time),
        ("invitations.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for Invitation {
    fn key(&self) -> Vec<String> {
        vec![super::time_key(self.invited_at), self.id.to_string()]
    }
}

pub fn list_for_catalog(
    conn: &mut PgConnection,
    catalog_id: i64,
    filter: &InvitationFilter,
    now: DateTime<Utc>,
    page: super::PageRequest,
) -> QueryResult<super::Paginated<Invitation>> {
    let query = || {
        let mut query = with_status(
            invitations::table
                .filter(invitations::catalog_id.eq(catalog_id))
                .into_boxed(),
            filter.status,
            now,
        );
        if !filter.search.trim().is_empty() {
            query = query.filter(
                invitations::email.like(super::lower_text(super::contains_pattern(&filter.search))),
            );
        }
        query.select(Invitation::as_select())
    };
    super::keyset_page(conn, query, &LIST_ORDER, page.searching(&filter.search))
}

/// A catalog's invitations (of one status, if given) by id after `after_id`.
pub fn page_after(
    conn: &mut PgConnection,
    catalog_id: i64,
    status: Option<InvitationStatus>,
    after_id: Option<i64>,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Invitation>> {
    with_status(
        invitations::table
            .filter(invitations::catalog_id.eq(catalog_id))
            .filter(invitations::id.gt(after_id.unwrap_or(0)))
            .into_boxed(),
        status,
        now,
    )
    .select(Invitation::as_select())
    .order(invitations::id)
    .limit(limit)
    .load(conn)
}

/// Narrows a query to invitations whose status is `status` at `now`.
fn with_status(
    query: invitations::BoxedQuery<'_, diesel::pg::Pg>,
    status: Option<InvitationStatus>,
    now: DateTime<Utc>,
) -> invitations::BoxedQuery<'_, diesel::pg::Pg> {
    match status {
        None => query,
        Some(InvitationStatus::Removed) => query.filter(invitations::removed_at.is_not_null()),
        Some(InvitationStatus::Declined) => query
            .filter(invitations::removed_at.is_null())
            .filter(invitations::declined_at.is_not_null()),
        Some(InvitationStatus::Accepted) => query
            .filter(invitations::removed_at.is_null())
            .filter(invitations::declined_at.is_null())
            .filter(invitations::accepted_at.is_not_null()),
        Some(InvitationStatus::Expired) => query
            .filter(invitations::removed_at.is_null())
            .filter(invitations::declined_at.is_null())
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::expires_at.le(now)),
        Some(InvitationStatus::Sent) => query
            .filter(invitations::removed_at.is_null())
            .filter(invitations::declined_at.is_null())
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::expires_at.gt(now)),
    }
}

/// One batch of a catalog's invitations after `after_id`, for streamed exports.
pub fn batch_after(
    conn: &mut PgConnection,
    catalog_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<Invitation>> {
    invitations::table
        .filter(invitations::catalog_id.eq(catalog_id))
        .filter(invitations::id.gt(after_id))
        .select(Invitation::as_select())
        .order(invitations::id)
        .limit(limit)
        .load(conn)
}

/// Sent invitations expiring before `horizon` that got no reminder yet and were not
/// just sent, of catalogs that have not ended; rows another process holds are skipped.
pub fn claim_due_for_reminder(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    sent_before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Invitation>> {
    invitations::table
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::declined_at.is_null())
        .filter(invitations::removed_at.is_null())
        .filter(invitations::reminder_sent_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .filter(invitations::expires_at.le(horizon))
        .filter(invitations::last_sent_at.le(sent_before))
        .filter(
            invitations::catalog_id.eq_any(
                super::schema::catalogs::table
                    .filter(super::schema::catalogs::available_end.gt(now))
                    .filter(super::schema::catalogs::archived_at.is_null())
                    .select(super::schema::catalogs::id),
            ),
        )
        .select(Invitation::as_select())
        .order(invitations::expires_at)
        .limit(limit)
        .for_update()
        .skip_locked()
        .load(conn)
}

/// The reminder carries a fresh link; the expiry stays.
pub fn mark_reminded(
    conn: &mut PgConnection,
    id: i64,
    token_hash: &[u8],
    at: DateTime<Utc>,
) -> QueryResult<Invitation> {
    diesel::update(invitations::table.find(id))
        .set((
            invitations::token_hash.eq(token_hash),
            invitations::reminder_sent_at.eq(at),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
}

/// The open (sent or expired, not answered) invitations of the catalog to these addresses.
pub fn open_among(
    conn: &mut PgConnection,
    catalog_id: i64,
    emails: &[String],
) -> QueryResult<Vec<Invitation>> {
    invitations::table
        .filter(invitations::catalog_id.eq(catalog_id))
        .filter(invitations::email.eq_any(emails))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::declined_at.is_null())
        .filter(invitations::removed_at.is_null())
        .select(Invitation::as_select())
        .load(conn)
}

/// One invitation of a bulk insert.
pub struct BulkInvitation {
    pub email: String,
    pub full_name: String,
    pub user_id: Option<i64>,
    pub token_hash: Vec<u8>,
}

/// Inserts invitations (channel `bulk`) in one statement; an address that meanwhile got
/// an active invitation is skipped. Returns the new invitations.
pub fn insert_bulk(
    conn: &mut PgConnection,
    catalog_id: i64,
    invited_by: Option<i64>,
    (now, expires_at): (DateTime<Utc>, DateTime<Utc>),
    course_ids: &[i64],
    rows: &[BulkInvitation],
) -> QueryResult<Vec<Invitation>> {
    use diesel::sql_types::{Array, BigInt, Bytea, Nullable, Text, Timestamptz};
    let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
    let users: Vec<Option<i64>> = rows.iter().map(|r| r.user_id).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|r| r.token_hash.as_slice()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.full_name.as_str()).collect();
    diesel::sql_query(
        "INSERT INTO invitations (catalog_id, email, user_id, token_hash, channel, invited_by, \
             invited_at, expires_at, send_count, last_sent_at, course_ids, full_name) \
         SELECT $1, t.email, t.user_id, t.token_hash, 'bulk', $2, $3, $4, 1, $3, $8, t.full_name \
         FROM unnest($5::text[], $6::bigint[], $7::bytea[], $9::text[]) \
           AS t(email, user_id, token_hash, full_name) \
         ON CONFLICT (catalog_id, email) WHERE removed_at IS NULL AND declined_at IS NULL \
         DO NOTHING RETURNING *",
    )
    .bind::<BigInt, _>(catalog_id)
    .bind::<Nullable<BigInt>, _>(invited_by)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(expires_at)
    .bind::<Array<Text>, _>(&emails)
    .bind::<Array<Nullable<BigInt>>, _>(&users)
    .bind::<Array<Bytea>, _>(&hashes)
    .bind::<Array<BigInt>, _>(course_ids)
    .bind::<Array<Text>, _>(&names)
    .load(conn)
}
