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
use crate::services::{ServiceContext, profile, registration};

#[derive(Template)]
#[template(path = "accounts/account.html")]
struct AccountPage {
    page: Page,
    user: User,
    full_name: String,
    new_email: String,
    errors: FieldErrors,
}

impl AccountPage {
    /// The page again, with what was typed and why it was refused.
    fn invalid(
        req: &HttpRequest,
        signed_in: &SignedIn,
        full_name: Option<String>,
        new_email: String,
        errors: FieldErrors,
    ) -> Result<HttpResponse, AppError> {
        let user = signed_in.0.user.clone();
        render_invalid(&AccountPage {
            page: Page::for_request(req, Some(&signed_in.0)),
            full_name: full_name.unwrap_or_else(|| user.full_name.clone()),
            user,
            new_email,
            errors,
        })
    }
}

#[get("/account")]
async fn show(signed_in: SignedIn, page: Page) -> Result<HttpResponse, AppError> {
    let user = signed_in.0.user;
    render(&AccountPage {
        page,
        full_name: user.full_name.clone(),
        user,
        new_email: String::new(),
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
        Err(Error::Invalid(errors)) => {
            AccountPage::invalid(&req, &signed_in, Some(full_name), String::new(), errors)
        }
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
    ctx: web::Data<ServiceContext>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let form = form.into_inner();
    match profile::change_password(
        &db,
        &ctx,
        &actor,
        form.current_password,
        form.new_password,
        form.confirm_password,
    )
    .await
    {
        Ok(generation) => {
            // Every other session ended; this browser stays signed in.
            session.sign_in(signed_in.0.user.id, generation);
            session.success(
                "Your password was changed. Every other session of your account has ended.",
            );
            Ok(see_other("/account"))
        }
        Err(Error::Invalid(errors)) => {
            AccountPage::invalid(&req, &signed_in, None, String::new(), errors)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct EmailChangeForm {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    email_current_password: String,
}

#[post("/account/email")]
async fn change_email(
    req: HttpRequest,
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    form: web::Form<EmailChangeForm>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let form = form.into_inner();
    match registration::request_email_change(
        &db,
        &ctx,
        &actor,
        &form.new_email,
        form.email_current_password,
    )
    .await
    {
        Ok(()) => {
            session.success(format!(
                "We sent a link to {}. Your address changes once you follow it.",
                form.new_email.trim().to_lowercase()
            ));
            Ok(see_other("/account"))
        }
        Err(Error::Invalid(errors)) => {
            // This form's password field has its own name on the page.
            let mut shown = FieldErrors::new();
            for (field, message) in errors.iter() {
                let field = if field == "current_password" {
                    "email_current_password"
                } else {
                    field
                };
                shown.add(field, message);
            }
            AccountPage::invalid(&req, &signed_in, None, form.new_email, shown)
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/account/sign-out-everywhere")]
async fn sign_out_everywhere(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    db.transaction(move |conn| profile::sign_out_everywhere(conn, &actor))
        .await?;
    session.sign_out();
    session.success("You are signed out on every device.");
    Ok(see_other("/login"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show)
        .service(rename)
        .service(change_password)
        .service(change_email)
        .service(sign_out_everywhere);
}
