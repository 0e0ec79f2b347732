//! Pre-enrolments (rule 8): people who join once their account appears, by email or by
//! an outside identity (`provider:remote_id`), the seed's enrolment-allowed records.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::{ApiError, ErrorBody, next_link, ok_json};
use crate::db::Db;
use crate::models::pending_enrollments::PendingEnrollment;
use crate::services::ServiceContext;
use crate::services::api;
use crate::services::pre_enrollment::PreEnrolled;

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingOut {
    pub id: i64,
    pub email: Option<String>,
    /// `provider:remote_id`, when keyed by an outside identity.
    pub external_user_key: Option<String>,
    /// `pending`, `waiting`, `fulfilled`, `expired` or `cancelled`.
    pub status: String,
    /// Why a `waiting` one cannot be fulfilled yet.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub fulfilled_at: Option<DateTime<Utc>>,
}

impl From<PendingEnrollment> for PendingOut {
    fn from(p: PendingEnrollment) -> Self {
        let status = p.status_at(Utc::now());
        Self {
            id: p.id,
            external_user_key: match (&p.external_provider, &p.external_remote_id) {
                (Some(provider), Some(id)) => Some(format!("{provider}:{id}")),
                _ => None,
            },
            email: p.email,
            status: status.as_str().to_string(),
            reason: p.last_error,
            created_at: p.created_at,
            expires_at: p.expires_at,
            fulfilled_at: p.fulfilled_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingList {
    pub pending_enrollments: Vec<PendingOut>,
    /// The next page, or null on the last.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    /// `pending`, `waiting`, `fulfilled`, `expired` or `cancelled`.
    pub status: Option<String>,
    /// From a `next` link.
    pub after: Option<i64>,
    /// Page size, 1–200 (50 when absent).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PendingRequest {
    /// The person's address; or give `external_user_key`.
    pub email: Option<String>,
    /// `provider:remote_id` of an outside identity; or give `email`.
    pub external_user_key: Option<String>,
    /// Keys of the catalog's courses to give on joining.
    #[serde(default)]
    pub courses: Vec<String>,
}

/// A catalog's pre-enrolments (staff and the partner's managers), a page at a time.
#[utoipa::path(
    tag = "pre-enrolments",
    params(("slug" = String, Path, description = "the catalog's slug"), PendingQuery),
    responses(
        (status = 200, body = PendingList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs/{slug}/pending-enrollments")]
pub async fn list(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    query: web::Query<PendingQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let query = query.into_inner();
    let limit = api::page_size(query.limit)?;
    let path = format!("/api/v1/catalogs/{slug}/pending-enrollments");
    let status = query.status.clone();
    let (page, more) = db
        .run(move |conn| {
            api::pending_enrollments(
                conn,
                &cache,
                &actor,
                &slug,
                status.as_deref(),
                query.after,
                limit,
            )
        })
        .await?;
    let last = page.last().filter(|_| more).map(|i| i.id.to_string());
    let next = next_link(&path, &[("status", query.status.as_deref())], last, limit);
    ok_json(&PendingList {
        pending_enrollments: page.into_iter().map(PendingOut::from).collect(),
        next,
    })
}

/// Pre-enrols one person. Someone who already has an account joins at once (201 with
/// status `fulfilled`, or `waiting` with the reason when the catalog cannot take them
/// yet); anyone else waits as `pending` until their account appears.
#[utoipa::path(
    tag = "pre-enrolments",
    params(("slug" = String, Path, description = "the catalog's slug")),
    request_body = PendingRequest,
    responses(
        (status = 201, body = PendingOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "already pre-enrolled or a learner; the catalog has ended"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/catalogs/{slug}/pending-enrollments")]
pub async fn create(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    body: web::Json<PendingRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let slug = slug.into_inner();
    let body = body.into_inner();
    let context = ctx.get_ref().clone();
    let made = db
        .transaction(move |conn| {
            api::pre_enroll(
                conn,
                &context,
                &actor,
                &slug,
                body.email.as_deref(),
                body.external_user_key.as_deref(),
                &body.courses,
            )
        })
        .await?;
    let found = match made {
        PreEnrolled::Pending(p) | PreEnrolled::Joined(p) | PreEnrolled::Waiting(p, _) => p,
    };
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(PendingOut::from(found)))
}

/// Cancels a pending or waiting pre-enrolment.
#[utoipa::path(
    tag = "pre-enrolments",
    params(
        ("slug" = String, Path, description = "the catalog's slug"),
        ("id" = i64, Path, description = "the pre-enrolment's id"),
    ),
    responses(
        (status = 200, body = PendingOut),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "already fulfilled, expired or cancelled"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[delete("/api/v1/catalogs/{slug}/pending-enrollments/{id}")]
pub async fn cancel(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let (slug, id) = path.into_inner();
    let cancelled = db
        .transaction(move |conn| api::cancel_pre_enrollment(conn, &cache, &actor, &slug, id))
        .await?;
    ok_json(&PendingOut::from(cancelled))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(cancel);
}
