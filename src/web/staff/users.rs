use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ListQuery, ReasonForm};
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::Paginated;
use crate::models::partners::Partner;
use crate::models::users::{ExternalIdentity, User};
use crate::services::users;
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{
    ConfirmPage, Page, Pager, format_datetime, format_optional_datetime, render, render_invalid,
    see_other,
};
use crate::web::session::TypedSession;

#[derive(Template)]
#[template(path = "staff/users.html")]
struct ListPage {
    page: Page,
    list: Paginated<users::UserRow>,
    pager: Pager,
    search: String,
}

impl ListPage {
    fn when(&self, at: &Option<DateTime<Utc>>) -> String {
        format_optional_datetime(at)
    }
}

#[derive(Template)]
#[template(path = "staff/user.html")]
struct UserPage {
    page: Page,
    user: User,
    partner: Option<Partner>,
    is_self: bool,
    identities: Vec<ExternalIdentity>,
    identity: String,
    errors: FieldErrors,
}

/// The user's page, with what was typed in the identity form and why it was refused.
async fn user_page(
    staff: &Staff,
    page: Page,
    db: &Db,
    id: i64,
    identity: String,
    errors: FieldErrors,
) -> Result<UserPage, AppError> {
    let actor = staff.0.actor();
    let (user, partner, identities) = db
        .run(move |conn| {
            let (user, partner) = users::find(conn, &actor, id)?;
            let identities = users::identities(conn, &actor, id)?;
            Ok((user, partner, identities))
        })
        .await?;
    let is_self = staff.0.user.id == user.id;
    Ok(UserPage {
        page,
        user,
        partner,
        is_self,
        identities,
        identity,
        errors,
    })
}

impl UserPage {
    fn joined(&self) -> String {
        format_datetime(&self.user.created_at)
    }

    fn when(&self, at: &Option<DateTime<Utc>>) -> String {
        format_optional_datetime(at)
    }
}

#[get("/users")]
async fn list(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let (search, request) = (query.q.clone(), query.page_request(position));
    let list = db
        .run(move |conn| users::list(conn, &actor, &search, request))
        .await?;
    let pager = Pager::new(&list, "/staff/users", &[("q", &query.q)]);
    render(&ListPage {
        page,
        list,
        pager,
        search: query.q.clone(),
    })
}

#[get("/users/{id}")]
async fn show(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let page = user_page(
        &staff,
        page,
        &db,
        path.into_inner(),
        String::new(),
        FieldErrors::new(),
    )
    .await?;
    render(&page)
}

#[derive(Debug, Deserialize)]
struct IdentityForm {
    #[serde(default)]
    identity: String,
}

