//! Memberships of a catalog (rules 4–6) and course access through it (rule 7).

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::{ApiError, ErrorBody, next_link, ok_json};
use crate::db::Db;
use crate::error::Error;
use crate::services::ServiceContext;
use crate::services::api::{self, Membership};
use crate::services::enrollments::{self, CourseAccess};

/// Someone's membership of a catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipOut {
    pub email: String,
    pub full_name: String,
    pub active: bool,
    pub joined_at: DateTime<Utc>,
    /// How they came in: `manual`, `bulk`, `self_enrollment`, `pre_enrollment` or `api`.
    pub channel: String,
}

impl From<Membership> for MembershipOut {
    fn from(m: Membership) -> Self {
        Self {
            email: m.user.email,
            full_name: m.user.full_name,
            active: m.learner.is_active,
            joined_at: m.learner.joined_at,
            channel: m.channel,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipList {
    pub memberships: Vec<MembershipOut>,
    /// The next page, or null on the last.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembershipQuery {
    /// One person's membership (staff and managers: anyone's; a learner: their own).
    pub email: Option<String>,
    /// From a `next` link.
    pub after: Option<i64>,
    /// Page size, 1–200 (50 when absent).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailQuery {
    /// Someone else (staff and the partner's managers); absent: the caller.
    pub email: Option<String>,
}

/// Memberships: without `email`, every active learner for staff and the partner's
/// managers, the caller's own (or 404) for a learner; with `email`, that person's (a
/// learner asking for someone else: 403). Always a list.
#[utoipa::path(
    tag = "memberships",
    params(("slug" = String, Path, description = "the catalog's slug"), MembershipQuery),
    responses(
        (status = 200, body = MembershipList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs/{slug}/enrollment")]
pub async fn show(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    query: web::Query<MembershipQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let query = query.into_inner();
    let limit = api::page_size(query.limit)?;
    let path = format!("/api/v1/catalogs/{slug}/enrollment");
    let (found, more) = db
        .run(move |conn| match &query.email {
            Some(email) => Ok((
                vec![api::membership_of(conn, &cache, &actor, &slug, email)?],
                false,
            )),
            None => api::memberships(conn, &cache, &actor, &slug, query.after, limit),
        })
        .await?;
    let last = found.last().filter(|_| more).map(|m| m.user.id.to_string());
    let next = next_link(&path, &[], last, limit);
    ok_json(&MembershipList {
        memberships: found.into_iter().map(MembershipOut::from).collect(),
        next,
    })
}

/// Joins: without `email` the caller (accepting their waiting invitation, or
/// self-enrolling where rule 4 allows); with `email`, staff and the partner's managers
/// enrol that existing account (channel `api`). 409 when already a learner.
#[utoipa::path(
    tag = "memberships",
    params(("slug" = String, Path, description = "the catalog's slug"), EmailQuery),
    responses(
        (status = 201, body = MembershipOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`forbidden`, or `not_allowed_to_enroll` (rule 4)"),
        (status = 404, body = ErrorBody, description = "unknown catalog or user"),
        (status = 409, body = ErrorBody, description = "`conflict` (already a learner), `user_limit_reached`, `catalog_unavailable`"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/catalogs/{slug}/enrollment")]
pub async fn join(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    query: web::Query<EmailQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let email = query.into_inner().email;
    let joined = db
        .transaction(move |conn| api::join(conn, &cache, &actor, &slug, email.as_deref()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(MembershipOut::from(joined)))
}

/// Ends a membership (rule 6): staff and the partner's managers anyone's; a learner
/// their own where the catalog lets learners leave (403 otherwise). 404 when not an
/// active learner.
#[utoipa::path(
    tag = "memberships",
    params(("slug" = String, Path, description = "the catalog's slug"), EmailQuery),
    responses(
        (status = 204, description = "removed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[delete("/api/v1/catalogs/{slug}/enrollment")]
pub async fn remove(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    query: web::Query<EmailQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let email = query.into_inner().email;
    db.transaction(move |conn| api::remove(conn, &cache, &actor, &slug, email.as_deref()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceOut {
    pub id: i64,
    pub active: bool,
    /// A seat of this catalog was used by this request.
    pub created: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarningOut {
    pub code: String,
    pub detail: String,
}

/// What a course request came to.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourseAccessOut {
    pub access_granted: bool,
    /// The enrolment's mode: `verified` with a paid seat, else the open mode.
    pub mode: String,
    pub licence: Option<LicenceOut>,
    pub warning: Option<WarningOut>,
}

/// Rule 7 for the caller: open courses enrol at their open mode; paid ones use one of
/// the catalog's paid seats (or a paid enrolment the caller already holds). No seat left:
/// 409 `course_limit_reached`, or 200 with that warning when the caller keeps an open
/// enrolment.
#[utoipa::path(
    tag = "courses",
    params(
        ("slug" = String, Path, description = "the catalog's slug"),
        ("course_key" = String, Path, description = "the course's key, e.g. course-v1:ACMEx+CS101+2026"),
    ),
    responses(
        (status = 200, body = CourseAccessOut),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`not_allowed_to_enroll`"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`course_limit_reached`"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/catalogs/{slug}/courses/{course_key}/enroll")]
pub async fn enroll(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let (slug, key) = path.into_inner();
    // The refusal's `blocked` event is kept: the transaction commits, then it is answered.
    let access = db
        .transaction(move |conn| {
            let (catalog, course) = api::catalog_course(conn, &cache, &actor, &slug, &key)?;
            enrollments::request_course_access(conn, &actor, catalog.id, course.id)
        })
        .await?
        .into_result()?;
    let verified = crate::domain::course::VERIFIED.to_string();
    let body = match access {
        CourseAccess::Open { mode } | CourseAccess::AlreadyPaid { mode } => CourseAccessOut {
            access_granted: true,
            mode,
            licence: None,
            warning: None,
        },
        CourseAccess::ExistingLicence { licence_id, .. } => CourseAccessOut {
            access_granted: true,
            mode: verified,
            licence: Some(LicenceOut {
                id: licence_id,
                active: true,
                created: false,
            }),
            warning: None,
        },
        CourseAccess::Granted { licence_id } => CourseAccessOut {
            access_granted: true,
            mode: verified,
            licence: Some(LicenceOut {
                id: licence_id,
                active: true,
                created: true,
            }),
            warning: None,
        },
        CourseAccess::KeptAtMode { mode } => CourseAccessOut {
            access_granted: true,
            mode,
            licence: None,
            warning: Some(WarningOut {
                code: "course_limit_reached".into(),
                detail: "no paid seat is left in this catalog; the open enrolment is kept".into(),
            }),
        },
        CourseAccess::Refused(_) => {
            return Err(Error::internal(anyhow::anyhow!("a refusal passed into_result")).into());
        }
    };
    ok_json(&body)
}

/// Deactivates a paid seat (staff, and managers of the catalog that owns it); the
/// learner's enrolment goes back to its open mode.
#[utoipa::path(
    tag = "courses",
    params(("id" = i64, Path, description = "the paid seat's id")),
    responses(
        (status = 200, body = LicenceOut),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`invalid_transition`: already released"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[delete("/api/v1/licences/{id}")]
pub async fn deactivate_licence(
    caller: ApiCaller,
    db: web::Data<Db>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let id = id.into_inner();
    let licence = db
        .transaction(move |conn| {
            enrollments::deactivate_licence(conn, &actor, id, Some("deactivated through the API"))
        })
        .await?;
    ok_json(&LicenceOut {
        id: licence.id,
        active: licence.is_active,
        created: false,
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show)
        .service(join)
        .service(remove)
        .service(enroll)
        .service(deactivate_licence);
}
