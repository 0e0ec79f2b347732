//! HTTP: handlers grouped by audience, extractors, CSRF, and the one route table.
//! Handlers call services only; they never write SQL.

pub mod account;
pub mod accounts;
pub mod api;
mod api_tokens;
pub mod auth;
pub mod csrf;
pub mod error;
mod health;
mod home;
mod invitations;
mod learner;
pub mod page;
pub(crate) mod partner;
pub(crate) mod registration;
pub mod request_log;
pub mod session;
mod staff;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

use self::error::AppError;

const STYLESHEET: &str = include_str!("../../static/style.css");

#[get("/static/style.css")]
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

const JOB_PROGRESS_SCRIPT: &str = include_str!("../../static/job-progress.js");

/// The only script: it updates a running bulk list's progress in place.
#[get("/static/job-progress.js")]
async fn job_progress_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(JOB_PROGRESS_SCRIPT)
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, AppError> {
    if req.path().starts_with("/api/") {
        return Ok(api::unrouted(&req));
    }
    Err(AppError::PageNotFound)
}

/// The one route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet)
        .service(job_progress_script)
        .service(health::healthz)
        .service(home::home);
    accounts::routes(cfg);
    account::routes(cfg);
    api_tokens::routes(cfg);
    staff::routes(cfg);
    partner::routes(cfg);
    invitations::routes(cfg);
    learner::routes(cfg);
    registration::routes(cfg);
    api::routes(cfg);
    cfg.default_service(web::to(not_found));
}

/// Answers `HEAD` as the same address's `GET`: the HTTP layer, knowing the request was a
/// `HEAD`, sends the headers (the body's length included) and leaves the body out.
pub async fn head_as_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

/// Serves each request with at most one database connection, taken by its first unit of
/// work and handed back once the response is ready.
pub async fn one_connection_per_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    crate::db::with_request_connection(next.call(req)).await
}
