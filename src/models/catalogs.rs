use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::courses::Course;
use super::schema::{catalog_courses, catalog_email_patterns, catalogs, courses};
use crate::domain::AvailabilityWindow;
use crate::domain::availability::CatalogPhase;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = catalogs)]
pub struct Catalog {
    pub id: i64,
    pub partner_id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub available_start: DateTime<Utc>,
    pub available_end: DateTime<Utc>,
    pub user_limit: i32,
    pub course_enrollments_limit: i32,
    pub is_self_enrollment: bool,
    pub allow_self_unenrollment: bool,
    pub support_email: String,
    pub authorization_message: String,
    pub alternative_link: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Hidden from learners and from the partner's lists; its data stays.
    pub archived_at: Option<DateTime<Utc>>,
    pub archived_by: Option<i64>,
}

impl Catalog {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }

    pub fn window(&self) -> AvailabilityWindow {
        AvailabilityWindow::clamped(self.available_start, self.available_end)
    }

    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        !self.is_archived() && self.window().is_active_at(now)
    }

    pub fn phase_at(&self, now: DateTime<Utc>) -> CatalogPhase {
        if self.is_archived() {
            CatalogPhase::Archived
        } else {
            self.window().phase_at(now)
        }
    }
}

#[derive(Debug, Clone, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = catalogs)]
pub struct CatalogForm<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub available_start: DateTime<Utc>,
    pub available_end: DateTime<Utc>,
    pub user_limit: i32,
    pub course_enrollments_limit: i32,
    pub is_self_enrollment: bool,
    pub allow_self_unenrollment: bool,
    pub support_email: &'a str,
    pub authorization_message: &'a str,
    pub alternative_link: &'a str,
}

pub fn insert(
    conn: &mut PgConnection,
    partner_id: i64,
    slug: &str,
    created_by: Option<i64>,
    form: &CatalogForm<'_>,
) -> QueryResult<Catalog> {
    diesel::insert_into(catalogs::table)
        .values((
            catalogs::partner_id.eq(partner_id),
            catalogs::slug.eq(slug),
            catalogs::created_by.eq(created_by),
            form,
        ))
        .returning(Catalog::as_returning())
        .get_result(conn)
}

