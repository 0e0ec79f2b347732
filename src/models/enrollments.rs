//! Platform enrolments and licences (catalog course enrolments).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{courses, licences, platform_enrollments};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = platform_enrollments)]
pub struct PlatformEnrollment {
    pub id: i64,
    pub user_id: i64,
    pub course_id: i64,
    pub mode: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn find_enrollment(
    conn: &mut PgConnection,
    user_id: i64,
    course_id: i64,
) -> QueryResult<Option<PlatformEnrollment>> {
    platform_enrollments::table
        .filter(platform_enrollments::user_id.eq(user_id))
        .filter(platform_enrollments::course_id.eq(course_id))
        .select(PlatformEnrollment::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Sets the enrolment's mode and makes it active, creating it when missing.
pub fn upsert_enrollment(
    conn: &mut PgConnection,
    user_id: i64,
    course_id: i64,
    mode: &str,
) -> QueryResult<PlatformEnrollment> {
    diesel::insert_into(platform_enrollments::table)
        .values((
            platform_enrollments::user_id.eq(user_id),
            platform_enrollments::course_id.eq(course_id),
            platform_enrollments::mode.eq(mode),
            platform_enrollments::is_active.eq(true),
        ))
        .on_conflict((
            platform_enrollments::user_id,
            platform_enrollments::course_id,
        ))
        .do_update()
        .set((
            platform_enrollments::mode.eq(mode),
            platform_enrollments::is_active.eq(true),
            platform_enrollments::updated_at.eq(diesel::dsl::now),
        ))
        .returning(PlatformEnrollment::as_returning())
        .get_result(conn)
}

pub fn enrollments_of(
    conn: &mut PgConnection,
    user_id: i64,
) -> QueryResult<Vec<PlatformEnrollment>> {
    platform_enrollments::table
        .filter(platform_enrollments::user_id.eq(user_id))
        .select(PlatformEnrollment::as_select())
        .load(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = licences)]
pub struct Licence {
    pub id: i64,
    pub user_id: i64,
    pub course_id: i64,
    pub catalog_id: i64,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn find_licence(
    conn: &mut PgConnection,
    user_id: i64,
    course_id: i64,
) -> QueryResult<Option<Licence>> {
    licences::table
        .filter(licences::user_id.eq(user_id))
        .filter(licences::course_id.eq(course_id))
        .select(Licence::as_select())
        .for_update()
        .first(conn)
        .optional()
}

pub fn find_licence_by_id(conn: &mut PgConnection, id: i64) -> QueryResult<Licence> {
    licences::table
        .find(id)
        .select(Licence::as_select())
        .first(conn)
}

pub fn lock_licence(conn: &mut PgConnection, id: i64) -> QueryResult<Licence> {
    licences::table
        .find(id)
        .select(Licence::as_select())
        .for_update()
        .first(conn)
}

/// Active licences a catalog owns for paid courses: what its seat limit counts.
pub fn count_active_owned(conn: &mut PgConnection, catalog_id: i64) -> QueryResult<i64> {
    licences::table
        .inner_join(courses::table)
        .filter(licences::catalog_id.eq(catalog_id))
        .filter(licences::is_active.eq(true))
        .filter(courses::is_paid.eq(true))
        .count()
        .get_result(conn)
}

pub fn insert_licence(
    conn: &mut PgConnection,
    user_id: i64,
    course_id: i64,
    catalog_id: i64,
) -> QueryResult<Licence> {
    diesel::insert_into(licences::table)
        .values((
            licences::user_id.eq(user_id),
            licences::course_id.eq(course_id),
            licences::catalog_id.eq(catalog_id),
            licences::is_active.eq(true),
        ))
        .returning(Licence::as_returning())
        .get_result(conn)
}

/// Makes the licence active again, owned by the catalog that re-grants it.
pub fn reactivate_licence(
    conn: &mut PgConnection,
    id: i64,
    catalog_id: i64,
) -> QueryResult<Licence> {
    diesel::update(licences::table.find(id))
        .set((
            licences::is_active.eq(true),
            licences::catalog_id.eq(catalog_id),
            licences::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Licence::as_returning())
        .get_result(conn)
}

pub fn deactivate_licence(conn: &mut PgConnection, id: i64) -> QueryResult<Licence> {
    diesel::update(licences::table.find(id))
        .set((
            licences::is_active.eq(false),
            licences::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Licence::as_returning())
        .get_result(conn)
}

/// The active licences one catalog owns for one user.
pub fn active_owned_by_catalog_for_user(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_id: i64,
) -> QueryResult<Vec<Licence>> {
    licences::table
        .filter(licences::catalog_id.eq(catalog_id))
        .filter(licences::user_id.eq(user_id))
        .filter(licences::is_active.eq(true))
        .select(Licence::as_select())
        .order(licences::id)
        .for_update()
        .load(conn)
}

pub fn licences_of(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<Licence>> {
    licences::table
        .filter(licences::user_id.eq(user_id))
        .select(Licence::as_select())
        .load(conn)
}

/// A licence with its holder, course and owning catalog.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct LicenceRow {
    #[diesel(embed)]
    pub licence: Licence,
    #[diesel(select_expression = super::schema::users::email)]
    pub email: String,
    #[diesel(select_expression = courses::key)]
    pub course_key: String,
    #[diesel(select_expression = courses::title)]
    pub course_title: String,
    #[diesel(select_expression = super::schema::catalogs::name)]
    pub owner_catalog: String,
}

/// Latest change first.
const LICENCE_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("licences.updated_at", super::KeyKind::Time),
        ("licences.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for LicenceRow {
    fn key(&self) -> Vec<String> {
        vec![
            super::time_key(self.licence.updated_at),
            self.licence.id.to_string(),
        ]
    }
}

pub fn list_owned_by_catalog(
    conn: &mut PgConnection,
    catalog_id: i64,
    course_id: Option<i64>,
    active: Option<bool>,
    page: super::PageRequest,
) -> QueryResult<super::Paginated<LicenceRow>> {
    use super::schema::{catalogs, users};
    let query = || {
        let mut query = licences::table
            .inner_join(users::table)
            .inner_join(courses::table)
            .inner_join(catalogs::table)
            .filter(licences::catalog_id.eq(catalog_id))
            .select(LicenceRow::as_select())
            .into_boxed();
        if let Some(course_id) = course_id {
            query = query.filter(licences::course_id.eq(course_id));
        }
        if let Some(active) = active {
            query = query.filter(licences::is_active.eq(active));
        }
        query
    };
    // The joins only add columns (their keys are required and constrained), so the
    // count reads licences alone: the same number without three joins.
    let count = || {
        let mut count = licences::table
            .filter(licences::catalog_id.eq(catalog_id))
            .select(licences::id)
            .into_boxed();
        if let Some(course_id) = course_id {
            count = count.filter(licences::course_id.eq(course_id));
        }
        if let Some(active) = active {
            count = count.filter(licences::is_active.eq(active));
        }
        count
    };
    super::keyset_page_counted_by(conn, query, count, &LICENCE_ORDER, page)
}

pub fn licence_batch_after(
    conn: &mut PgConnection,
    catalog_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<LicenceRow>> {
    use super::schema::{catalogs, users};
    licences::table
        .inner_join(users::table)
        .inner_join(courses::table)
        .inner_join(catalogs::table)
        .filter(licences::catalog_id.eq(catalog_id))
        .filter(licences::id.gt(after_id))
        .select(LicenceRow::as_select())
        .order(licences::id)
        .limit(limit)
        .load(conn)
}

/// Active licences this catalog owns, per user, for the users given.
pub fn active_owned_per_user(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    licences::table
        .filter(licences::catalog_id.eq(catalog_id))
        .filter(licences::user_id.eq_any(user_ids))
        .filter(licences::is_active.eq(true))
        .group_by(licences::user_id)
        .select((licences::user_id, diesel::dsl::count_star()))
        .load(conn)
}