#[post("/users/{id}/identities")]
async fn link_identity(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<IdentityForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let typed = form.into_inner().identity;
    let raw = typed.clone();
    match db
        .transaction(move |conn| users::link_identity(conn, &actor, id, &raw))
        .await
    {
        Ok(identity) => {
            session.success(format!(
                "{} is linked; anything pre-enrolled for it was fulfilled.",
                identity.display()
            ));
            Ok(see_other(&format!("/staff/users/{id}")))
        }
        Err(Error::Invalid(errors)) => {
            let page = Page::for_request(&req, Some(&staff.0));
            render_invalid(&user_page(&staff, page, &db, id, typed, errors).await?)
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/users/{id}/identities/{identity_id}/remove")]
async fn unlink_identity(
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let (id, identity_id) = path.into_inner();
    db.transaction(move |conn| users::unlink_identity(conn, &actor, id, identity_id))
        .await?;
    session.success("The identity was removed from this account.");
    Ok(see_other(&format!("/staff/users/{id}")))
}

#[derive(Debug, Deserialize)]
struct StaffForm {
    #[serde(default)]
    is_staff: String,
    #[serde(flatten)]
    reason: ReasonForm,
}

#[derive(Debug, Deserialize)]
struct ActiveForm {
    #[serde(default)]
    is_active: String,
    #[serde(flatten)]
    reason: ReasonForm,
}

/// Refusals (changing one's own role, a reason too long) are shown on the user's page.
fn back_to_user(
    session: &TypedSession,
    id: i64,
    outcome: Result<String, Error>,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Ok(message) => session.success(message),
        Err(Error::Conflict(message)) => session.error(message),
        Err(Error::Invalid(errors)) => {
            let problems: Vec<String> = errors
                .labelled()
                .into_iter()
                .map(|(field, message)| format!("the {field} {message}"))
                .collect();
            session.error(format!("Nothing was changed: {}.", problems.join("; ")));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&format!("/staff/users/{id}")))
}

#[derive(Debug, Deserialize)]
struct ConfirmQuery {
    #[serde(default)]
    value: String,
}

/// "Are you sure?" before a change of role or of the account's state.
async fn role_confirmation(
    req: &HttpRequest,
    staff: &Staff,
    db: &Db,
    id: i64,
    change: &str,
    value: &str,
) -> Result<ConfirmPage, AppError> {
    let actor = staff.0.actor();
    let (user, _) = db.run(move |conn| users::find(conn, &actor, id)).await?;
    let on = value == "1";
    let (title, question, button) = match (change, on) {
        ("staff", true) => (
            format!("Make {} staff?", user.email),
            "Staff can see and change everything on the platform, every partner's data included.",
            "Make staff",
        ),
        ("staff", false) => (
            format!("Remove the staff role of {}?", user.email),
            "They keep their account, and any manager role, but lose the staff pages.",
            "Remove the staff role",
        ),
        ("active", false) => (
            format!("Deactivate {}?", user.email),
            "They are signed out everywhere and can no longer sign in; their data stays and the account can be reactivated.",
            "Deactivate",
        ),
        _ => return Err(AppError::PageNotFound),
    };
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&staff.0)),
        title,
        question: question.into(),
        action: format!("/staff/users/{id}/{change}"),
        hidden: vec![(
            if change == "staff" {
                "is_staff"
            } else {
                "is_active"
            },
            value.to_string(),
        )],
        button: button.into(),
        danger: !on || change == "staff",
        back: format!("/staff/users/{id}"),
        reason: String::new(),
        errors: FieldErrors::new(),
    })
}

#[get("/users/{id}/{change}/confirm")]
async fn confirm_change(
    req: HttpRequest,
    staff: Staff,
    db: web::Data<Db>,
    path: web::Path<(i64, String)>,
    query: web::Query<ConfirmQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, change) = path.into_inner();
    render(&role_confirmation(&req, &staff, &db, id, &change, &query.value).await?)
}

#[post("/users/{id}/staff")]
async fn set_staff(
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<StaffForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let form = form.into_inner();
    let is_staff = form.is_staff == "1";
    let outcome = db
        .transaction(move |conn| {
            let user = users::set_staff(conn, &actor, id, is_staff, Some(&form.reason.reason))?;
            Ok(if user.is_staff {
                format!("{} is now staff.", user.email)
            } else {
                format!("{} is no longer staff.", user.email)
            })
        })
        .await;
    back_to_user(&session, id, outcome)
}

#[post("/users/{id}/active")]
async fn set_active(
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<ActiveForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let form = form.into_inner();
    let is_active = form.is_active == "1";
    let outcome = db
        .transaction(move |conn| {
            let user = users::set_active(conn, &actor, id, is_active, Some(&form.reason.reason))?;
            Ok(if user.is_active {
                format!("{} can sign in again.", user.email)
            } else {
                format!("{} is deactivated and can no longer sign in.", user.email)
            })
        })
        .await;
    back_to_user(&session, id, outcome)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(show)
        .service(confirm_change)
        .service(set_staff)
        .service(set_active)
        .service(link_identity)
        .service(unlink_identity);
}
