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
    waiting: Vec<crate::services::pre_enrollment::WaitingPlace>,
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
    let (actor, ctx) = (signed_in.0.actor(), ctx.get_ref().clone());
    let (catalogs, waiting) = db
        .run(move |conn| {
            let catalogs = learning::my_catalogs(conn, &ctx, &actor)?;
            let waiting = crate::services::pre_enrollment::waiting_for(conn, &actor)?;
            Ok((catalogs, waiting))
        })
        .await?;
    let user = &signed_in.0.user;
    render(&MyCatalogsPage {
        page,
        catalogs,
        waiting,
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
        Err(
            e @ (Error::Forbidden(_) | Error::CatalogUnavailable(_) | Error::UserLimitReached(_)),
        ) => session.error(e.public_message()),
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
            | Error::UserLimitReached(_)
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
    let (access, about) = db
        .transaction(move |conn| {
            let access = enrollments::request_course_access(conn, &actor, id, course_id)?;
            // Words about the course only for someone it concerns (refusals may not be).
            let about = learning::course_in_catalog(conn, &actor, id, course_id).ok();
            Ok((access, about))
        })
        .await?;
    let title = about
        .as_ref()
        .map_or_else(|| "the course".to_string(), |a| a.course.title.clone());
    let ask = about
        .as_ref()
        .map(|a| a.support_email.clone())
        .filter(|s| !s.is_empty())
        .map_or_else(
            || "Ask the catalog's manager for one.".to_string(),
            |email| format!("Ask {email} for one."),
        );
    let words = crate::domain::CourseMode::in_words;
    match access {
        CourseAccess::Open { mode } | CourseAccess::AlreadyPaid { mode } => {
            session.success(format!(
                "You are enrolled in {title} with {}. Use “Go to course” to start.",
                words(&mode)
            ))
        }
        CourseAccess::ExistingLicence { .. } | CourseAccess::Granted { .. } => {
            session.success(format!(
                "You are enrolled in {title} with {}. Use “Go to course” to start.",
                words(crate::domain::course::VERIFIED)
            ))
        }
        CourseAccess::KeptAtMode { mode } => session.flash(
            FlashKind::Info,
            format!(
                "No paid seat is left for {title}: you keep {} meanwhile. {ask}",
                words(&mode)
            ),
        ),
        refused @ CourseAccess::Refused(_) => {
            if let Err(e) = refused.into_result() {
                let message = match e {
                    crate::error::Error::CourseLimitReached => {
                        format!("No paid seat is left for {title}. {ask}")
                    }
                    other => other.public_message(),
                };
                session.error(message);
            }
        }
    }
    Ok(see_other(&format!("/my#course-{id}-{course_id}")))
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

#[derive(Template)]
#[template(path = "learner/course.html")]
struct CoursePage {
    page: Page,
    about: learning::CoursePage,
}

/// The page "Go to course" opens when no learning platform address is configured.
#[get("/my/courses/{course_id}")]
async fn course(
    signed_in: SignedIn,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (actor, course_id) = (signed_in.0.actor(), path.into_inner());
    let about = db
        .run(move |conn| learning::my_course(conn, &actor, course_id))
        .await?;
    render(&CoursePage { page, about })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(my_catalogs)
        .service(course)
        .service(join)
        .service(accept)
        .service(enrol)
        .service(leave);
}
