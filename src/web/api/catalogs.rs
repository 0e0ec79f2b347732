//! Catalogs by slug (rule 3) and their courses in order.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::{ApiError, ErrorBody, next_link, ok_json};
use crate::db::Db;
use crate::models::catalogs::Catalog;
use crate::services::ServiceContext;
use crate::services::api::{self, Standing};

/// A catalog. Its limits are shown only to those who manage it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogOut {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The partner's code.
    pub partner: String,
    /// `upcoming`, `active`, `ended` or `archived`.
    pub state: String,
    pub available_start: DateTime<Utc>,
    pub available_end: DateTime<Utc>,
    pub is_self_enrollment: bool,
    pub allow_self_unenrollment: bool,
    pub support_email: String,
    /// Most active learners (0: no limit); for staff and the partner's managers.
    pub user_limit: Option<i32>,
    /// Most paid seats in use (0: no limit); for staff and the partner's managers.
    pub course_enrollments_limit: Option<i32>,
}

impl CatalogOut {
    pub fn new(catalog: &Catalog, standing: Standing, partner: String) -> Self {
        let manages = standing == Standing::Manages;
        Self {
            slug: catalog.slug.clone(),
            name: catalog.name.clone(),
            description: catalog.description.clone(),
            partner,
            state: catalog.phase_at(Utc::now()).label().to_string(),
            available_start: catalog.available_start,
            available_end: catalog.available_end,
            is_self_enrollment: catalog.is_self_enrollment,
            allow_self_unenrollment: catalog.allow_self_unenrollment,
            support_email: catalog.support_email.clone(),
            user_limit: manages.then_some(catalog.user_limit),
            course_enrollments_limit: manages.then_some(catalog.course_enrollments_limit),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogList {
    pub catalogs: Vec<CatalogOut>,
    /// The next page, or null on the last.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogsQuery {
    /// The last slug of the previous page (from `next`).
    pub after: Option<String>,
    /// Page size, 1–200 (50 when absent).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CourseOut {
    pub key: String,
    pub title: String,
    /// Modes such as `audit`, `verified`.
    pub modes: Vec<String>,
    /// Needs a paid seat for full access.
    pub is_paid: bool,
    /// 0-based place in the catalog's order.
    pub position: i32,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CourseList {
    pub courses: Vec<CourseOut>,
}

/// Catalogs the caller may see: staff every one, a partner's managers their partner's,
/// anyone the ones rule 3 shows them; by slug, a page at a time.
#[utoipa::path(
    tag = "catalogs",
    params(CatalogsQuery),
    responses(
        (status = 200, body = CatalogList),
        (status = 400, body = ErrorBody, description = "a bad `limit`"),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs")]
pub async fn list(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    query: web::Query<CatalogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let query = query.into_inner();
    let limit = api::page_size(query.limit)?;
    let cache = ctx.patterns.clone();
    let after = query.after.clone();
    let (page, codes, more) = db
        .run(move |conn| {
            let (page, more) = api::catalogs(conn, &cache, &actor, after.as_deref(), limit)?;
            let codes = api::partner_codes(conn, &page.iter().map(|(c, _)| c).collect::<Vec<_>>())?;
            Ok((page, codes, more))
        })
        .await?;
    let last = page.last().filter(|_| more).map(|(c, _)| c.slug.clone());
    let next = next_link("/api/v1/catalogs", &[], last, limit);
    let catalogs = page
        .iter()
        .map(|(c, s)| CatalogOut::new(c, *s, codes.get(&c.partner_id).cloned().unwrap_or_default()))
        .collect();
    ok_json(&CatalogList { catalogs, next })
}

/// One catalog; 404 when the caller may not see it.
#[utoipa::path(
    tag = "catalogs",
    params(("slug" = String, Path, description = "the catalog's slug")),
    responses(
        (status = 200, body = CatalogOut),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs/{slug}")]
pub async fn show(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let (catalog, standing, code) = db
        .run(move |conn| {
            let (catalog, standing) = api::catalog(conn, &cache, &actor, &slug)?;
            let code = api::partner_codes(conn, &[&catalog])?
                .remove(&catalog.partner_id)
                .unwrap_or_default();
            Ok((catalog, standing, code))
        })
        .await?;
    ok_json(&CatalogOut::new(&catalog, standing, code))
}

/// The catalog's courses in their order.
#[utoipa::path(
    tag = "catalogs",
    params(("slug" = String, Path, description = "the catalog's slug")),
    responses(
        (status = 200, body = CourseList),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs/{slug}/courses")]
pub async fn courses(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let found = db
        .run(move |conn| api::courses(conn, &cache, &actor, &slug))
        .await?;
    let courses = found
        .into_iter()
        .map(|(place, course)| CourseOut {
            key: course.key,
            title: course.title,
            modes: course.modes,
            is_paid: course.is_paid,
            position: place.position,
            starts_at: course.starts_at,
            ends_at: course.ends_at,
        })
        .collect();
    ok_json(&CourseList { courses })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(show).service(courses);
}
