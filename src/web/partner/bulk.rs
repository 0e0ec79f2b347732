//! Bulk invitations and pre-enrolments of one catalog: the upload form and the list of
//! jobs, each job's page (preview, waiting, progress, results) and its result file.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use super::scope;
use crate::db::Db;
use crate::domain::bulk_input::{InputError, MAX_BULK_BYTES};
use crate::error::{Error, FieldErrors};
use crate::models::bulk::BulkJobRow;
use crate::models::catalogs::{Catalog, CatalogCourse};
use crate::models::courses::Course;
use crate::models::partners::Partner;
use crate::models::{PageRequest, Paginated};
use crate::services::bulk::{self, JobView, Preview, Source, Upload};
use crate::services::{ServiceContext, catalogs as catalog_service, exports};
use crate::web::auth::ManagerOrStaff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, render, render_invalid, see_other};
use crate::web::session::TypedSession;

fn bulk_path(partner: &Partner, catalog_id: i64) -> String {
    format!("/partner/{}/catalogs/{catalog_id}/bulk", partner.code)
}

/// The upload form as it is shown again.
#[derive(Debug, Clone, Default)]
pub struct BulkForm {
    pub kind: String,
    pub courses: Vec<String>,
    pub addresses: String,
    pub file_name: String,
    pub file: Vec<u8>,
}

impl BulkForm {
    pub fn has_course(&self, id: &i64) -> bool {
        self.courses.iter().any(|c| c.trim() == id.to_string())
    }
}

/// Reads the multipart form, refusing a file over the size limit as soon as it passes
/// it (nothing is stored).
async fn read_form(mut multipart: Multipart) -> Result<BulkForm, Error> {
    let mut form = BulkForm::default();
    let too_large = || Error::invalid("file", InputError::TooLarge.to_string());
    while let Some(field) = multipart.next().await {
        let mut field = field
            .map_err(|e| Error::invalid("file", format!("the upload could not be read ({e})")))?;
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| {
                Error::invalid("file", format!("the upload could not be read ({e})"))
            })?;
            if value.len() + chunk.len() > MAX_BULK_BYTES {
                return Err(too_large());
            }
            value.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8_lossy(&value).into_owned();
        match name.as_str() {
            "kind" => form.kind = text(),
            "courses" => form.courses.push(text()),
            "addresses" => form.addresses = text(),
            "file" => {
                form.file_name = file_name.unwrap_or_default();
                form.file = value;
            }
            _ => {}
        }
    }
    Ok(form)
}

#[derive(Template)]
#[template(path = "partner/bulk.html")]
struct BulkPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    courses: Vec<(CatalogCourse, Course)>,
    jobs: Paginated<BulkJobRow>,
    drafts: Vec<crate::models::bulk::BulkJob>,
    pager: Pager,
    form: BulkForm,
    errors: FieldErrors,
    threshold: usize,
    is_staff: bool,
}

impl BulkPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        super::local(&self.partner, at)
    }
    fn kept_hours(&self) -> i64 {
        bulk::KEEP_DRAFTS_HOURS
    }
    fn status_words(&self, status: &str) -> &'static str {
        status_words(status)
    }
    fn kind_checked(&self, kind: &str) -> bool {
        self.form.kind == kind || (self.form.kind.is_empty() && kind == "invite")
    }
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<i64>,
}

async fn bulk_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    ctx: &ServiceContext,
    (code, id): (String, i64),
    page_number: Option<i64>,
    (form, errors): (BulkForm, FieldErrors),
) -> Result<BulkPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let request = PageRequest::new(page_number, None)
        .at(crate::web::page::ListPosition::from_query(req.query_string()).0);
    let for_catalog = catalog.clone();
    let (courses, jobs, drafts) = db
        .run(move |conn| {
            let courses = catalog_service::courses(conn, &actor, for_catalog.id)?;
            let jobs = bulk::list_for_catalog(conn, &actor, &for_catalog, request)?;
            let drafts = bulk::my_drafts(conn, &actor, &for_catalog)?;
            Ok((courses, jobs, drafts))
        })
        .await?;
    let pager = Pager::new(&jobs, &bulk_path(&partner, catalog.id), &[]);
    Ok(BulkPage {
        page: Page::for_request(req, Some(&who.identity)),
        partner,
        catalog,
        courses,
        jobs,
        drafts,
        pager,
        form,
        errors,
        threshold: ctx.bulk_approval_threshold,
        is_staff: who.identity.user.is_staff,
    })
}

