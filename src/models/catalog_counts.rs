//! Each catalog's active learners and paid seats in use, as the triggers of the
//! `catalog_counts` migration keep them (deltas summed), with the other figures its
//! summary shows.

use diesel::prelude::*;

use super::PrepareOnce;
use diesel::sql_types::BigInt;

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

/// Whose figures: one catalog, or every active catalog of a partner. Each has a
/// statement of its own whose row estimate does not hang on its values, so PostgreSQL
/// keeps one plan for it (an id list would be planned anew on each call).
#[derive(Debug, Clone, Copy)]
pub enum FiguresOf {
    Catalog(i64),
    ActiveCatalogsOf(i64),
}

/// Open invitations now, refusals of the last `window_days`.
pub fn figures(
    conn: &mut PgConnection,
    of: FiguresOf,
    window_days: i64,
    open_cap: i64,
) -> QueryResult<Vec<CatalogFigures>> {
    let (catalogs, id) = match of {
        FiguresOf::Catalog(id) => ("c.id = $1", id),
        FiguresOf::ActiveCatalogsOf(partner_id) => {
            ("c.partner_id = $1 AND c.archived_at IS NULL", partner_id)
        }
    };
    // The cap and the window are written in and the time read in SQL, not bound: the
    // planner then sees the same numbers each call and keeps one plan (see `Limited`).
    diesel::sql_query(format!(
        "SELECT c.id AS catalog_id,
             COALESCE(n.learners, 0)::bigint AS learners,
             COALESCE(n.paid_seats, 0)::bigint AS paid_seats,
             (SELECT COUNT(*) FROM (SELECT 1 FROM invitations i
               WHERE i.catalog_id = c.id AND i.accepted_at IS NULL AND i.declined_at IS NULL
                 AND i.removed_at IS NULL AND i.expires_at > now() LIMIT {open_cap}) open) AS open_invitations,
             (SELECT COUNT(*) FROM tracking_events e
               WHERE e.catalog_id = c.id AND e.name = 'enrollment.blocked'
                 AND e.reason = 'course_limit_reached'
                 AND e.occurred_at >= now() - interval '{window_days} days') AS seats_full,
             (SELECT COUNT(*) FROM refused_joins r
               WHERE r.catalog_id = c.id
                 AND r.occurred_at >= now() - interval '{window_days} days') AS learner_limit
         FROM catalogs c
         LEFT JOIN LATERAL (SELECT SUM(learners) AS learners, SUM(paid_seats) AS paid_seats
                            FROM catalog_counts WHERE catalog_id = c.id) n ON true
         WHERE {catalogs}"
    ))
    .bind::<BigInt, _>(id)
    .prepared()
    .load(conn)
}

/// Folds the deltas into one row per catalog; answers how many rows it folded (0 as
/// well when another runner is folding).
pub fn fold(conn: &mut PgConnection) -> QueryResult<i64> {
    super::fold_with(conn, "catalog_counts_fold")
}
