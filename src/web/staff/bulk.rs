//! The staff approval queue of bulk lists, each list's page with its decision, and its
//! result file.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::ReasonForm;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::bulk::{BulkJobRow, PENDING_APPROVAL};
use crate::models::partners::PartnerRow;
use crate::models::{PageRequest, Paginated};
use crate::services::bulk::{self, JobView};
use crate::services::{ServiceContext, partners};
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, format_datetime, render, render_invalid, see_other};
use crate::web::partner::bulk::{
    cancel_question, cancelled, job_page, progress_json, results_csv, status_words,
};
use crate::web::session::TypedSession;

/// The statuses the queue can be filtered by, in the order offered.
const STATUSES: [&str; 7] = [
    "pending_approval",
    "approved",
    "running",
    "done",
    "rejected",
    "cancelled",
    "failed",
];

#[derive(Template)]
#[template(path = "staff/bulk_queue.html")]
struct QueuePage {
    page: Page,
    list: Paginated<BulkJobRow>,
    pager: Pager,
    partners: Vec<PartnerRow>,
    status_filter: String,
    partner_filter: Option<i64>,
}

impl QueuePage {
    fn when(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        at.as_ref().map(format_datetime).unwrap_or_default()
    }
    fn partner_selected(&self, id: &i64) -> bool {
        self.partner_filter == Some(*id)
    }
    fn partner_name(&self, id: &i64) -> String {
        let id = *id;
        self.partners
            .iter()
            .find(|p| p.partner.id == id)
            .map(|p| p.partner.name.clone())
            .unwrap_or_default()
    }
    fn words(&self, status: &str) -> &'static str {
        status_words(status)
    }
    fn statuses(&self) -> [&'static str; 7] {
        STATUSES
    }
}

#[derive(Deserialize)]
struct QueueQuery {
    /// Absent: waiting for approval; empty: every status.
    status: Option<String>,
    #[serde(default)]
    partner: String,
    page: Option<i64>,
}

#[get("/bulk")]
async fn queue(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    query: web::Query<QueueQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let status_text = query
        .status
        .clone()
        .unwrap_or_else(|| PENDING_APPROVAL.to_string());
    let status = STATUSES.iter().copied().find(|s| *s == status_text.trim());
    let partner_filter = query.partner.trim().parse::<i64>().ok();
    let request = PageRequest::new(query.page, None).at(position.0);
    let (list, partners) = db
        .run(move |conn| {
            let list = bulk::queue(conn, &actor, status, partner_filter, request)?;
            let partners = partners::list(conn, &actor, "", PageRequest::new(None, Some(100)))?;
            Ok((list, partners.items))
        })
        .await?;
    let status_shown = status.unwrap_or("");
    let partner_text = partner_filter.map(|p| p.to_string()).unwrap_or_default();
    let pager = Pager::new(
        &list,
        "/staff/bulk",
        &[("status", status_shown), ("partner", &partner_text)],
    );
    render(&QueuePage {
        page,
        list,
        pager,
        partners,
        status_filter: status_shown.to_string(),
        partner_filter,
    })
}

fn staff_paths(view: &JobView) -> (String, (String, String)) {
    (
        format!("/staff/bulk/{}", view.job.id),
        ("/staff/bulk".to_string(), "Bulk lists".to_string()),
    )
}

#[get("/bulk/{id}")]
async fn show(
    req: HttpRequest,
    staff: Staff,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let page = job_page(
        &req,
        &staff.0,
        &db,
        &ctx,
        path.into_inner(),
        staff_paths,
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/bulk/{id}/approve")]
async fn approve(
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (actor, ctx, id) = (staff.0.actor(), ctx.get_ref().clone(), path.into_inner());
    match db
        .transaction(move |conn| bulk::approve(conn, &ctx, &actor, id))
        .await
    {
        Ok(_) => session.success("Approved: the list is running, and its submitter was told."),
        Err(e @ Error::InvalidTransition(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&format!("/staff/bulk/{id}")))
}

#[post("/bulk/{id}/reject")]
async fn reject(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let reason = form.into_inner().reason;
    let (actor, service_ctx, typed) = (staff.0.actor(), ctx.get_ref().clone(), reason.clone());
    match db
        .transaction(move |conn| bulk::reject(conn, &service_ctx, &actor, id, &typed))
        .await
    {
        Ok(_) => {
            session.success("Rejected: the submitter was told why.");
            Ok(see_other(&format!("/staff/bulk/{id}")))
        }
        Err(Error::Invalid(errors)) => {
            let page =
                job_page(&req, &staff.0, &db, &ctx, id, staff_paths, (reason, errors)).await?;
            render_invalid(&page)
        }
        Err(e @ Error::InvalidTransition(_)) => {
            session.error(e.public_message());
            Ok(see_other(&format!("/staff/bulk/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/bulk/{id}/cancel")]
async fn confirm_cancel(
    req: HttpRequest,
    staff: Staff,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let page = cancel_question(
        &req,
        &staff.0,
        &db,
        id,
        format!("/staff/bulk/{id}"),
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/bulk/{id}/cancel")]
async fn cancel(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    cancelled(
        &req,
        &staff.0,
        session,
        &db,
        id,
        format!("/staff/bulk/{id}"),
        form.into_inner().reason,
    )
    .await
}

#[get("/bulk/{id}/progress")]
async fn progress(
    staff: Staff,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    progress_json(&db, &staff.0.actor(), path.into_inner()).await
}

#[get("/bulk/{id}/results.csv")]
async fn results(
    staff: Staff,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    results_csv(&db, &staff.0.actor(), path.into_inner()).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(queue)
        .service(show)
        .service(approve)
        .service(reject)
        .service(confirm_cancel)
        .service(cancel)
        .service(progress)
        .service(results);
}