#[get("/catalogs/{id}/bulk")]
async fn show(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64)>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let page = bulk_page(
        &req,
        &who,
        &db,
        &ctx,
        path.into_inner(),
        query.page,
        (BulkForm::default(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/catalogs/{id}/bulk")]
async fn upload(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64)>,
    multipart: Multipart,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, code.clone(), Some(id)).await?;
    let outcome = match read_form(multipart).await {
        Ok(form) => {
            let typed = form.clone();
            let result = db
                .transaction(move |conn| {
                    let source = Source::from_form(&form.file, &form.addresses)?;
                    let name = match source {
                        Source::Csv(_) => form.file_name.as_str(),
                        Source::Pasted(_) => "pasted list",
                    };
                    bulk::upload(
                        conn,
                        &actor,
                        id,
                        &Upload {
                            kind: &form.kind,
                            source,
                            source_name: name,
                            course_ids: &form.courses,
                        },
                    )
                })
                .await;
            result.map_err(|e| (e, typed))
        }
        Err(e) => Err((e, BulkForm::default())),
    };
    match outcome {
        Ok(job) => Ok(see_other(&format!(
            "{}/{}",
            bulk_path(&partner, id),
            job.id
        ))),
        Err((Error::Invalid(errors), mut typed)) => {
            // A file cannot be shown again: the person chooses it once more.
            typed.file.clear();
            let page = bulk_page(&req, &who, &db, &ctx, (code, id), None, (typed, errors)).await?;
            render_invalid(&page)
        }
        Err((e, _)) => Err(e.into()),
    }
}

/// What a job's page offers, by who looks at it.
#[derive(Debug, Clone, Default)]
pub struct JobActions {
    pub submit: bool,
    pub cancel: bool,
    pub decide: bool,
}

#[derive(Template)]
#[template(path = "bulk/job.html")]
pub struct JobPage {
    pub page: Page,
    pub view: JobView,
    pub preview: Option<Preview>,
    /// Final outcome counts: (code, label, count).
    pub results: Vec<(String, String, i64)>,
    pub actions: JobActions,
    /// Where the job's forms post to and the result file is.
    pub base: String,
    /// The way back: the catalog's bulk page, or the staff queue.
    pub back: (String, String),
    pub reason: String,
    pub errors: FieldErrors,
}

impl JobPage {
    pub fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        super::local(&self.view.partner, at)
    }
    pub fn percent(&self) -> i64 {
        let total = i64::from(self.view.job.total_rows.max(1));
        i64::from(self.view.job.processed_rows) * 100 / total
    }
    /// A `<progress>` with a maximum of 0 reads as indeterminate.
    pub fn bar_max(&self) -> i32 {
        self.view.job.total_rows.max(1)
    }
    pub fn refreshes(&self) -> bool {
        matches!(self.view.job.status.as_str(), "approved" | "running")
    }
    pub fn status_words(&self) -> &'static str {
        status_words(&self.view.job.status)
    }
    pub fn places(&self, count: &i64) -> String {
        crate::web::page::count_of(count, "place", "places")
    }
    pub fn people(&self, count: &i64) -> String {
        crate::web::page::count_of(count, "person", "people")
    }
    pub fn kind_words(&self) -> &'static str {
        if self.view.job.kind == "pre_enroll" {
            "Pre-enrolment"
        } else {
            "Invitation"
        }
    }
}

pub use crate::services::bulk::status_words;

/// Builds a job's page for the person looking at it.
pub async fn job_page(
    req: &HttpRequest,
    who: &crate::web::auth::Identity,
    db: &Db,
    ctx: &ServiceContext,
    job_id: i64,
    base_and_back: impl FnOnce(&JobView) -> (String, (String, String)),
    (reason, errors): (String, FieldErrors),
) -> Result<JobPage, AppError> {
    let actor = who.actor();
    let ctx = ctx.clone();
    let (view, preview) = db
        .run(move |conn| {
            let view = bulk::find(conn, &actor, job_id)?;
            let preview = if view.job.status == "draft" || view.job.status == "pending_approval" {
                Some(bulk::preview(conn, &ctx, &actor, job_id)?)
            } else {
                None
            };
            Ok((view, preview))
        })
        .await?;
    let (base, back) = base_and_back(&view);
    let is_submitter = Some(who.user.id) == view.job.submitted_by;
    let actions = JobActions {
        submit: view.job.status == "draft" && is_submitter,
        cancel: view.job.is_open() && (is_submitter || who.user.is_staff),
        decide: view.job.status == "pending_approval" && who.user.is_staff,
    };
    let results = bulk::outcome_groups(&view.job);
    Ok(JobPage {
        page: Page::for_request(req, Some(who)),
        view,
        preview,
        results,
        actions,
        base,
        back,
        reason,
        errors,
    })
}

