//! "My catalogs": the learner's home.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;

use crate::db::Db;
use crate::error::Error;
use crate::services::enrollments::{self, CourseAccess};
use crate::services::learning::{self, MyCatalog};
use crate::services::{ServiceContext, invitations};
use crate::web::auth::SignedIn;
use crate::web::error::AppError;
use crate::web::page::{Page, render, see_other};
use crate::web::session::{FlashKind, TypedSession};

#[derive(Template)]
#[template(path = "learner/my_catalogs.html")]
struct MyCatalogsPage {
    page: Page,
    catalogs: Vec<MyCatalog>,
    verified: bool,
    email: String,
}

impl MyCatalogsPage {
    fn date(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        at.format("%-d %B %Y").to_string()
    }
}

#[get("/my")]
async fn my_catalogs(
    signed_in: SignedIn,
    page: Page,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
) -> Result<HttpResponse, AppError> {
    let (actor, cache) = (signed_in.0.actor(), ctx.patterns.clone());
    let catalogs = db
        .run(move |conn| learning::my_catalogs(conn, &cache, &actor))
        .await?;
    let user = &signed_in.0.user;
    render(&MyCatalogsPage {
        page,
        catalogs,
        verified: user.is_verified(),
        email: user.email.clone(),
    })
}

#[post("/my/catalogs/{id}/join")]
async fn join(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (actor, cache) = (signed_in.0.actor(), ctx.patterns.clone());
    let id = path.into_inner();
    match db
        .transaction(move |conn| invitations::join_self_enrollment(conn, &cache, &actor, id))
        .await
    {
        Ok(_) => session.success("You joined the catalog. Enrol in its courses below."),
        Err(e @ (Error::Forbidden(_) | Error::CatalogUnavailable(_) | Error::UserLimitReached)) => {
            session.error(e.public_message())
        }
        Err(e) => return Err(e.into()),
    }
    Ok(see_other("/my"))
}

#[post("/my/invitations/{id}/accept")]
async fn accept(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let id = path.into_inner();
    match db
        .transaction(move |conn| invitations::accept_by_id(conn, &actor, id))
        .await
    {
        Ok(_) => session.success("Invitation accepted. Enrol in the catalog's courses below."),
        Err(
            e @ (Error::Forbidden(_)
            | Error::CatalogUnavailable(_)
            | Error::UserLimitReached
            | Error::InvalidTransition(_)),
        ) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other("/my"))
}

#[post("/my/catalogs/{id}/courses/{course_id}/enrol")]
async fn enrol(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let (id, course_id) = path.into_inner();
    let access = db
        .transaction(move |conn| enrollments::request_course_access(conn, &actor, id, course_id))
        .await?;
    match access {
        CourseAccess::Open { mode } => session.success(format!("You are enrolled ({mode}).")),
        CourseAccess::AlreadyPaid { mode } => session.success(format!("You already have full access ({mode}).")),
        CourseAccess::ExistingLicence { .. } | CourseAccess::Granted { .. } => {
            session.success("Access granted: you are enrolled with full (verified) access.")
        }
        CourseAccess::KeptAtMode { mode } => session.flash(
            FlashKind::Info,
            format!(
                "You keep access at {mode}: this catalog's paid seats for courses are all in use. Ask the catalog's support contact for a seat."
            ),
        ),
        refused @ CourseAccess::Refused(_) => {
            if let Err(e) = refused.into_result() {
                session.error(e.public_message());
            }
        }
    }
    Ok(see_other("/my"))
}

#[post("/my/catalogs/{id}/leave")]
async fn leave(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let id = path.into_inner();
    match db
        .transaction(move |conn| invitations::leave(conn, &actor, id))
        .await
    {
        Ok(_) => session.success("You left the catalog."),
        Err(e @ (Error::Forbidden(_) | Error::InvalidTransition(_))) => {
            session.error(e.public_message())
        }
        Err(e) => return Err(e.into()),
    }
    Ok(see_other("/my"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(my_catalogs)
        .service(join)
        .service(accept)
        .service(enrol)
        .service(leave);
}
