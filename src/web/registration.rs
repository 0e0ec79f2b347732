//! Open sign-up, email confirmation, password reset and address changes.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::auth::{MaybeSignedIn, SignedIn};
use super::error::AppError;
use super::page::{Page, render, render_invalid, see_other};
use super::session::TypedSession;
use crate::configuration::Settings;
use crate::db::Db;
use crate::domain::Password;
use crate::error::{Error, FieldErrors};
use crate::services::registration::{self, Registration};
use crate::services::{ServiceContext, accounts};

#[derive(Template)]
#[template(path = "accounts/signup.html")]
struct SignUpPage {
    page: Page,
    email: String,
    full_name: String,
    errors: FieldErrors,
}

#[get("/signup")]
async fn signup_form(
    who: MaybeSignedIn,
    page: Page,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, AppError> {
    if !settings.open_sign_up {
        return Err(AppError::PageNotFound);
    }
    if who.0.is_some() {
        return Ok(see_other("/my"));
    }
    render(&SignUpPage {
        page,
        email: String::new(),
        full_name: String::new(),
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

/// Checks a new password and its confirmation, then hashes it off the executor.
async fn new_password_hash(
    password: &str,
    confirm: &str,
    errors: &mut FieldErrors,
) -> Result<Option<String>, AppError> {
    let parsed = errors.check("password", Password::parse(password));
    if password != confirm {
        errors.add("confirm_password", "does not match the password");
    }
    match parsed {
        Some(password) if errors.is_empty() => Ok(Some(
            Db::cpu(move || accounts::hash_password(&password)).await?,
        )),
        _ => Ok(None),
    }
}

#[post("/signup")]
async fn signup(
    req: HttpRequest,
    settings: web::Data<Settings>,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, AppError> {
    if !settings.open_sign_up {
        return Err(AppError::PageNotFound);
    }
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let hash = new_password_hash(&form.password, &form.confirm_password, &mut errors).await?;
    let outcome = match hash {
        Some(hash) => {
            let (email, registration, ctx) = (
                form.email.clone(),
                Registration {
                    full_name: form.full_name.clone(),
                    password_hash: hash,
                },
                ctx.get_ref().clone(),
            );
            db.transaction(move |conn| registration::sign_up(conn, &ctx, &email, &registration))
                .await
        }
        None => Err(Error::Invalid(errors)),
    };
    match outcome {
        Ok(user) => {
            session.sign_in(user.id);
            session.success(format!(
                "Welcome! We sent a link to {} to confirm your address.",
                user.email
            ));
            Ok(see_other("/my"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&SignUpPage {
            page: Page::for_request(&req, None),
            email: form.email,
            full_name: form.full_name,
            errors,
        }),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "accounts/confirm_email.html")]
struct ConfirmEmailPage {
    page: Page,
    token: String,
}

#[get("/verify-email/{token}")]
async fn confirm_email_form(page: Page, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    render(&ConfirmEmailPage {
        page,
        token: path.into_inner(),
    })
}

#[post("/verify-email/{token}")]
async fn confirm_email(
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    match db
        .transaction(move |conn| registration::confirm_email(conn, &token))
        .await
    {
        Ok(user) => {
            session.success(format!("Thank you: {} is confirmed.", user.email));
            Ok(see_other("/my"))
        }
        Err(e @ (Error::InvalidTransition(_) | Error::Conflict(_))) => {
            session.error(e.public_message());
            Ok(see_other("/account"))
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/account/verification")]
async fn resend_verification(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
) -> Result<HttpResponse, AppError> {
    let (actor, ctx) = (signed_in.0.actor(), ctx.get_ref().clone());
    match db
        .transaction(move |conn| registration::resend_verification(conn, &ctx, &actor))
        .await
    {
        Ok(()) => session.success(format!(
            "We sent a new confirmation link to {}.",
            signed_in.0.user.email
        )),
        Err(e @ Error::Conflict(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other("/my"))
}

#[derive(Deserialize)]
pub struct EmailChangeForm {
    #[serde(default)]
    new_email: String,
}

#[post("/account/email")]
async fn change_email(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    form: web::Form<EmailChangeForm>,
) -> Result<HttpResponse, AppError> {
    let (actor, ctx, new_email) = (
        signed_in.0.actor(),
        ctx.get_ref().clone(),
        form.into_inner().new_email,
    );
    let typed = new_email.clone();
    match db
        .transaction(move |conn| registration::request_email_change(conn, &ctx, &actor, &typed))
        .await
    {
        Ok(()) => session.success(format!(
            "We sent a link to {}. Your address changes once you follow it.",
            new_email.trim().to_lowercase()
        )),
        Err(Error::Invalid(errors)) => session.error(format!(
            "New email {}",
            errors.get("new_email").unwrap_or("is not valid")
        )),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other("/account"))
}

#[derive(Template)]
#[template(path = "accounts/forgot_password.html")]
struct ForgotPage {
    page: Page,
    email: String,
    errors: FieldErrors,
    sent: bool,
}

#[get("/password/forgot")]
async fn forgot_form(page: Page) -> Result<HttpResponse, AppError> {
    render(&ForgotPage {
        page,
        email: String::new(),
        errors: FieldErrors::new(),
        sent: false,
    })
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

#[post("/password/forgot")]
async fn forgot(
    req: HttpRequest,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let email = form.into_inner().email;
    let (typed, ctx) = (email.clone(), ctx.get_ref().clone());
    match db
        .transaction(move |conn| registration::request_password_reset(conn, &ctx, &typed))
        .await
    {
        Ok(()) => render(&ForgotPage {
            page: Page::for_request(&req, None),
            email,
            errors: FieldErrors::new(),
            sent: true,
        }),
        Err(Error::Invalid(errors)) => render_invalid(&ForgotPage {
            page: Page::for_request(&req, None),
            email,
            errors,
            sent: false,
        }),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "accounts/reset_password.html")]
struct ResetPage {
    page: Page,
    token: String,
    errors: FieldErrors,
    problem: Option<String>,
}

#[get("/password/reset/{token}")]
async fn reset_form(
    page: Page,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let lookup = token.clone();
    let problem = match db
        .run(move |conn| registration::check_reset_link(conn, &lookup))
        .await
    {
        Ok(()) => None,
        Err(e @ (Error::InvalidTransition(_) | Error::NotFound(_))) => Some(e.public_message()),
        Err(e) => return Err(e.into()),
    };
    render(&ResetPage {
        page,
        token,
        errors: FieldErrors::new(),
        problem,
    })
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

#[post("/password/reset/{token}")]
async fn reset(
    req: HttpRequest,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<String>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let mut errors = FieldErrors::new();
    let Some(hash) = new_password_hash(&form.password, &form.confirm_password, &mut errors).await?
    else {
        return render_invalid(&ResetPage {
            page: Page::for_request(&req, None),
            token,
            errors,
            problem: None,
        });
    };
    let lookup = token.clone();
    match db
        .transaction(move |conn| registration::reset_password(conn, &lookup, &hash))
        .await
    {
        Ok(user) => {
            session.sign_in(user.id);
            session.success("Your new password is set and you are signed in.");
            Ok(see_other("/"))
        }
        Err(e @ (Error::InvalidTransition(_) | Error::NotFound(_))) => render_invalid(&ResetPage {
            page: Page::for_request(&req, None),
            token,
            errors: FieldErrors::new(),
            problem: Some(e.public_message()),
        }),
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(signup_form)
        .service(signup)
        .service(confirm_email_form)
        .service(confirm_email)
        .service(resend_verification)
        .service(change_email)
        .service(forgot_form)
        .service(forgot)
        .service(reset_form)
        .service(reset);
}