fn manager_paths(view: &JobView) -> (String, (String, String)) {
    let list = bulk_path(&view.partner, view.catalog.id);
    (
        format!("{list}/{}", view.job.id),
        (list, format!("Bulk lists of {}", view.catalog.name)),
    )
}

/// The job must be one of this catalog's: another catalog's id in the path is not found.
async fn check_path(
    db: &Db,
    who: &ManagerOrStaff,
    (code, id, job_id): (String, i64, i64),
) -> Result<(), AppError> {
    let actor = who.actor();
    let (_, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let view = db.run(move |conn| bulk::find(conn, &actor, job_id)).await?;
    if view.job.catalog_id != catalog.id {
        return Err(Error::NotFound("bulk job").into());
    }
    Ok(())
}

#[get("/catalogs/{id}/bulk/{job_id}")]
async fn show_job(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let path = path.into_inner();
    let job_id = path.2;
    check_path(&db, &who, path).await?;
    let page = job_page(
        &req,
        &who.identity,
        &db,
        &ctx,
        job_id,
        manager_paths,
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

/// Runs a job action and goes back to the job's page with its message.
async fn act<F>(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: (String, i64, i64),
    action: F,
    done: &str,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(
            &mut diesel::PgConnection,
            &crate::policies::Actor,
            i64,
        ) -> crate::error::Result<String>
        + Clone
        + Send
        + 'static,
{
    let (code, id, job_id) = path.clone();
    check_path(&db, &who, path).await?;
    let actor = who.actor();
    let back = format!("/partner/{code}/catalogs/{id}/bulk/{job_id}");
    match db
        .transaction(move |conn| action(conn, &actor, job_id))
        .await
    {
        Ok(message) => {
            session.success(if message.is_empty() {
                done.to_string()
            } else {
                message
            });
            Ok(see_other(&back))
        }
        Err(e @ (Error::InvalidTransition(_) | Error::Forbidden(_))) => {
            session.error(e.public_message());
            Ok(see_other(&back))
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/catalogs/{id}/bulk/{job_id}/submit")]
async fn submit(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let ctx = ctx.get_ref().clone();
    act(
        who,
        session,
        db,
        path.into_inner(),
        move |conn, actor, job_id| {
            let job = bulk::submit(conn, &ctx, actor, job_id)?;
            Ok(if job.status == "pending_approval" {
                "Submitted. The list waits for staff approval; you will get an email with their decision.".into()
            } else {
                "Submitted. The list is running: this page shows its progress.".into()
            })
        },
        "",
    )
    .await
}

#[post("/catalogs/{id}/bulk/{job_id}/discard")]
async fn discard(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (code, id, job_id) = path.into_inner();
    check_path(&db, &who, (code.clone(), id, job_id)).await?;
    let actor = who.actor();
    db.transaction(move |conn| bulk::discard(conn, &actor, job_id))
        .await?;
    session.success("The list was discarded; nothing was sent.");
    Ok(see_other(&format!("/partner/{code}/catalogs/{id}/bulk")))
}

/// Asks before cancelling a list, with an optional reason for the audit log.
pub async fn cancel_question(
    req: &HttpRequest,
    who: &crate::web::auth::Identity,
    db: &Db,
    job_id: i64,
    base: String,
    (reason, errors): (String, FieldErrors),
) -> Result<crate::web::page::ConfirmPage, AppError> {
    let actor = who.actor();
    let view = db.run(move |conn| bulk::find(conn, &actor, job_id)).await?;
    let handled = view.job.processed_rows;
    Ok(crate::web::page::ConfirmPage {
        page: Page::for_request(req, Some(who)),
        title: format!("Cancel list #{}: {}?", view.job.id, view.job.source_name),
        question: format!(
            "Rows already handled ({handled} of {}) stay as they are: their invitations or pre-enrolments are kept. The other rows will not be handled, and the list cannot be restarted.",
            view.job.total_rows
        ),
        action: format!("{base}/cancel"),
        hidden: Vec::new(),
        button: "Cancel the list".into(),
        danger: true,
        back: base,
        reason,
        errors,
    })
}

#[get("/catalogs/{id}/bulk/{job_id}/cancel")]
async fn confirm_cancel(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (code, id, job_id) = path.into_inner();
    check_path(&db, &who, (code.clone(), id, job_id)).await?;
    let base = format!("/partner/{code}/catalogs/{id}/bulk/{job_id}");
    let page = cancel_question(
        &req,
        &who.identity,
        &db,
        job_id,
        base,
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/catalogs/{id}/bulk/{job_id}/cancel")]
async fn cancel(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<super::ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id, job_id) = path.into_inner();
    check_path(&db, &who, (code.clone(), id, job_id)).await?;
    let base = format!("/partner/{code}/catalogs/{id}/bulk/{job_id}");
    let reason = form.into_inner().reason;
    cancelled(&req, &who.identity, session, &db, job_id, base, reason).await
}

/// Cancels a list and says so on its page; a reason too long is asked again.
pub async fn cancelled(
    req: &HttpRequest,
    who: &crate::web::auth::Identity,
    session: TypedSession,
    db: &Db,
    job_id: i64,
    base: String,
    reason: String,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let typed = reason.clone();
    match db
        .transaction(move |conn| {
            let reason = reason.trim();
            bulk::cancel(conn, &actor, job_id, (!reason.is_empty()).then_some(reason))
        })
        .await
    {
        Ok(_) => session
            .success("Cancelled. Rows already handled stay as they are; the rest will not be."),
        Err(Error::Invalid(errors)) => {
            let page = cancel_question(req, who, db, job_id, base, (typed, errors)).await?;
            return render_invalid(&page);
        }
        Err(e @ (Error::InvalidTransition(_) | Error::Forbidden(_))) => {
            session.error(e.public_message())
        }
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&base))
}

/// Streams a job's result file: each row's line, address, outcome and detail.
pub async fn results_csv(
    db: &Db,
    actor: &crate::policies::Actor,
    job_id: i64,
) -> Result<HttpResponse, AppError> {
    let lookup = actor.clone();
    let view = db
        .run(move |conn| bulk::find(conn, &lookup, job_id))
        .await?;
    let receiver = exports::stream_batches(db, &bulk::RESULT_HEADER, move |conn, after| {
        bulk::result_rows(conn, job_id, after)
    });
    let filename = format!("{}-bulk-{}-results.csv", view.catalog.slug, view.job.id);
    Ok(crate::web::page::csv_download(receiver, &filename))
}

/// A job's progress, for the page's script to show without reloading.
pub async fn progress_json(
    db: &Db,
    actor: &crate::policies::Actor,
    job_id: i64,
) -> Result<HttpResponse, AppError> {
    let actor = actor.clone();
    let view = db.run(move |conn| bulk::find(conn, &actor, job_id)).await?;
    let job = &view.job;
    let total = i64::from(job.total_rows);
    let processed = i64::from(job.processed_rows);
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "status": job.status,
            "status_words": status_words(&job.status),
            "processed": processed,
            "total": total,
            "percent": processed * 100 / total.max(1),
            "finished": !matches!(job.status.as_str(), "approved" | "running"),
        })))
}

#[get("/catalogs/{id}/bulk/{job_id}/progress")]
async fn progress(
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let path = path.into_inner();
    let job_id = path.2;
    check_path(&db, &who, path).await?;
    progress_json(&db, &who.actor(), job_id).await
}

#[get("/catalogs/{id}/bulk/{job_id}/results.csv")]
async fn download_results(
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let path = path.into_inner();
    let job_id = path.2;
    check_path(&db, &who, path).await?;
    results_csv(&db, &who.actor(), job_id).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show)
        .service(upload)
        .service(show_job)
        .service(submit)
        .service(discard)
        .service(confirm_cancel)
        .service(cancel)
        .service(progress)
        .service(download_results);
}
