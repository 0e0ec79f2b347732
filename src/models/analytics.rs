//! The queries behind the analytics pages. They read the daily roll-ups that triggers keep
//! beside the events and invitations (see the `analytics_rollups` migration), so a report
//! costs the same whatever the number of events: invitations created in a period and what
//! came of them, the events of a period, and who was active week by week.
//!
//! A scope is the whole platform, one partner, or one catalog. Periods are whole days of
//! each catalog's partner's calendar: the platform adds up its partners' own days.

use chrono::{Datelike, Duration, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Double, Nullable, SmallInt, Text};

/// Which catalogs count: all, a partner's, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
}

impl Scope {
    /// The roll-up level of the scope (2 catalog, 1 partner, 0 platform) and its id.
    fn level(self) -> (i16, i64) {
        match (self.catalog_id, self.partner_id) {
            (Some(catalog), _) => (2, catalog),
            (None, Some(partner)) => (1, partner),
            (None, None) => (0, 0),
        }
    }
}

/// The days `from..=until` of the partners' calendars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Window {
    /// The Monday of a date's week.
    pub fn monday_of(day: NaiveDate) -> NaiveDate {
        day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
    }

    /// The first and last day of the weeks wholly inside the window (the first after
    /// the last when there is none).
    fn whole_weeks(self) -> (NaiveDate, NaiveDate) {
        let first = Self::monday_of(self.from + Duration::days(6));
        let last = Self::monday_of(self.until + Duration::days(1)) - Duration::days(1);
        (first, last)
    }
}

/// The scope's catalogs, for the roll-up tables joined to `catalogs c`.
const IN_SCOPE: &str =
    "($1::bigint IS NULL OR c.partner_id = $1) AND ($2::bigint IS NULL OR c.id = $2)";

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