pub fn update(conn: &mut PgConnection, id: i64, form: &CatalogForm<'_>) -> QueryResult<Catalog> {
    diesel::update(catalogs::table.find(id))
        .set((form, catalogs::updated_at.eq(diesel::dsl::now)))
        .returning(Catalog::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Catalog> {
    catalogs::table
        .find(id)
        .select(Catalog::as_select())
        .first(conn)
}

/// Locks the catalog row: joining, removal and quota checks are serialised per catalog.
///
/// The one lock order, everywhere: the catalog first, then its invitation, then the
/// learner's user row, then licences and platform enrolments. A use case that needs a
/// lower lock first (say, to find which catalog a learner is in) reads without locking,
/// takes the catalog, then locks the rest; taking them the other way round deadlocks
/// against enrolment.
pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<Catalog> {
    catalogs::table
        .find(id)
        .select(Catalog::as_select())
        .for_update()
        .first(conn)
}

/// Like `lock`, but fails at once ("could not obtain lock") when another transaction
/// holds the row.
pub fn lock_nowait(conn: &mut PgConnection, id: i64) -> QueryResult<Catalog> {
    catalogs::table
        .find(id)
        .select(Catalog::as_select())
        .for_update()
        .no_wait()
        .first(conn)
}

pub fn find_by_slug(conn: &mut PgConnection, slug: &str) -> QueryResult<Option<Catalog>> {
    catalogs::table
        .filter(catalogs::slug.eq(slug))
        .select(Catalog::as_select())
        .first(conn)
        .optional()
}

/// Catalogs not archived (of one partner, or all) in slug order after `after`.
pub fn page_by_slug(
    conn: &mut PgConnection,
    partner_id: Option<i64>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Catalog>> {
    let mut query = catalogs::table
        .filter(catalogs::archived_at.is_null())
        .select(Catalog::as_select())
        .order(catalogs::slug)
        .limit(limit)
        .into_boxed();
    if let Some(partner) = partner_id {
        query = query.filter(catalogs::partner_id.eq(partner));
    }
    if let Some(after) = after {
        query = query.filter(catalogs::slug.gt(after.to_string()));
    }
    query.load(conn)
}

/// Slugs equal to `base` or of the form `base-N`.
pub fn slugs_like(conn: &mut PgConnection, base: &str) -> QueryResult<Vec<String>> {
    let escaped = base
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    catalogs::table
        .filter(
            catalogs::slug
                .eq(base)
                .or(catalogs::slug.like(format!("{escaped}-%"))),
        )
        .select(catalogs::slug)
        .load(conn)
}

/// A partner's catalogs in use (not archived).
pub fn for_partner(conn: &mut PgConnection, partner_id: i64) -> QueryResult<Vec<Catalog>> {
    catalogs::table
        .filter(catalogs::partner_id.eq(partner_id))
        .filter(catalogs::archived_at.is_null())
        .select(Catalog::as_select())
        .order((catalogs::available_start.desc(), catalogs::id.desc()))
        .load(conn)
}

/// A partner's archived catalogs, latest archived first.
pub fn archived_for_partner(conn: &mut PgConnection, partner_id: i64) -> QueryResult<Vec<Catalog>> {
    catalogs::table
        .filter(catalogs::partner_id.eq(partner_id))
        .filter(catalogs::archived_at.is_not_null())
        .select(Catalog::as_select())
        .order((catalogs::archived_at.desc(), catalogs::id.desc()))
        .load(conn)
}

/// Archives a catalog (`Some(by)`) or takes it out of the archive (`None`).
pub fn set_archived(
    conn: &mut PgConnection,
    id: i64,
    archived: Option<(DateTime<Utc>, i64)>,
) -> QueryResult<Catalog> {
    diesel::update(catalogs::table.find(id))
        .set((
            catalogs::archived_at.eq(archived.map(|(at, _)| at)),
            catalogs::archived_by.eq(archived.map(|(_, by)| by)),
            catalogs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Catalog::as_returning())
        .get_result(conn)
}

pub fn count_archived(conn: &mut PgConnection, partner_id: i64) -> QueryResult<i64> {
    catalogs::table
        .filter(catalogs::partner_id.eq(partner_id))
        .filter(catalogs::archived_at.is_not_null())
        .count()
        .get_result(conn)
}

pub fn self_enrollment_catalogs(conn: &mut PgConnection) -> QueryResult<Vec<Catalog>> {
    catalogs::table
        .filter(catalogs::is_self_enrollment.eq(true))
        .filter(catalogs::archived_at.is_null())
        .select(Catalog::as_select())
        .order(catalogs::name)
        .load(conn)
}

pub fn by_ids(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<Catalog>> {
    catalogs::table
        .filter(catalogs::id.eq_any(ids))
        .select(Catalog::as_select())
        .order(catalogs::name)
        .load(conn)
}

pub fn patterns_of(conn: &mut PgConnection, catalog_id: i64) -> QueryResult<Vec<String>> {
    catalog_email_patterns::table
        .filter(catalog_email_patterns::catalog_id.eq(catalog_id))
        .select(catalog_email_patterns::pattern)
        .order(catalog_email_patterns::position)
        .load(conn)
}

/// The newest pattern row of each catalog that has patterns (of one, if given): patterns
/// are replaced whole, so this names the set.
pub fn pattern_revisions(
    conn: &mut PgConnection,
    catalog_id: Option<i64>,
) -> QueryResult<Vec<(i64, i64)>> {
    let mut query = catalog_email_patterns::table
        .group_by(catalog_email_patterns::catalog_id)
        .select((
            catalog_email_patterns::catalog_id,
            diesel::dsl::max(catalog_email_patterns::id).assume_not_null(),
        ))
        .into_boxed();
    if let Some(id) = catalog_id {
        query = query.filter(catalog_email_patterns::catalog_id.eq(id));
    }
    query.load(conn)
}

/// The patterns of these catalogs, each catalog's in order.
pub fn patterns_of_many(
    conn: &mut PgConnection,
    catalog_ids: &[i64],
) -> QueryResult<Vec<(i64, String)>> {
    catalog_email_patterns::table
        .filter(catalog_email_patterns::catalog_id.eq_any(catalog_ids))
        .select((
            catalog_email_patterns::catalog_id,
            catalog_email_patterns::pattern,
        ))
        .order((
            catalog_email_patterns::catalog_id,
            catalog_email_patterns::position,
        ))
        .load(conn)
}

pub fn replace_patterns(
    conn: &mut PgConnection,
    catalog_id: i64,
    patterns: &[String],
) -> QueryResult<()> {
    diesel::delete(
        catalog_email_patterns::table.filter(catalog_email_patterns::catalog_id.eq(catalog_id)),
    )
    .execute(conn)?;
    let rows: Vec<_> = patterns
        .iter()
        .enumerate()
        .map(|(position, pattern)| {
            (
                catalog_email_patterns::catalog_id.eq(catalog_id),
                catalog_email_patterns::position.eq(position as i32),
                catalog_email_patterns::pattern.eq(pattern),
            )
        })
        .collect();
    diesel::insert_into(catalog_email_patterns::table)
        .values(&rows)
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = catalog_courses)]
pub struct CatalogCourse {
    pub id: i64,
    pub catalog_id: i64,
    pub course_id: i64,
    pub position: i32,
    pub added_at: DateTime<Utc>,
}

/// The catalog's courses in order.
pub fn courses_of(
    conn: &mut PgConnection,
    catalog_id: i64,
) -> QueryResult<Vec<(CatalogCourse, Course)>> {
    catalog_courses::table
        .inner_join(courses::table)
        .filter(catalog_courses::catalog_id.eq(catalog_id))
        .select((CatalogCourse::as_select(), Course::as_select()))
        .order(catalog_courses::position)
        .load(conn)
}

pub fn catalog_course(
    conn: &mut PgConnection,
    catalog_id: i64,
    course_id: i64,
) -> QueryResult<Option<CatalogCourse>> {
    catalog_courses::table
        .filter(catalog_courses::catalog_id.eq(catalog_id))
        .filter(catalog_courses::course_id.eq(course_id))
        .select(CatalogCourse::as_select())
        .first(conn)
        .optional()
}

pub fn course_count(conn: &mut PgConnection, catalog_id: i64) -> QueryResult<i64> {
    catalog_courses::table
        .filter(catalog_courses::catalog_id.eq(catalog_id))
        .count()
        .get_result(conn)
}

/// Inserts at `position`, shifting the courses at and after it down by one.
pub fn insert_course_at(
    conn: &mut PgConnection,
    catalog_id: i64,
    course_id: i64,
    position: i32,
) -> QueryResult<CatalogCourse> {
    diesel::update(
        catalog_courses::table
            .filter(catalog_courses::catalog_id.eq(catalog_id))
            .filter(catalog_courses::position.ge(position)),
    )
    .set(catalog_courses::position.eq(catalog_courses::position + 1))
    .execute(conn)?;
    diesel::insert_into(catalog_courses::table)
        .values((
            catalog_courses::catalog_id.eq(catalog_id),
            catalog_courses::course_id.eq(course_id),
            catalog_courses::position.eq(position),
        ))
        .returning(CatalogCourse::as_returning())
        .get_result(conn)
}

/// Removes a course and closes the gap, keeping positions 0..n-1.
pub fn remove_course(
    conn: &mut PgConnection,
    catalog_id: i64,
    course_id: i64,
) -> QueryResult<Option<i32>> {
    let removed: Option<i32> = diesel::delete(
        catalog_courses::table
            .filter(catalog_courses::catalog_id.eq(catalog_id))
            .filter(catalog_courses::course_id.eq(course_id)),
    )
    .returning(catalog_courses::position)
    .get_result(conn)
    .optional()?;
    if let Some(position) = removed {
        diesel::update(
            catalog_courses::table
                .filter(catalog_courses::catalog_id.eq(catalog_id))
                .filter(catalog_courses::position.gt(position)),
        )
        .set(catalog_courses::position.eq(catalog_courses::position - 1))
        .execute(conn)?;
    }
    Ok(removed)
}

/// Moves a course from one position to another, shifting those in between.
pub fn move_course(
    conn: &mut PgConnection,
    catalog_id: i64,
    from: i32,
    to: i32,
) -> QueryResult<()> {
    if from == to {
        return Ok(());
    }
    let moving = catalog_courses::table
        .filter(catalog_courses::catalog_id.eq(catalog_id))
        .filter(catalog_courses::position.eq(from))
        .select(catalog_courses::id)
        .first::<i64>(conn)?;
    let in_catalog = catalog_courses::catalog_id.eq(catalog_id);
    if from < to {
        diesel::update(
            catalog_courses::table
                .filter(in_catalog)
                .filter(catalog_courses::position.gt(from))
                .filter(catalog_courses::position.le(to)),
        )
        .set(catalog_courses::position.eq(catalog_courses::position - 1))
        .execute(conn)?;
    } else {
        diesel::update(
            catalog_courses::table
                .filter(in_catalog)
                .filter(catalog_courses::position.ge(to))
                .filter(catalog_courses::position.lt(from)),
        )
        .set(catalog_courses::position.eq(catalog_courses::position + 1))
        .execute(conn)?;
    }
    diesel::update(catalog_courses::table.find(moving))
        .set(catalog_courses::position.eq(to))
        .execute(conn)?;
    Ok(())
}
