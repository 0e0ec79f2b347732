//! The queries behind the analytics pages: invitations created in a period and what came
//! of them (current state plus the enrolment events), and the events of a period.
//! A scope is the whole platform, one partner, or one catalog.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Double, Nullable, Text, Timestamptz};

/// Which catalogs count: all, a partner's, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
}

/// `[start, end)` in UTC, and the time zone weeks are counted in.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_zone: &'a str,
}

/// Invitations created in the window, by channel and whether they were emailed.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct CohortRow {
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Bool)]
    pub emailed: bool,
    #[diesel(sql_type = BigInt)]
    pub created: i64,
    #[diesel(sql_type = BigInt)]
    pub accepted: i64,
    #[diesel(sql_type = BigInt)]
    pub declined: i64,
    /// Accepted, then enrolled in at least one course through the catalog.
    #[diesel(sql_type = BigInt)]
    pub enrolled: i64,
    /// Accepted, then given a paid seat through the catalog.
    #[diesel(sql_type = BigInt)]
    pub licensed: i64,
}

// Invitations of the scope created in the window; for the accepted ones, their first
// enrolment through the catalog and whether it ever gave a paid seat.
const COHORT: &str = "
    WITH cohort AS (
        SELECT i.id, i.channel, i.catalog_id, i.user_id, i.invited_at, i.accepted_at,
               i.declined_at, i.send_count > 0 AS emailed
        FROM invitations i JOIN catalogs c ON c.id = i.catalog_id
        WHERE i.invited_at >= $3 AND i.invited_at < $4
          AND ($1::bigint IS NULL OR c.partner_id = $1)
          AND ($2::bigint IS NULL OR c.id = $2)
    ), enrolled AS (
        SELECT co.id, MIN(e.occurred_at) AS first_enrolment,
               bool_or(e.data ? 'licence_id' AND e.data->>'licence_id' IS NOT NULL) AS licensed
        FROM cohort co
        JOIN tracking_events e ON e.name = 'enrollment.activated'
             AND e.catalog_id = co.catalog_id AND e.user_id = co.user_id
             AND e.occurred_at >= co.accepted_at
        WHERE co.accepted_at IS NOT NULL
        GROUP BY co.id
    )";

pub fn cohort(
    conn: &mut PgConnection,
    scope: Scope,
    window: &Window<'_>,
) -> QueryResult<Vec<CohortRow>> {
    diesel::sql_query(format!(
        "{COHORT}
        SELECT co.channel, co.emailed, COUNT(*) AS created, COUNT(co.accepted_at) AS accepted,
               COUNT(co.declined_at) AS declined, COUNT(en.id) AS enrolled,
               COUNT(*) FILTER (WHERE en.licensed) AS licensed
        FROM cohort co LEFT JOIN enrolled en ON en.id = co.id
        GROUP BY co.channel, co.emailed
        ORDER BY co.channel, co.emailed"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Timestamptz, _>(window.start)
    .bind::<Timestamptz, _>(window.end)
    .load(conn)
}

/// Median and 90th percentile, in seconds, of how long emailed invitations created in
/// the window took to be answered, and accepted ones to their first enrolment.
#[derive(Debug, Clone, QueryableByName, PartialEq)]
pub struct Delays {
    #[diesel(sql_type = Nullable<Double>)]
    pub answer_median: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub answer_p90: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub enrolment_median: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub enrolment_p90: Option<f64>,
}

pub fn delays(conn: &mut PgConnection, scope: Scope, window: &Window<'_>) -> QueryResult<Delays> {
    diesel::sql_query(format!(
        "{COHORT}, answered AS (
            SELECT EXTRACT(EPOCH FROM COALESCE(accepted_at, declined_at) - invited_at)::float8 AS s
            FROM cohort WHERE emailed AND COALESCE(accepted_at, declined_at) IS NOT NULL
        ), first_enrolments AS (
            SELECT EXTRACT(EPOCH FROM en.first_enrolment - co.accepted_at)::float8 AS s
            FROM cohort co JOIN enrolled en ON en.id = co.id
        )
        SELECT
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM answered) AS answer_median,
            (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY s) FROM answered) AS answer_p90,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM first_enrolments) AS enrolment_median,
            (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY s) FROM first_enrolments) AS enrolment_p90"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Timestamptz, _>(window.start)
    .bind::<Timestamptz, _>(window.end)
    .get_result(conn)
}

