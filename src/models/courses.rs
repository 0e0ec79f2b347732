use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{courses, organisations, shared_pool_courses};
use super::{PageRequest, Paginated, contains_pattern};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = courses)]
pub struct Course {
    pub id: i64,
    pub key: String,
    pub organisation_id: i64,
    pub title: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub modes: Vec<String>,
    pub is_paid: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = courses)]
#[diesel(treat_none_as_null = true)]
pub struct CourseForm<'a> {
    pub key: &'a str,
    pub organisation_id: i64,
    pub title: &'a str,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub modes: Vec<String>,
}

pub fn insert(conn: &mut PgConnection, form: &CourseForm<'_>) -> QueryResult<Course> {
    diesel::insert_into(courses::table)
        .values(form)
        .returning(Course::as_returning())
        .get_result(conn)
}

pub fn update(conn: &mut PgConnection, id: i64, form: &CourseForm<'_>) -> QueryResult<Course> {
    diesel::update(courses::table.find(id))
        .set((form, courses::updated_at.eq(diesel::dsl::now)))
        .returning(Course::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Course> {
    courses::table
        .find(id)
        .select(Course::as_select())
        .first(conn)
}

/// Courses by id, in the order of `ids`.
pub fn find_many(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<Course>> {
    let mut found: Vec<Course> = courses::table
        .filter(courses::id.eq_any(ids))
        .select(Course::as_select())
        .load(conn)?;
    found.sort_by_key(|c| ids.iter().position(|id| *id == c.id));
    Ok(found)
}

pub fn find_by_key(conn: &mut PgConnection, key: &str) -> QueryResult<Option<Course>> {
    courses::table
        .filter(courses::key.eq(key))
        .select(Course::as_select())
        .first(conn)
        .optional()
}

pub fn keys_existing(conn: &mut PgConnection, keys: &[String]) -> QueryResult<Vec<String>> {
    courses::table
        .filter(courses::key.eq_any(keys))
        .select(courses::key)
        .load(conn)
}

/// A course listed with its organisation's short name and whether it is in the shared pool.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct CourseRow {
    #[diesel(embed)]
    pub course: Course,
    #[diesel(select_expression = organisations::short_name)]
    pub organisation: String,
    #[diesel(select_expression = shared_pool_courses::course_id.nullable().is_not_null())]
    #[diesel(select_expression_type = diesel::dsl::IsNotNull<diesel::dsl::Nullable<shared_pool_courses::course_id>>)]
    pub shared: bool,
}

pub fn search(
    conn: &mut PgConnection,
    search: &str,
    shared_only: bool,
    page: PageRequest,
) -> QueryResult<Paginated<CourseRow>> {
    let query = || {
        let mut query = courses::table
            .inner_join(organisations::table)
            .left_join(shared_pool_courses::table)
            .select(CourseRow::as_select())
            .into_boxed();
        if !search.trim().is_empty() {
            let pattern = contains_pattern(search);
            query = query.filter(
                courses::key
                    .ilike(pattern.clone())
                    .or(courses::title.ilike(pattern)),
            );
        }
        if shared_only {
            query = query.filter(shared_pool_courses::course_id.nullable().is_not_null());
        }
        query
    };
    super::keyset_page(conn, query, &SEARCH_ORDER, page.searching(search))
}

/// By course key (unique).
const SEARCH_ORDER: super::SortKey = super::SortKey {
    columns: &[("courses.key", super::KeyKind::Text)],
    descending: false,
};

impl super::Keyed for CourseRow {
    fn key(&self) -> Vec<String> {
        vec![self.course.key.clone()]
    }
}

pub fn is_in_shared_pool(conn: &mut PgConnection, course_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        shared_pool_courses::table.filter(shared_pool_courses::course_id.eq(course_id)),
    ))
    .get_result(conn)
}

pub fn add_to_shared_pool(
    conn: &mut PgConnection,
    course_id: i64,
    added_by: i64,
) -> QueryResult<usize> {
    diesel::insert_into(shared_pool_courses::table)
        .values((
            shared_pool_courses::course_id.eq(course_id),
            shared_pool_courses::added_by.eq(added_by),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
}

pub fn remove_from_shared_pool(conn: &mut PgConnection, course_id: i64) -> QueryResult<usize> {
    diesel::delete(shared_pool_courses::table.filter(shared_pool_courses::course_id.eq(course_id)))
        .execute(conn)
}

/// Courses a partner's catalog may add: its organisation's or the shared pool's,
/// not already in the catalog.
pub fn eligible_for_catalog(
    conn: &mut PgConnection,
    organisation_id: i64,
    catalog_id: i64,
    search: &str,
    limit: i64,
) -> QueryResult<Vec<Course>> {
    use super::schema::catalog_courses;
    let in_catalog = catalog_courses::table
        .filter(catalog_courses::catalog_id.eq(catalog_id))
        .select(catalog_courses::course_id);
    let pool = shared_pool_courses::table.select(shared_pool_courses::course_id);
    let mut query = courses::table
        .filter(
            courses::organisation_id
                .eq(organisation_id)
                .or(courses::id.eq_any(pool)),
        )
        .filter(courses::id.ne_all(in_catalog))
        .select(Course::as_select())
        .into_boxed();
    if !search.trim().is_empty() {
        let pattern = contains_pattern(search);
        query = query.filter(
            courses::key
                .ilike(pattern.clone())
                .or(courses::title.ilike(pattern)),
        );
    }
    query.order(courses::title).limit(limit).load(conn)
}