pub fn cohort(
    conn: &mut PgConnection,
    scope: Scope,
    window: Window,
) -> QueryResult<Vec<CohortRow>> {
    diesel::sql_query(format!(
        "SELECT d.channel, d.emailed, SUM(d.created)::bigint AS created,
                SUM(d.accepted)::bigint AS accepted, SUM(d.declined)::bigint AS declined,
                SUM(d.enrolled)::bigint AS enrolled, SUM(d.licensed)::bigint AS licensed
         FROM analytics_cohort_days d JOIN catalogs c ON c.id = d.catalog_id
         WHERE d.day BETWEEN $3 AND $4 AND {IN_SCOPE}
         GROUP BY d.channel, d.emailed
         HAVING SUM(d.created) <> 0
         ORDER BY d.channel, d.emailed"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Date, _>(window.from)
    .bind::<Date, _>(window.until)
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

// Invitations of the scope created in the window's days, each in its partner's calendar.
const CREATED_IN_WINDOW: &str = "
    FROM catalogs c JOIN partners p ON p.id = c.partner_id JOIN invitations i ON i.catalog_id = c.id
    WHERE i.invited_at >= ($3::date::timestamp AT TIME ZONE p.time_zone)
      AND i.invited_at < (($4::date + 1)::timestamp AT TIME ZONE p.time_zone)";

pub fn delays(conn: &mut PgConnection, scope: Scope, window: Window) -> QueryResult<Delays> {
    // Exact percentiles over the two partial indexes, which hold just these invitations.
    diesel::sql_query(format!(
        "SELECT answers[1] AS answer_median, answers[2] AS answer_p90,
                enrolments[1] AS enrolment_median, enrolments[2] AS enrolment_p90
         FROM (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP
                   (ORDER BY date_part('epoch', COALESCE(i.accepted_at, i.declined_at) - i.invited_at)) AS answers
               {CREATED_IN_WINDOW} AND {IN_SCOPE}
                 AND i.send_count > 0 AND (i.accepted_at IS NOT NULL OR i.declined_at IS NOT NULL)) a,
              (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP
                   (ORDER BY date_part('epoch', i.first_enrolment_at - i.accepted_at)) AS enrolments
               {CREATED_IN_WINDOW} AND {IN_SCOPE} AND i.first_enrolment_at IS NOT NULL) e"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Date, _>(window.from)
    .bind::<Date, _>(window.until)
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
    window: Window,
) -> QueryResult<Vec<EventCount>> {
    diesel::sql_query(format!(
        "SELECT d.name, d.reason, d.paid_seat, SUM(d.n)::bigint AS n
         FROM analytics_event_days d JOIN catalogs c ON c.id = d.catalog_id
         WHERE d.day BETWEEN $3 AND $4 AND {IN_SCOPE}
         GROUP BY 1, 2, 3 HAVING SUM(d.n) <> 0 ORDER BY 1, 2, 3"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Date, _>(window.from)
    .bind::<Date, _>(window.until)
    .load(conn)
}

/// Joins the learner limit refused in the window.
pub fn refused_joins(conn: &mut PgConnection, scope: Scope, window: Window) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let found: Count = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n
         FROM catalogs c JOIN partners p ON p.id = c.partner_id
         JOIN refused_joins r ON r.catalog_id = c.id
         WHERE r.occurred_at >= ($3::date::timestamp AT TIME ZONE p.time_zone)
           AND r.occurred_at < (($4::date + 1)::timestamp AT TIME ZONE p.time_zone)
           AND {IN_SCOPE}"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Date, _>(window.from)
    .bind::<Date, _>(window.until)
    .get_result(conn)?;
    Ok(found.n)
}

/// One week (starting Monday) of activity.
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

pub fn weeks(conn: &mut PgConnection, scope: Scope, window: Window) -> QueryResult<Vec<WeekRow>> {
    // Active learners of weeks wholly inside the window are counted already; those of the
    // cut weeks at its ends are counted from the days inside the window.
    let (whole_from, whole_until) = window.whole_weeks();
    let (level, scope_id) = scope.level();
    diesel::sql_query(format!(
        "WITH counts AS (
             SELECT analytics_week(d.day) AS week,
                    COALESCE(SUM(d.n) FILTER (WHERE d.name = 'invitation.sent'), 0)::bigint AS sent,
                    COALESCE(SUM(d.n) FILTER (WHERE d.name = 'invitation.accepted'), 0)::bigint AS accepted,
                    COALESCE(SUM(d.n) FILTER (WHERE d.name = 'enrollment.activated'), 0)::bigint AS enrolments
             FROM analytics_event_days d JOIN catalogs c ON c.id = d.catalog_id
             WHERE d.day BETWEEN $3 AND $4 AND {IN_SCOPE}
             GROUP BY 1
         ), active AS (
             SELECT week, SUM(n)::bigint AS n FROM analytics_active_week_counts
             WHERE level = $5 AND scope_id = $6 AND week >= $7 AND week + 6 <= $8
             GROUP BY week
             UNION ALL
             -- The days before the first whole week and after the last (two ranges, so
             -- that each is an index range; they overlap only when no week is whole).
             SELECT analytics_week(a.day), COUNT(DISTINCT a.user_id)
             FROM (VALUES ($3::date, LEAST($4::date, $7::date - 1)),
                          (GREATEST($3::date, $8::date + 1), $4::date)) AS cut (first_day, last_day)
             JOIN analytics_active_days a ON a.day BETWEEN cut.first_day AND cut.last_day
             JOIN catalogs c ON c.id = a.catalog_id
             WHERE {IN_SCOPE}
             GROUP BY 1
         )
         SELECT week, COALESCE(active.n, 0) AS active_learners, COALESCE(counts.sent, 0) AS sent,
                COALESCE(counts.accepted, 0) AS accepted, COALESCE(counts.enrolments, 0) AS enrolments
         FROM counts FULL JOIN active USING (week)
         WHERE COALESCE(active.n, 0) + COALESCE(counts.sent, 0) + COALESCE(counts.accepted, 0)
               + COALESCE(counts.enrolments, 0) > 0
         ORDER BY week"
    ))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Date, _>(window.from)
    .bind::<Date, _>(window.until)
    .bind::<SmallInt, _>(level)
    .bind::<BigInt, _>(scope_id)
    .bind::<Date, _>(whole_from)
    .bind::<Date, _>(whole_until)
    .load(conn)
}

/// Folds the roll-ups' deltas into one row per key; answers how many rows it folded
/// (0 as well when another runner is folding).
pub fn fold(conn: &mut PgConnection) -> QueryResult<i64> {
    super::fold_with(conn, "analytics_fold")
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
                COALESCE(n.learners, 0)::bigint AS learners, c.user_limit::bigint AS user_limit,
                COALESCE(n.paid_seats, 0)::bigint AS seats_used,
                c.course_enrollments_limit::bigint AS seat_limit
         FROM catalogs c JOIN partners p ON p.id = c.partner_id
         LEFT JOIN LATERAL (SELECT SUM(learners) AS learners, SUM(paid_seats) AS paid_seats
                            FROM catalog_counts WHERE catalog_id = c.id) n ON true
         WHERE c.archived_at IS NULL
           AND ($1::bigint IS NULL OR c.partner_id = $1)
           AND ($2::bigint IS NULL OR c.id = $2)
         ORDER BY p.name, c.name, c.id",
    )
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn whole_weeks_are_those_inside_the_window() {
        // Wednesday 2026-11-04 to Tuesday 2026-11-24: the weeks of the 9th and the 16th.
        let window = Window {
            from: day("2026-11-04"),
            until: day("2026-11-24"),
        };
        assert_eq!(window.whole_weeks(), (day("2026-11-09"), day("2026-11-22")));
        // Monday to Sunday: exactly one whole week.
        let window = Window {
            from: day("2026-11-09"),
            until: day("2026-11-15"),
        };
        assert_eq!(window.whole_weeks(), (day("2026-11-09"), day("2026-11-15")));
        // Three days inside one week: none.
        let window = Window {
            from: day("2026-11-10"),
            until: day("2026-11-12"),
        };
        let (first, last) = window.whole_weeks();
        assert!(first > last);
    }
}
