//! The pre-enrolments of one catalog: the list, by status, and pre-enrolling one person.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::people::{ConfirmPage, TypedReason};
use super::{ReasonForm, local, scope};
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::catalogs::{Catalog, CatalogCourse};
use crate::models::courses::Course;
use crate::models::partners::Partner;
use crate::models::pending_enrollments::{PendingEnrollment, PendingStatus};
use crate::models::{PageRequest, Paginated};
use crate::services::pre_enrollment::{self, PreEnrolled};
use crate::services::{ServiceContext, catalogs as catalog_service};
use crate::web::auth::ManagerOrStaff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, render, render_invalid, see_other};
use crate::web::session::{FlashKind, TypedSession};

#[derive(Template)]
#[template(path = "partner/pre_enrollments.html")]
struct PreEnrollmentsPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    courses: Vec<(CatalogCourse, Course)>,
    list: Paginated<PendingEnrollment>,
    pager: Pager,
    status_filter: String,
    person: String,
    chosen_courses: Vec<String>,
    errors: FieldErrors,
    now: chrono::DateTime<chrono::Utc>,
}

impl PreEnrollmentsPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        local(&self.partner, at)
    }
    fn status(&self, pending: &PendingEnrollment) -> &'static str {
        pending.status_at(self.now).as_str()
    }
    fn is_open(&self, pending: &PendingEnrollment) -> bool {
        pending.is_open_at(self.now)
    }
    fn course_titles(&self, pending: &PendingEnrollment) -> String {
        pending
            .course_ids
            .iter()
            .filter_map(|id| self.courses.iter().find(|(_, c)| c.id == *id))
            .map(|(_, c)| c.title.clone())
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn chosen(&self, id: &i64) -> bool {
        self.chosen_courses
            .iter()
            .any(|c| c.trim() == id.to_string())
    }
    fn statuses(&self) -> [&'static str; 5] {
        PendingStatus::ALL.map(PendingStatus::as_str)
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: String,
    page: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
async fn list_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id): (String, i64),
    query: &ListQuery,
    person: String,
    chosen_courses: Vec<String>,
    errors: FieldErrors,
) -> Result<PreEnrollmentsPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let status = PendingStatus::parse(query.status.trim());
    let request = PageRequest::new(query.page, None)
        .at(crate::web::page::ListPosition::from_query(req.query_string()).0);
    let for_catalog = catalog.clone();
    let (courses, list) = db
        .run(move |conn| {
            let courses = catalog_service::courses(conn, &actor, for_catalog.id)?;
            let list = pre_enrollment::list(conn, &actor, &for_catalog, status, request)?;
            Ok((courses, list))
        })
        .await?;
    let status_text = status.map(PendingStatus::as_str).unwrap_or("");
    let pager = Pager::new(
        &list,
        &format!(
            "/partner/{}/catalogs/{}/pre-enrolments",
            partner.code, catalog.id
        ),
        &[("status", status_text)],
    );
    Ok(PreEnrollmentsPage {
        page: Page::for_request(req, Some(&who.identity)),
        partner,
        catalog,
        courses,
        list,
        pager,
        status_filter: status_text.to_string(),
        person,
        chosen_courses,
        errors,
        now: chrono::Utc::now(),
    })
}

#[get("/catalogs/{id}/pre-enrolments")]
async fn show_list(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let page = list_page(
        &req,
        &who,
        &db,
        path.into_inner(),
        &query,
        String::new(),
        Vec::new(),
        FieldErrors::new(),
    )
    .await?;
    render(&page)
}

#[derive(Deserialize)]
struct PreEnrolForm {
    #[serde(default)]
    person: String,
    /// Repeated `courses` fields arrive as `courses=1&courses=2`.
    #[serde(default)]
    courses: Vec<String>,
}

