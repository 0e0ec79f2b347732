use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::catalog_learners;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = catalog_learners)]
pub struct CatalogLearner {
    pub id: i64,
    pub catalog_id: i64,
    pub user_id: i64,
    pub invitation_id: i64,
    pub is_active: bool,
    pub joined_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A plain read: every change to learner rows happens under the catalog's lock
/// (`catalogs::lock`), which serialises them.
pub fn find(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_id: i64,
) -> QueryResult<Option<CatalogLearner>> {
    catalog_learners::table
        .filter(catalog_learners::catalog_id.eq(catalog_id))
        .filter(catalog_learners::user_id.eq(user_id))
        .select(CatalogLearner::as_select())
        .first(conn)
        .optional()
}

/// Active learners of a catalog by user id, after `after`.
pub fn active_page(
    conn: &mut PgConnection,
    catalog_id: i64,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<CatalogLearner>> {
    catalog_learners::table
        .filter(catalog_learners::catalog_id.eq(catalog_id))
        .filter(catalog_learners::is_active.eq(true))
        .filter(catalog_learners::user_id.gt(after.unwrap_or(i64::MIN)))
        .select(CatalogLearner::as_select())
        .order(catalog_learners::user_id)
        .limit(limit)
        .load(conn)
}

pub fn count_active(conn: &mut PgConnection, catalog_id: i64) -> QueryResult<i64> {
    catalog_learners::table
        .filter(catalog_learners::catalog_id.eq(catalog_id))
        .filter(catalog_learners::is_active.eq(true))
        .count()
        .get_result(conn)
}

pub fn active_catalog_ids(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<i64>> {
    catalog_learners::table
        .filter(catalog_learners::user_id.eq(user_id))
        .filter(catalog_learners::is_active.eq(true))
        .select(catalog_learners::catalog_id)
        .load(conn)
}

/// How many catalogs each of these users is an active learner of.
pub fn membership_counts(
    conn: &mut PgConnection,
    user_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    catalog_learners::table
        .filter(catalog_learners::user_id.eq_any(user_ids))
        .filter(catalog_learners::is_active.eq(true))
        .group_by(catalog_learners::user_id)
        .select((catalog_learners::user_id, diesel::dsl::count_star()))
        .load(conn)
}

/// Creates the one row for (catalog, user), or makes the existing one active again.
pub fn activate(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_id: i64,
    invitation_id: i64,
    at: DateTime<Utc>,
) -> QueryResult<CatalogLearner> {
    diesel::insert_into(catalog_learners::table)
        .values((
            catalog_learners::catalog_id.eq(catalog_id),
            catalog_learners::user_id.eq(user_id),
            catalog_learners::invitation_id.eq(invitation_id),
            catalog_learners::is_active.eq(true),
            catalog_learners::joined_at.eq(at),
        ))
        .on_conflict((catalog_learners::catalog_id, catalog_learners::user_id))
        .do_update()
        .set((
            catalog_learners::invitation_id.eq(invitation_id),
            catalog_learners::is_active.eq(true),
            catalog_learners::joined_at.eq(at),
            catalog_learners::removed_at.eq(None::<DateTime<Utc>>),
            catalog_learners::updated_at.eq(at),
        ))
        .returning(CatalogLearner::as_returning())
        .get_result(conn)
}

pub fn deactivate(
    conn: &mut PgConnection,
    id: i64,
    at: DateTime<Utc>,
) -> QueryResult<CatalogLearner> {
    diesel::update(catalog_learners::table.find(id))
        .set((
            catalog_learners::is_active.eq(false),
            catalog_learners::removed_at.eq(at),
            catalog_learners::updated_at.eq(at),
        ))
        .returning(CatalogLearner::as_returning())
        .get_result(conn)
}

/// A learner row with the person and the licences this catalog owns for them.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct LearnerRow {
    #[diesel(embed)]
    pub learner: CatalogLearner,
    #[diesel(select_expression = super::schema::users::email)]
    pub email: String,
    #[diesel(select_expression = super::schema::users::full_name)]
    pub full_name: String,
}

pub fn list_for_catalog(
    conn: &mut PgConnection,
    catalog_id: i64,
    active: Option<bool>,
    search: &str,
    page: super::PageRequest,
) -> QueryResult<super::Paginated<LearnerRow>> {
    use super::schema::users;
    let searching = !search.trim().is_empty();
    let pattern = super::contains_pattern(search);
    let person_matches = || {
        users::email
            .like(super::lower_text(pattern.clone()))
            .or(users::full_name.ilike(pattern.clone()))
    };
    let query = || {
        let mut query = catalog_learners::table
            .inner_join(users::table)
            .filter(catalog_learners::catalog_id.eq(catalog_id))
            .select(LearnerRow::as_select())
            .into_boxed();
        if let Some(active) = active {
            query = query.filter(catalog_learners::is_active.eq(active));
        }
        if searching {
            query = query.filter(person_matches());
        }
        query
    };
    // Counted from the catalog's learners alone (every one has its person), the people
    // a search matches taken as a set.
    let count = || {
        let mut count = catalog_learners::table
            .filter(catalog_learners::catalog_id.eq(catalog_id))
            .select(catalog_learners::id)
            .into_boxed();
        if let Some(active) = active {
            count = count.filter(catalog_learners::is_active.eq(active));
        }
        if searching {
            count = count.filter(
                catalog_learners::user_id
                    .eq_any(users::table.filter(person_matches()).select(users::id)),
            );
        }
        count
    };
    super::keyset_page_counted_by(conn, query, count, &LIST_ORDER, page.searching(search))
}

/// Latest joined first.
const LIST_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("catalog_learners.joined_at", super::KeyKind::Time),
        ("catalog_learners.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for LearnerRow {
    fn key(&self) -> Vec<String> {
        vec![
            super::time_key(self.learner.joined_at),
            self.learner.id.to_string(),
        ]
    }
}

pub fn batch_after(
    conn: &mut PgConnection,
    catalog_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<LearnerRow>> {
    use super::schema::users;
    catalog_learners::table
        .inner_join(users::table)
        .filter(catalog_learners::catalog_id.eq(catalog_id))
        .filter(catalog_learners::id.gt(after_id))
        .select(LearnerRow::as_select())
        .order(catalog_learners::id)
        .limit(limit)
        .load(conn)
}

/// Which of these addresses belong to active learners of the catalog.
pub fn active_emails_among(
    conn: &mut PgConnection,
    catalog_id: i64,
    emails: &[String],
) -> QueryResult<Vec<String>> {
    use super::schema::users;
    catalog_learners::table
        .inner_join(users::table)
        .filter(catalog_learners::catalog_id.eq(catalog_id))
        .filter(catalog_learners::is_active.eq(true))
        .filter(users::email.eq_any(emails))
        .select(users::email)
        .load(conn)
}

/// Which of these users are active learners of the catalog.
pub fn active_user_ids_among(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_ids: &[i64],
) -> QueryResult<Vec<i64>> {
    catalog_learners::table
        .filter(catalog_learners::catalog_id.eq(catalog_id))
        .filter(catalog_learners::is_active.eq(true))
        .filter(catalog_learners::user_id.eq_any(user_ids))
        .select(catalog_learners::user_id)
        .load(conn)
}

/// Whose memberships a list holds: every filter given narrows it.
#[derive(Debug, Clone, Default)]
pub struct MembershipScope {
    pub partner_id: Option<i64>,
    pub user_id: Option<i64>,
    pub catalog_id: Option<i64>,
    pub email: Option<String>,
}

/// An active membership with its catalog, person and channel.
#[derive(Debug, Clone, QueryableByName)]
pub struct MembershipRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub catalog_slug: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub email: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub full_name: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub joined_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub channel: String,
}

/// Active memberships in scope, by id after `after`.
pub fn memberships_page(
    conn: &mut PgConnection,
    scope: MembershipScope,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<MembershipRow>> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    diesel::sql_query(
        "SELECT l.id, c.slug AS catalog_slug, u.email, u.full_name, l.joined_at, i.channel
         FROM catalog_learners l
         JOIN catalogs c ON c.id = l.catalog_id
         JOIN users u ON u.id = l.user_id
         JOIN invitations i ON i.id = l.invitation_id
         WHERE l.is_active AND l.id > $1
           AND ($2::bigint IS NULL OR c.partner_id = $2)
           AND ($3::bigint IS NULL OR l.user_id = $3)
           AND ($4::bigint IS NULL OR l.catalog_id = $4)
           AND ($5::text IS NULL OR u.email = $5)
         ORDER BY l.id
         LIMIT $6",
    )
    .bind::<BigInt, _>(after.unwrap_or(0))
    .bind::<Nullable<BigInt>, _>(scope.partner_id)
    .bind::<Nullable<BigInt>, _>(scope.user_id)
    .bind::<Nullable<BigInt>, _>(scope.catalog_id)
    .bind::<Nullable<Text>, _>(scope.email)
    .bind::<BigInt, _>(limit)
    .load(conn)
}
