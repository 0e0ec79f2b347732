//! Memberships across catalogs, a membership's history, and enrolment in bulk.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::{ApiError, ErrorBody, next_link, ok_json};
use crate::db::Db;
use crate::services::ServiceContext;
use crate::services::api;

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentOut {
    pub id: i64,
    /// The catalog's slug.
    pub catalog: String,
    pub email: String,
    pub full_name: String,
    pub joined_at: DateTime<Utc>,
    pub channel: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentList {
    pub enrollments: Vec<EnrollmentOut>,
    /// The next page, or null on the last.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentsQuery {
    /// Only this catalog (slug).
    pub catalog: Option<String>,
    /// Only this person (staff and managers; a learner only their own).
    pub email: Option<String>,
    /// From a `next` link.
    pub after: Option<i64>,
    /// Page size, 1–200 (50 when absent).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Active memberships: the caller's own, or for staff and managers every one in their
/// scope; filterable by catalog and address.
#[utoipa::path(
    tag = "memberships",
    params(EnrollmentsQuery),
    responses(
        (status = 200, body = EnrollmentList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/enrollments")]
pub async fn list(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    query: web::Query<EnrollmentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let query = query.into_inner();
    let limit = api::page_size(query.limit)?;
    let (catalog, email) = (query.catalog.clone(), query.email.clone());
    let (page, more) = db
        .run(move |conn| {
            api::enrollments(
                conn,
                &cache,
                &actor,
                catalog.as_deref(),
                email.as_deref(),
                query.after,
                limit,
            )
        })
        .await?;
    let last = page.last().filter(|_| more).map(|m| m.id.to_string());
    let next = next_link(
        "/api/v1/enrollments",
        &[
            ("catalog", query.catalog.as_deref()),
            ("email", query.email.as_deref()),
        ],
        last,
        limit,
    );
    let enrollments = page
        .into_iter()
        .map(|m| EnrollmentOut {
            id: m.id,
            catalog: m.catalog_slug,
            email: m.email,
            full_name: m.full_name,
            joined_at: m.joined_at,
            channel: m.channel,
        })
        .collect();
    ok_json(&EnrollmentList { enrollments, next })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// The audit action, e.g. `invitation.accept`.
    pub action: String,
    /// The action in words.
    pub what: String,
    /// Who did it (their address), when a person did.
    pub actor: Option<String>,
    /// `staff`, `partner_manager`, `learner`, `api_token`, `system`, …
    pub role: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub email: String,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The person's address.
    pub email: String,
}

/// A membership's changes (who, with which role, when, the transition and the reason),
/// oldest first, from the audit trail: staff and the partner's managers.
#[utoipa::path(
    tag = "memberships",
    params(("slug" = String, Path, description = "the catalog's slug"), HistoryQuery),
    responses(
        (status = 200, body = History),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs/{slug}/enrollment/history")]
pub async fn history(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let email = query.into_inner().email;
    let asked = email.clone();
    let rows = db
        .run(move |conn| api::history(conn, &cache, &actor, &slug, &asked))
        .await?;
    let history = rows
        .into_iter()
        .map(|row| HistoryEntry {
            at: row.occurred_at,
            what: crate::services::audit::action_words(&row.action).to_string(),
            action: row.action,
            actor: row.actor_email,
            role: row.actor_role,
            from_status: row.from_status,
            to_status: row.to_status,
            reason: row.reason,
        })
        .collect();
    ok_json(&History { email, history })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkEnrollRequest {
    /// Catalog slugs, separated by commas.
    pub catalogs: String,
    /// Addresses, separated by commas; at most 1,000.
    pub emails: String,
    /// Course keys to give on joining, separated by commas.
    #[serde(default)]
    pub courses: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkEnrollResult {
    pub email: String,
    pub catalog: String,
    /// `enrolled`, `pending`, `waiting`, `already_learner`, `already_pending`,
    /// `invalid_email`, `catalog_not_found`, `invalid_course`, `catalog_unavailable` or
    /// `refused`.
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkEnrollResults {
    pub results: Vec<BulkEnrollResult>,
}

/// Enrols addresses into catalogs (staff and managers): existing accounts join at once,
/// unknown addresses are pre-enrolled; one result per (email, catalog). More than 1,000
/// addresses: 413 (use a bulk list in the catalog's pages).
#[utoipa::path(
    tag = "memberships",
    request_body = BulkEnrollRequest,
    responses(
        (status = 200, body = BulkEnrollResults),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "`too_many_emails`"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/enrollments/bulk_enroll")]
pub async fn bulk_enroll(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    body: web::Json<BulkEnrollRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let body = body.into_inner();
    let count = api::bulk_enroll_size(&body.emails);
    if count > api::MAX_BULK_ENROLL {
        return Err(ApiError::TooLarge(format!(
            "{count} addresses were sent; at most {} a call. For more, upload a bulk list on the catalog's Bulk lists page.",
            api::MAX_BULK_ENROLL
        )));
    }
    let context = ctx.get_ref().clone();
    let results = db
        .transaction(move |conn| {
            api::bulk_enroll(
                conn,
                &context,
                &actor,
                &body.catalogs,
                &body.emails,
                &body.courses,
            )
        })
        .await?;
    ok_json(&BulkEnrollResults {
        results: results
            .into_iter()
            .map(|r| BulkEnrollResult {
                email: r.email,
                catalog: r.catalog,
                outcome: r.outcome.to_string(),
                detail: r.detail,
            })
            .collect(),
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(history).service(bulk_enroll);
}