/// Events of the window by name and reason, and whether they concern a paid seat.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct EventCount {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Bool)]
    pub paid_seat: bool,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn event_counts(
    conn: &mut PgConnection,
    scope: Scope,
    window: &Window<'_>,
) -> QueryResult<Vec<EventCount>> {
    diesel::sql_query(
        "SELECT name, COALESCE(reason, '') AS reason,
                (data ? 'licence_id' AND data->>'licence_id' IS NOT NULL) AS paid_seat,
                COUNT(*) AS n
         FROM tracking_events
         WHERE occurred_at >= $3 AND occurred_at < $4
           AND ($1::bigint IS NULL OR partner_id = $1)
           AND ($2::bigint IS NULL OR catalog_id = $2)
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Timestamptz, _>(window.start)
    .bind::<Timestamptz, _>(window.end)
    .load(conn)
}

/// Joins the learner limit refused in the window.
pub fn refused_joins(
    conn: &mut PgConnection,
    scope: Scope,
    window: &Window<'_>,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let found: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM refused_joins r JOIN catalogs c ON c.id = r.catalog_id
         WHERE r.occurred_at >= $3 AND r.occurred_at < $4
           AND ($1::bigint IS NULL OR c.partner_id = $1)
           AND ($2::bigint IS NULL OR c.id = $2)",
    )
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Timestamptz, _>(window.start)
    .bind::<Timestamptz, _>(window.end)
    .get_result(conn)?;
    Ok(found.n)
}

/// One week (starting Monday, in the window's time zone) of activity.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct WeekRow {
    #[diesel(sql_type = Date)]
    pub week: NaiveDate,
    /// Learners who did something: accepted, enrolled, or were refused a course.
    #[diesel(sql_type = BigInt)]
    pub active_learners: i64,
    #[diesel(sql_type = BigInt)]
    pub sent: i64,
    #[diesel(sql_type = BigInt)]
    pub accepted: i64,
    #[diesel(sql_type = BigInt)]
    pub enrolments: i64,
}

pub fn weeks(
    conn: &mut PgConnection,
    scope: Scope,
    window: &Window<'_>,
) -> QueryResult<Vec<WeekRow>> {
    diesel::sql_query(
        "SELECT date_trunc('week', occurred_at AT TIME ZONE $5)::date AS week,
                COUNT(DISTINCT user_id) FILTER (WHERE name IN
                    ('invitation.accepted', 'enrollment.activated', 'enrollment.blocked')) AS active_learners,
                COUNT(*) FILTER (WHERE name = 'invitation.sent') AS sent,
                COUNT(*) FILTER (WHERE name = 'invitation.accepted') AS accepted,
                COUNT(*) FILTER (WHERE name = 'enrollment.activated') AS enrolments
         FROM tracking_events
         WHERE occurred_at >= $3 AND occurred_at < $4
           AND ($1::bigint IS NULL OR partner_id = $1)
           AND ($2::bigint IS NULL OR catalog_id = $2)
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Timestamptz, _>(window.start)
    .bind::<Timestamptz, _>(window.end)
    .bind::<Text, _>(window.time_zone)
    .load(conn)
}

/// Each catalog of the scope in use now: learners and paid seats against their limits.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct SeatRow {
    #[diesel(sql_type = BigInt)]
    pub catalog_id: i64,
    #[diesel(sql_type = Text)]
    pub catalog: String,
    #[diesel(sql_type = Text)]
    pub partner: String,
    #[diesel(sql_type = BigInt)]
    pub learners: i64,
    #[diesel(sql_type = BigInt)]
    pub user_limit: i64,
    #[diesel(sql_type = BigInt)]
    pub seats_used: i64,
    #[diesel(sql_type = BigInt)]
    pub seat_limit: i64,
}

pub fn seats(conn: &mut PgConnection, scope: Scope) -> QueryResult<Vec<SeatRow>> {
    diesel::sql_query(
        "SELECT c.id AS catalog_id, c.name AS catalog, p.name AS partner,
                (SELECT COUNT(*) FROM catalog_learners l WHERE l.catalog_id = c.id AND l.is_active) AS learners,
                c.user_limit::bigint AS user_limit,
                (SELECT COUNT(*) FROM licences s JOIN courses k ON k.id = s.course_id
                 WHERE s.catalog_id = c.id AND s.is_active AND k.is_paid) AS seats_used,
                c.course_enrollments_limit::bigint AS seat_limit
         FROM catalogs c JOIN partners p ON p.id = c.partner_id
         WHERE c.archived_at IS NULL
           AND ($1::bigint IS NULL OR c.partner_id = $1)
           AND ($2::bigint IS NULL OR c.id = $2)
         ORDER BY p.name, c.name, c.id",
    )
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .load(conn)
}
