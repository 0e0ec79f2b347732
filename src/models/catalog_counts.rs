//! Each catalog's active learners and paid seats in use, as the triggers of the
//! `catalog_counts` migration keep them (deltas summed), with the other figures its
//! summary shows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Timestamptz};

/// What a catalog's summary shows, in one query: learners and paid seats from the
/// counters, open invitations counted up to a cap, and the refusals of a recent window.
#[derive(Debug, Clone, Copy, Default, QueryableByName, PartialEq, Eq)]
pub struct CatalogFigures {
    #[diesel(sql_type = BigInt)]
    pub catalog_id: i64,
    #[diesel(sql_type = BigInt)]
    pub learners: i64,
    #[diesel(sql_type = BigInt)]
    pub paid_seats: i64,
    /// Open (unanswered, unexpired) invitations, up to the cap asked for.
    #[diesel(sql_type = BigInt)]
    pub open_invitations: i64,
    /// Paid seats refused for want of one since the window's start.
    #[diesel(sql_type = BigInt)]
    pub seats_full: i64,
    /// Joins the learner limit refused since the window's start.
    #[diesel(sql_type = BigInt)]
    pub learner_limit: i64,
}

pub fn figures(
    conn: &mut PgConnection,
    catalog_ids: &[i64],
    now: DateTime<Utc>,
    refused_since: DateTime<Utc>,
    open_cap: i64,
) -> QueryResult<Vec<CatalogFigures>> {
    diesel::sql_query(
        "SELECT c.id AS catalog_id,
             COALESCE(n.learners, 0)::bigint AS learners,
             COALESCE(n.paid_seats, 0)::bigint AS paid_seats,
             (SELECT COUNT(*) FROM (SELECT 1 FROM invitations i
               WHERE i.catalog_id = c.id AND i.accepted_at IS NULL AND i.declined_at IS NULL
                 AND i.removed_at IS NULL AND i.expires_at > $2 LIMIT $4) open) AS open_invitations,
             (SELECT COUNT(*) FROM tracking_events e
               WHERE e.catalog_id = c.id AND e.name = 'enrollment.blocked'
                 AND e.reason = 'course_limit_reached' AND e.occurred_at >= $3) AS seats_full,
             (SELECT COUNT(*) FROM refused_joins r
               WHERE r.catalog_id = c.id AND r.occurred_at >= $3) AS learner_limit
         FROM unnest($1::bigint[]) AS c(id)
         LEFT JOIN LATERAL (SELECT SUM(learners) AS learners, SUM(paid_seats) AS paid_seats
                            FROM catalog_counts WHERE catalog_id = c.id) n ON true",
    )
    .bind::<Array<BigInt>, _>(catalog_ids)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(refused_since)
    .bind::<BigInt, _>(open_cap)
    .load(conn)
}

/// Folds the deltas into one row per catalog; answers how many rows it folded (0 as
/// well when another runner is folding).
pub fn fold(conn: &mut PgConnection) -> QueryResult<i64> {
    super::fold_with(conn, "catalog_counts_fold")
}
