//! A catalog's invitations (rules 5 and 6): list, send, resend, remove.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::{ApiError, ErrorBody, next_link, ok_json};
use crate::db::Db;
use crate::models::invitations::Invitation;
use crate::services::api;
use crate::services::{ServiceContext, invitations};

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationOut {
    pub id: i64,
    pub email: String,
    /// `sent`, `accepted`, `declined`, `expired` or `removed`.
    pub status: String,
    /// `manual`, `bulk`, `self_enrollment`, `pre_enrollment` or `api`.
    pub channel: String,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
    /// Emails sent for it so far.
    pub send_count: i32,
}

impl From<Invitation> for InvitationOut {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.id,
            status: i.status().as_str().to_string(),
            email: i.email,
            channel: i.channel,
            invited_at: i.invited_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
            declined_at: i.declined_at,
            removed_at: i.removed_at,
            send_count: i.send_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<InvitationOut>,
    /// The next page, or null on the last.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationsQuery {
    /// `sent`, `accepted`, `declined`, `expired` or `removed`.
    pub status: Option<String>,
    /// From a `next` link.
    pub after: Option<i64>,
    /// Page size, 1–200 (50 when absent).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteRequest {
    /// Addresses to invite, at most 100.
    pub emails: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InviteResult {
    pub email: String,
    /// `sent`, `sent_outside_patterns`, `sent_beyond_places`, `already_invited`,
    /// `already_learner`, `invalid_email`, `duplicate_in_request` or `refused`.
    pub outcome: String,
    pub sent: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InviteResults {
    pub results: Vec<InviteResult>,
}

/// A catalog's invitations (staff and the partner's managers), by id, a page at a time.
#[utoipa::path(
    tag = "invitations",
    params(("slug" = String, Path, description = "the catalog's slug"), InvitationsQuery),
    responses(
        (status = 200, body = InvitationList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/catalogs/{slug}/invitations")]
pub async fn list(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    query: web::Query<InvitationsQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let cache = ctx.patterns.clone();
    let slug = slug.into_inner();
    let query = query.into_inner();
    let limit = api::page_size(query.limit)?;
    let path = format!("/api/v1/catalogs/{slug}/invitations");
    let status = query.status.clone();
    let (page, more) = db
        .run(move |conn| {
            api::invitations(
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
    ok_json(&InvitationList {
        invitations: page.into_iter().map(InvitationOut::from).collect(),
        next,
    })
}

/// Invites each address (channel `api`; each emailed a link). 201 when every address
/// was sent an invitation, 207 with each outcome otherwise.
#[utoipa::path(
    tag = "invitations",
    params(("slug" = String, Path, description = "the catalog's slug")),
    request_body = InviteRequest,
    responses(
        (status = 201, body = InviteResults),
        (status = 207, body = InviteResults, description = "some addresses were not sent an invitation"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`catalog_unavailable`"),
        (status = 429, body = ErrorBody, description = "the partner's hourly email cap"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/catalogs/{slug}/invitations")]
pub async fn create(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    slug: web::Path<String>,
    body: web::Json<InviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let slug = slug.into_inner();
    let emails = body.into_inner().emails;
    let context = ctx.get_ref().clone();
    let report = db
        .transaction(move |conn| api::invite(conn, &context, &actor, &slug, emails))
        .await?;
    let results: Vec<InviteResult> = report
        .entries
        .iter()
        .map(|(email, outcome)| InviteResult {
            email: email.clone(),
            outcome: outcome.code().to_string(),
            sent: outcome.was_sent(),
            detail: outcome.words(),
        })
        .collect();
    let status = if results.iter().all(|r| r.sent) {
        StatusCode::CREATED
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok(HttpResponse::build(status)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(InviteResults { results }))
}

/// Sends a sent or expired invitation again, with a new link and expiry.
#[utoipa::path(
    tag = "invitations",
    params(("id" = i64, Path, description = "the invitation's id")),
    responses(
        (status = 200, body = InvitationOut),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not sent or expired"),
        (status = 429, body = ErrorBody, description = "sent too recently, or the partner's hourly email cap"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/invitations/{id}/resend")]
pub async fn resend(
    caller: ApiCaller,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let id = id.into_inner();
    let context = ctx.get_ref().clone();
    let sent = db
        .transaction(move |conn| invitations::resend(conn, &context, &actor, id))
        .await?;
    ok_json(&InvitationOut::from(sent.invitation))
}

/// Revokes a sent invitation, or removes an accepted one with its membership (rule 6).
#[utoipa::path(
    tag = "invitations",
    params(("id" = i64, Path, description = "the invitation's id")),
    responses(
        (status = 200, body = InvitationOut),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "a learner's own invitation in a catalog that does not let learners leave"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "already declined or removed"),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[post("/api/v1/invitations/{id}/remove")]
pub async fn remove(
    caller: ApiCaller,
    db: web::Data<Db>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let id = id.into_inner();
    let removed = db
        .transaction(move |conn| {
            invitations::remove(conn, &actor, id, Some("removed through the API"))
        })
        .await?;
    ok_json(&InvitationOut::from(removed))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(resend)
        .service(remove);
}
