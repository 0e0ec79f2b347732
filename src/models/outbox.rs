use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::PrepareOnce;

use super::schema::outbound_emails;
use super::{PageRequest, Paginated, contains_pattern};

/// The states of an outbound email (the table's check constraint allows only these).
pub const QUEUED: &str = "queued";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = outbound_emails)]
pub struct OutboundEmail {
    pub id: i64,
    pub kind: String,
    pub to_address: String,
    pub from_name: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub sealed_secret: Option<Vec<u8>>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub partner_id: Option<i64>,
    pub invitation_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A list row: everything but the bodies and the sealed secret.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbound_emails)]
pub struct OutboundEmailSummary {
    pub id: i64,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbound_emails)]
pub struct NewOutboundEmail {
    pub kind: String,
    pub to_address: String,
    pub from_name: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub sealed_secret: Option<Vec<u8>>,
    pub partner_id: Option<i64>,
    pub invitation_id: Option<i64>,
}

pub fn insert(conn: &mut PgConnection, email: &NewOutboundEmail) -> QueryResult<OutboundEmail> {
    diesel::insert_into(outbound_emails::table)
        .values(email)
        .returning(OutboundEmail::as_returning())
        .get_result(conn)
}

pub fn insert_many(conn: &mut PgConnection, emails: &[NewOutboundEmail]) -> QueryResult<usize> {
    diesel::insert_into(outbound_emails::table)
        .values(emails)
        .execute(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<OutboundEmail> {
    outbound_emails::table
        .find(id)
        .select(OutboundEmail::as_select())
        .first(conn)
}

pub fn for_invitation(
    conn: &mut PgConnection,
    invitation_id: i64,
) -> QueryResult<Vec<OutboundEmail>> {
    outbound_emails::table
        .filter(outbound_emails::invitation_id.eq(invitation_id))
        .select(OutboundEmail::as_select())
        .order(outbound_emails::id)
        .load(conn)
}

/// Newest first, optionally of one status and to addresses containing `recipient`.
pub fn search(
    conn: &mut PgConnection,
    status: Option<&str>,
    recipient: &str,
    page: PageRequest,
) -> QueryResult<Paginated<OutboundEmailSummary>> {
    let query = || {
        let mut query = outbound_emails::table
            .select(OutboundEmailSummary::as_select())
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(outbound_emails::status.eq(status.to_string()));
        }
        if !recipient.trim().is_empty() {
            query = query.filter(outbound_emails::to_address.ilike(contains_pattern(recipient)));
        }
        query
    };
    super::keyset_page(conn, query, &SEARCH_ORDER, page.searching(recipient))
}

/// Newest first.
const SEARCH_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("outbound_emails.created_at", super::KeyKind::Time),
        ("outbound_emails.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for OutboundEmailSummary {
    fn key(&self) -> Vec<String> {
        vec![super::time_key(self.created_at), self.id.to_string()]
    }
}

/// Whether an email of this kind went (or waits to go) to the address since `since`.
pub fn sent_recently(
    conn: &mut PgConnection,
    to_address: &str,
    kind: &str,
    since: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        outbound_emails::table
            .filter(outbound_emails::to_address.eq(to_address))
            .filter(outbound_emails::kind.eq(kind))
            .filter(outbound_emails::created_at.ge(since)),
    ))
    .get_result(conn)
}

/// Invitation emails (first sends, resends and reminders) of a partner since `since`.
pub fn invitation_emails_since(
    conn: &mut PgConnection,
    partner_id: i64,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    outbound_emails::table
        .filter(outbound_emails::partner_id.eq(partner_id))
        .filter(outbound_emails::created_at.ge(since))
        .filter(outbound_emails::kind.eq_any(["invitation", "invitation_reminder"]))
        .count()
        .get_result(conn)
}

/// How many emails wait to be sent and how many gave up, for the staff overview.
pub fn queued_and_failed(conn: &mut PgConnection) -> QueryResult<(i64, i64)> {
    let count = |conn: &mut PgConnection, status: &str| {
        outbound_emails::table
            .filter(outbound_emails::status.eq(status))
            .count()
            .get_result::<i64>(conn)
    };
    Ok((count(conn, QUEUED)?, count(conn, FAILED)?))
}

