//! Tracking events read as the material of xAPI statements (with the names, keys and
//! addresses they refer to), and their forwarding state towards a learning record store.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid};
use serde_json::Value;

/// Event names that have a statement; anything else stays out of the stream.
pub const STATEMENT_EVENTS: [&str; 7] = [
    crate::events::INVITATION_SENT,
    crate::events::INVITATION_ACCEPTED,
    crate::events::INVITATION_DECLINED,
    crate::events::INVITATION_REMOVED,
    crate::events::ENROLLMENT_ACTIVATED,
    crate::events::ENROLLMENT_DEACTIVATED,
    crate::events::ENROLLMENT_BLOCKED,
];

/// One event with what it refers to.
#[derive(Debug, Clone, QueryableByName)]
pub struct StatementRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub partner_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub partner_code: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub catalog_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub catalog_slug: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub catalog_name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub course_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub course_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub course_title: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    /// The account's address, or the invitation's for someone without an account.
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub invitation_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub channel: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub data: Value,
}

const SELECT_ROWS: &str =
    "SELECT e.id, e.name, e.occurred_at, e.partner_id, p.code AS partner_code,
        e.catalog_id, c.slug AS catalog_slug, c.name AS catalog_name,
        e.course_id, co.key AS course_key, co.title AS course_title,
        e.user_id, COALESCE(u.email, i.email) AS email, e.invitation_id, e.channel, e.reason, e.data
    FROM tracking_events e
    LEFT JOIN partners p ON p.id = e.partner_id
    LEFT JOIN catalogs c ON c.id = e.catalog_id
    LEFT JOIN courses co ON co.id = e.course_id
    LEFT JOIN users u ON u.id = e.user_id
    LEFT JOIN invitations i ON i.id = e.invitation_id";

fn statement_events() -> Vec<String> {
    STATEMENT_EVENTS.iter().map(|s| s.to_string()).collect()
}

/// Events in order after `since` (exclusive, as xAPI's `since` is), or strictly after
/// `after` (time and id of the last one already seen), of one partner or all; at most
/// `limit`.
pub fn page(
    conn: &mut PgConnection,
    partner_id: Option<i64>,
    since: DateTime<Utc>,
    after: Option<uuid::Uuid>,
    limit: i64,
) -> QueryResult<Vec<StatementRow>> {
    let sql = format!(
        "{SELECT_ROWS}
         WHERE e.name = ANY($1)
           AND ($2::bigint IS NULL OR e.partner_id = $2)
           AND CASE WHEN $4::uuid IS NULL THEN e.occurred_at > $3
                    ELSE (e.occurred_at, e.id) > ($3, $4) END
         ORDER BY e.occurred_at, e.id
         LIMIT $5"
    );
    diesel::sql_query(sql)
        .bind::<Array<Text>, _>(statement_events())
        .bind::<Nullable<BigInt>, _>(partner_id)
        .bind::<Timestamptz, _>(since)
        .bind::<Nullable<Uuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
}

/// Takes up to `limit` events not yet forwarded, oldest first, for `lease_seconds`: rows
/// another runner holds are skipped, and a lease that ran out (a runner that died) is
/// taken over.
pub fn claim_for_forwarding(
    conn: &mut PgConnection,
    limit: i64,
    lease_seconds: i64,
) -> QueryResult<Vec<StatementRow>> {
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Claimed {
            #[diesel(sql_type = Uuid)]
            id: uuid::Uuid,
        }
        let claimed: Vec<Claimed> = diesel::sql_query(
            "UPDATE tracking_events SET forward_lease_until = now() + make_interval(secs => $3)
             WHERE id IN (
                 SELECT id FROM tracking_events
                 WHERE forwarded_at IS NULL AND name = ANY($1)
                   AND (forward_lease_until IS NULL OR forward_lease_until < now())
                 ORDER BY occurred_at, id
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind::<Array<Text>, _>(statement_events())
        .bind::<BigInt, _>(limit)
        .bind::<Integer, _>(i32::try_from(lease_seconds).unwrap_or(i32::MAX))
        .load(conn)?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = claimed.into_iter().map(|c| c.id).collect();
        diesel::sql_query(format!(
            "{SELECT_ROWS} WHERE e.id = ANY($1) ORDER BY e.occurred_at, e.id"
        ))
        .bind::<Array<Uuid>, _>(ids)
        .load(conn)
    })
}

/// The store holds these now.
pub fn mark_forwarded(conn: &mut PgConnection, ids: &[uuid::Uuid]) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE tracking_events
         SET forwarded_at = now(), forward_lease_until = NULL, forward_attempts = forward_attempts + 1
         WHERE id = ANY($1) AND forwarded_at IS NULL",
    )
    .bind::<Array<Uuid>, _>(ids)
    .execute(conn)
}

/// Not forwarded this time: offered again after `retry_in_seconds` (0: as soon as the
/// runner tries again), with why.
pub fn release(
    conn: &mut PgConnection,
    ids: &[uuid::Uuid],
    error: &str,
    retry_in_seconds: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE tracking_events
         SET forward_lease_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END,
             forward_attempts = forward_attempts + 1,
             last_forward_error = $2, last_forward_error_at = now()
         WHERE id = ANY($1) AND forwarded_at IS NULL",
    )
    .bind::<Array<Uuid>, _>(ids)
    .bind::<Text, _>(error)
    .bind::<Integer, _>(i32::try_from(retry_in_seconds).unwrap_or(i32::MAX))
    .execute(conn)
}

/// Handed back untouched (a runner stopping mid-batch).
pub fn unlease(conn: &mut PgConnection, ids: &[uuid::Uuid]) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE tracking_events SET forward_lease_until = NULL
         WHERE id = ANY($1) AND forwarded_at IS NULL",
    )
    .bind::<Array<Uuid>, _>(ids)
    .execute(conn)
}

/// What staff see of the forwarding.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct ForwardingState {
    #[diesel(sql_type = BigInt)]
    pub forwarded: i64,
    #[diesel(sql_type = BigInt)]
    pub waiting: i64,
    /// Waiting after the store refused them (kept, offered again later).
    #[diesel(sql_type = BigInt)]
    pub refused: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_forwarded_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_error_at: Option<DateTime<Utc>>,
}

pub fn forwarding_state(conn: &mut PgConnection) -> QueryResult<ForwardingState> {
    diesel::sql_query(
        "SELECT
            (SELECT COUNT(*) FROM tracking_events WHERE forwarded_at IS NOT NULL AND name = ANY($1)) AS forwarded,
            (SELECT COUNT(*) FROM tracking_events WHERE forwarded_at IS NULL AND name = ANY($1)) AS waiting,
            (SELECT COUNT(*) FROM tracking_events
              WHERE forwarded_at IS NULL AND name = ANY($1) AND forward_lease_until > now()
                AND last_forward_error IS NOT NULL) AS refused,
            (SELECT MAX(forwarded_at) FROM tracking_events WHERE forwarded_at IS NOT NULL) AS last_forwarded_at,
            last.last_forward_error AS last_error, last.last_forward_error_at AS last_error_at
         FROM (SELECT 1) one
         LEFT JOIN LATERAL (
             SELECT last_forward_error, last_forward_error_at FROM tracking_events
             WHERE last_forward_error_at IS NOT NULL
             ORDER BY last_forward_error_at DESC LIMIT 1) last ON true",
    )
    .bind::<Array<Text>, _>(statement_events())
    .get_result(conn)
}
