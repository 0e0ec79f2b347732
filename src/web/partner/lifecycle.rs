//! A catalog's life: archived (hidden, data kept) and restored, duplicated, and
//! previewed as its learners see it.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::{ReasonForm, scope};
use crate::db::Db;
use crate::domain::course::CourseMode;
use crate::error::{Error, FieldErrors};
use crate::models::catalogs::Catalog;
use crate::models::courses::Course;
use crate::models::partners::Partner;
use crate::services::catalogs as catalog_service;
use crate::web::auth::ManagerOrStaff;
use crate::web::error::AppError;
use crate::web::page::{ConfirmPage, Page, render, render_invalid, see_other};
use crate::web::session::TypedSession;

fn catalog_path(partner: &Partner, id: i64) -> String {
    format!("/partner/{}/catalogs/{id}", partner.code)
}

async fn archive_question(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id): (String, i64),
    (reason, errors): (String, FieldErrors),
) -> Result<ConfirmPage, AppError> {
    let (partner, catalog) = scope(db, &who.actor(), code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        title: format!("Archive {}?", catalog.name),
        question: "Learners will no longer see it, nobody can join it or enrol through it, and reminders stop. Its learners, paid seats and history are kept, and you can restore it from the archived catalogs at any time.".into(),
        action: format!("{}/archive", catalog_path(&partner, id)),
        hidden: Vec::new(),
        button: "Archive the catalog".into(),
        danger: true,
        back: catalog_path(&partner, id),
        reason,
        errors,
    })
}

#[get("/catalogs/{id}/archive")]
async fn confirm_archive(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let page = archive_question(
        &req,
        &who,
        &db,
        path.into_inner(),
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/catalogs/{id}/archive")]
async fn archive(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, code.clone(), Some(id)).await?;
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    match db
        .transaction(move |conn| {
            let reason = typed.trim();
            catalog_service::archive(conn, &actor, id, (!reason.is_empty()).then_some(reason))
        })
        .await
    {
        Ok(catalog) => {
            session.success(format!(
                "{} is archived. Find it under Archived catalogs to restore it.",
                catalog.name
            ));
            Ok(see_other(&format!("/partner/{}", partner.code)))
        }
        Err(Error::Invalid(errors)) => {
            render_invalid(&archive_question(&req, &who, &db, (code, id), (reason, errors)).await?)
        }
        Err(e @ Error::InvalidTransition(_)) => {
            session.error(e.public_message());
            Ok(see_other(&catalog_path(&partner, id)))
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/catalogs/{id}/restore")]
async fn restore(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, code, Some(id)).await?;
    match db
        .transaction(move |conn| catalog_service::restore(conn, &actor, id))
        .await
    {
        Ok(catalog) => session.success(format!(
            "{} is back: learners see it again as before.",
            catalog.name
        )),
        Err(e @ Error::InvalidTransition(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&catalog_path(&partner, id)))
}

#[post("/catalogs/{id}/duplicate")]
async fn duplicate(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, code, Some(id)).await?;
    let copy = db
        .transaction(move |conn| catalog_service::duplicate(conn, &actor, id))
        .await?;
    session.success(format!(
        "{} was created with the same settings, email patterns and courses, and nobody in it yet. Check its name and dates below.",
        copy.name
    ));
    Ok(see_other(&catalog_path(&partner, copy.id)))
}

#[derive(Template)]
#[template(path = "partner/archived.html")]
struct ArchivedPage {
    page: Page,
    partner: Partner,
    catalogs: Vec<Catalog>,
}

impl ArchivedPage {
    fn when(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        super::local_opt(&self.partner, at)
    }
}

#[get("/archived")]
async fn archived(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, path.into_inner(), None).await?;
    let partner_id = partner.id;
    let catalogs = db
        .run(move |conn| catalog_service::archived_for_partner(conn, &actor, partner_id))
        .await?;
    render(&ArchivedPage {
        page,
        partner,
        catalogs,
    })
}

#[derive(Template)]
#[template(path = "partner/preview.html")]
struct PreviewPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    courses: Vec<Course>,
}

impl PreviewPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        super::local(&self.partner, at)
    }
    fn access(&self, course: &Course) -> String {
        course
            .modes
            .iter()
            .map(|m| CourseMode::in_words(m))
            .collect::<Vec<_>>()
            .join(" or ")
    }
    fn is_paid(&self, course: &Course) -> bool {
        crate::domain::course::is_paid(&course.modes)
    }
}

#[get("/catalogs/{id}/preview")]
async fn preview(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let actor = who.actor();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let courses = db
        .run(move |conn| catalog_service::courses(conn, &actor, id))
        .await?
        .into_iter()
        .map(|(_, course)| course)
        .collect();
    render(&PreviewPage {
        page,
        partner,
        catalog,
        courses,
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(confirm_archive)
        .service(archive)
        .service(restore)
        .service(duplicate)
        .service(archived)
        .service(preview);
}