/// Claims up to `limit` due emails in one statement (one round trip; its row locks last
/// until it commits all the same): rows another worker holds are skipped, and each
/// claimed row's next attempt moves past its lease, so a crashed worker's rows come back.
/// The n-th email of the batch is leased for n send time limits plus a margin: as long as
/// the sends before it and its own may take, no longer.
pub fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
    lease_step: std::time::Duration,
    lease_margin: std::time::Duration,
) -> QueryResult<Vec<OutboundEmail>> {
    let mut claimed: Vec<OutboundEmail> = diesel::sql_query(
        "WITH due AS ( \
             SELECT id, row_number() OVER (ORDER BY next_attempt_at, id) AS ord FROM ( \
                 SELECT id, next_attempt_at FROM outbound_emails \
                 WHERE status = $4 AND next_attempt_at <= now() \
                 ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) d) \
         UPDATE outbound_emails o \
         SET next_attempt_at = now() + make_interval(secs => $2 * due.ord + $3), \
             attempts = o.attempts + 1 \
         FROM due WHERE o.id = due.id RETURNING o.*",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::Double, _>(lease_step.as_secs_f64())
    .bind::<diesel::sql_types::Double, _>(lease_margin.as_secs_f64())
    .bind::<diesel::sql_types::Text, _>(QUEUED)
    .prepared()
    .load(conn)?;
    claimed.sort_by_key(|e| e.next_attempt_at);
    Ok(claimed)
}

/// Marks emails sent, each at the time its send ended, in one statement.
pub fn mark_all_sent(
    conn: &mut PgConnection,
    sent: &[(i64, chrono::DateTime<chrono::Utc>)],
) -> QueryResult<()> {
    if sent.is_empty() {
        return Ok(());
    }
    let (ids, times): (Vec<i64>, Vec<chrono::DateTime<chrono::Utc>>) = sent.iter().copied().unzip();
    diesel::sql_query(
        "UPDATE outbound_emails o \
         SET status = $3, sent_at = t.at, sealed_secret = NULL, last_error = NULL \
         FROM unnest($1::bigint[], $2::timestamptz[]) AS t(id, at) \
         WHERE o.id = t.id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Timestamptz>, _>(&times)
    .bind::<diesel::sql_types::Text, _>(SENT)
    .prepared()
    .execute(conn)
    .map(drop)
}

/// Gives claimed emails back untried (the worker is stopping), due at once.
pub fn release(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<()> {
    diesel::update(
        outbound_emails::table
            .filter(outbound_emails::id.eq_any(ids))
            .filter(outbound_emails::status.eq(QUEUED)),
    )
    .set((
        outbound_emails::next_attempt_at.eq(diesel::dsl::now),
        outbound_emails::attempts.eq(outbound_emails::attempts - 1),
    ))
    .execute(conn)
    .map(drop)
}

pub fn mark_sent(conn: &mut PgConnection, id: i64, at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(outbound_emails::table.find(id))
        .set((
            outbound_emails::status.eq(SENT),
            outbound_emails::sent_at.eq(at),
            outbound_emails::sealed_secret.eq(None::<Vec<u8>>),
            outbound_emails::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(drop)
}

pub fn mark_retry(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(outbound_emails::table.find(id))
        .set((
            outbound_emails::last_error.eq(error),
            outbound_emails::next_attempt_at.eq(next_attempt_at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> QueryResult<()> {
    diesel::update(outbound_emails::table.find(id))
        .set((
            outbound_emails::status.eq(FAILED),
            outbound_emails::last_error.eq(error),
        ))
        .execute(conn)
        .map(drop)
}

/// Queues a failed email again now with a fresh round of attempts (staff "retry").
/// Only failed ones: a queued email may be in a worker's hands.
pub fn requeue(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        outbound_emails::table
            .find(id)
            .filter(outbound_emails::status.eq(FAILED)),
    )
    .set((
        outbound_emails::status.eq(QUEUED),
        outbound_emails::attempts.eq(0),
        outbound_emails::next_attempt_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
}