#[post("/catalogs/{id}/pre-enrolments")]
async fn create(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let form = read_form(&body);
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, code.clone(), Some(id)).await?;
    let (person, courses, ctx) = (
        form.person.clone(),
        form.courses.clone(),
        ctx.get_ref().clone(),
    );
    let back = format!("/partner/{}/catalogs/{id}/pre-enrolments", partner.code);
    match db
        .transaction(move |conn| pre_enrollment::create(conn, &ctx, &actor, id, &person, &courses))
        .await
    {
        Ok(PreEnrolled::Pending(p)) => {
            session.success(format!(
                "{} is pre-enrolled: they join as soon as their account appears.",
                p.identifier()
            ));
            Ok(see_other(&back))
        }
        Ok(PreEnrolled::Joined(p)) => {
            session.success(format!(
                "{} already had an account and joined the catalog at once.",
                p.identifier()
            ));
            Ok(see_other(&back))
        }
        Ok(PreEnrolled::Waiting(p, reason)) => {
            session.flash(
                FlashKind::Info,
                format!(
                    "{} is pre-enrolled but cannot join yet: {reason}.",
                    p.identifier()
                ),
            );
            Ok(see_other(&back))
        }
        Err(e @ (Error::Invalid(_) | Error::Conflict(_) | Error::CatalogUnavailable(_))) => {
            let errors = match e {
                Error::Invalid(errors) => errors,
                other => FieldErrors::single("person", other.public_message()),
            };
            let query = ListQuery {
                status: String::new(),
                page: None,
            };
            let page = list_page(
                &req,
                &who,
                &db,
                (code, id),
                &query,
                form.person,
                form.courses,
                errors,
            )
            .await?;
            render_invalid(&page)
        }
        Err(e) => Err(e.into()),
    }
}

/// `person=…&courses=1&courses=2`: repeated fields, which the plain form extractor drops.
fn read_form(body: &[u8]) -> PreEnrolForm {
    let mut form = PreEnrolForm {
        person: String::new(),
        courses: Vec::new(),
    };
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "person" => form.person = value.into_owned(),
            "courses" => form.courses.push(value.into_owned()),
            _ => {}
        }
    }
    form
}

/// The question before cancelling, with an optional reason for the audit log.
async fn cancel_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id, pending_id): (String, i64, i64),
    typed: TypedReason,
) -> Result<ConfirmPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let for_catalog = catalog.clone();
    let found = db
        .run(move |conn| pre_enrollment::find_in_catalog(conn, &actor, &for_catalog, pending_id))
        .await?;
    let back = format!(
        "/partner/{}/catalogs/{}/pre-enrolments",
        partner.code, catalog.id
    );
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        title: "Cancel a pre-enrolment".into(),
        question: format!(
            "Cancel the pre-enrolment of {} in {}? They will not join when their account appears.",
            found.identifier(),
            catalog.name
        ),
        action: format!("{back}/{pending_id}/cancel"),
        button: "Cancel the pre-enrolment".into(),
        back,
        reason: typed.reason,
        errors: typed.errors,
        partner,
        catalog,
    })
}

#[get("/catalogs/{id}/pre-enrolments/{pending_id}/cancel")]
async fn confirm_cancel(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    render(&cancel_page(&req, &who, &db, path.into_inner(), TypedReason::default()).await?)
}

#[post("/catalogs/{id}/pre-enrolments/{pending_id}/cancel")]
async fn cancel(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let ids = path.into_inner();
    let (code, id, pending_id) = ids.clone();
    let actor = who.actor();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let back = format!(
        "/partner/{}/catalogs/{}/pre-enrolments",
        partner.code, catalog.id
    );
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    match db
        .transaction(move |conn| {
            pre_enrollment::find_in_catalog(conn, &actor, &catalog, pending_id)?;
            pre_enrollment::cancel(conn, &actor, pending_id, Some(&typed))
        })
        .await
    {
        Ok(cancelled) => {
            session.success(format!(
                "The pre-enrolment of {} was cancelled.",
                cancelled.identifier()
            ));
        }
        Err(Error::Invalid(errors)) => {
            let typed = TypedReason { reason, errors };
            return render_invalid(&cancel_page(&req, &who, &db, ids, typed).await?);
        }
        Err(e @ Error::InvalidTransition(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&back))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show_list)
        .service(create)
        .service(confirm_cancel)
        .service(cancel);
}
