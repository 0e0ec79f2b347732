//! Joins the learner limit refused. The refusal changes nothing (no audit entry, no
//! event); it is noted here after its transaction rolls back, so that managers see
//! how many people their limits turned away.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{refused_joins, users};
use crate::error::RefusedJoin;

pub fn insert(conn: &mut PgConnection, refused: &RefusedJoin) -> QueryResult<()> {
    // An account created in the refused transaction is gone with it.
    let user_exists: bool = diesel::select(diesel::dsl::exists(
        users::table.filter(users::id.eq(refused.user_id)),
    ))
    .get_result(conn)?;
    diesel::insert_into(refused_joins::table)
        .values((
            refused_joins::catalog_id.eq(refused.catalog_id),
            refused_joins::user_id.eq(user_exists.then_some(refused.user_id)),
        ))
        .execute(conn)
        .map(drop)
}

/// Refused joins older than the window managers see are of no more use.
pub fn prune_older_than(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(refused_joins::table.filter(refused_joins::occurred_at.lt(before))).execute(conn)
}
