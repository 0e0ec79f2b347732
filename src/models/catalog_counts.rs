//! Each catalog's active learners and paid seats in use, as the triggers of the
//! `catalog_counts` migration keep them (deltas summed).

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};

#[derive(Debug, Clone, Copy, Default, QueryableByName, PartialEq, Eq)]
pub struct CatalogCounts {
    #[diesel(sql_type = BigInt)]
    pub catalog_id: i64,
    #[diesel(sql_type = BigInt)]
    pub learners: i64,
    #[diesel(sql_type = BigInt)]
    pub paid_seats: i64,
}

/// The counts of the catalogs given that have any.
pub fn for_catalogs(
    conn: &mut PgConnection,
    catalog_ids: &[i64],
) -> QueryResult<Vec<CatalogCounts>> {
    diesel::sql_query(
        "SELECT catalog_id, SUM(learners)::bigint AS learners, SUM(paid_seats)::bigint AS paid_seats
         FROM catalog_counts WHERE catalog_id = ANY($1) GROUP BY catalog_id",
    )
    .bind::<Array<BigInt>, _>(catalog_ids)
    .load(conn)
}

/// Folds the deltas into one row per catalog; answers how many rows it folded (0 as
/// well when another runner is folding).
pub fn fold(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Folded {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let folded: Folded = diesel::sql_query("SELECT catalog_counts_fold() AS n").get_result(conn)?;
    Ok(folded.n)
}
