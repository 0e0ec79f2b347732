//! Every signed-in person's own account page.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::auth::SignedIn;
use super::error::AppError;
use super::page::{Page, render, render_invalid, see_other};
use super::session::TypedSession;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::users::User;
use crate::services::profile;

#[derive(Template)]
#[template(path = "accounts/account.html")]
struct AccountPage {
    page: Page,
    user: User,
    full_name: String,
    errors: FieldErrors,
}

#[get("/account")]
async fn show(signed_in: SignedIn, page: Page) -> Result<HttpResponse, AppError> {
    let user = signed_in.0.user;
    render(&AccountPage {
        page,
        full_name: user.full_name.clone(),
        user,
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    full_name: String,
}

#[post("/account")]
async fn rename(
    req: HttpRequest,
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let full_name = form.into_inner().full_name;
    let typed = full_name.clone();
    match db
        .transaction(move |conn| profile::rename(conn, &actor, &typed))
        .await
    {
        Ok(_) => {
            session.success("Your name was saved.");
            Ok(see_other("/account"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&AccountPage {
            page: Page::for_request(&req, Some(&signed_in.0)),
            user: signed_in.0.user.clone(),
            full_name,
            errors,
        }),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[post("/account/password")]
async fn change_password(
    req: HttpRequest,
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let form = form.into_inner();
    match profile::change_password(
        &db,
        &actor,
        form.current_password,
        form.new_password,
        form.confirm_password,
    )
    .await
    {
        Ok(()) => {
            session.success("Your password was changed.");
            Ok(see_other("/account"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&AccountPage {
            page: Page::for_request(&req, Some(&signed_in.0)),
            user: signed_in.0.user.clone(),
            full_name: signed_in.0.user.full_name.clone(),
            errors,
        }),
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(rename).service(change_password);
}
