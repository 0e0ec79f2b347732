//! Open sign-up, email confirmation, password reset and address changes.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::auth::{MaybeSignedIn, SignedIn};
use super::error::AppError;
use super::page::{Page, render, render_invalid, render_status, see_other};
use super::session::TypedSession;
use crate::configuration::Settings;
use crate::db::Db;
use crate::domain::Password;
use crate::error::{Error, FieldErrors};
use crate::models::users::User;
use crate::services::ServiceContext;
use crate::services::registration::{
    self, ConfirmationLink, LinkFollower, PasswordLink, Registration,
};

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

/// Checks a new password for the account with `email` and its confirmation, then
/// hashes it (under the hashing bound).
pub(crate) async fn new_password_hash(
    ctx: &ServiceContext,
    email: &str,
    password: &str,
    confirm: &str,
    errors: &mut FieldErrors,
) -> Result<Option<String>, AppError> {
    let parsed = errors.check("password", Password::parse_for(password, email));
    if password != confirm {
        errors.add("confirm_password", "does not match the password");
    }
    match parsed {
        Some(password) if errors.is_empty() => Ok(Some(ctx.hashing.hash(password).await?)),
        _ => Ok(None),
    }
}

#[derive(Template)]
#[template(path = "accounts/check_email.html")]
struct CheckEmailPage {
    page: Page,
    email: String,
}

#[post("/signup")]
async fn signup(
    req: HttpRequest,
    session: TypedSession,
    settings: web::Data<Settings>,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, AppError> {
    if !settings.open_sign_up {
        return Err(AppError::PageNotFound);
    }
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let hash = new_password_hash(
        &ctx,
        &form.email,
        &form.password,
        &form.confirm_password,
        &mut errors,
    )
    .await?;
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
        // The same answer whether or not the address had an account.
        Ok(signed_up) => {
            session.remember_sign_up(&signed_up.browser_proof);
            render(&CheckEmailPage {
                page: Page::for_request(&req, None),
                email: form.email.trim().to_lowercase(),
            })
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
    link: Option<ConfirmationLink>,
    errors: FieldErrors,
    problem: Option<String>,
}

fn link_follower(who: &MaybeSignedIn, session: &TypedSession) -> LinkFollower {
    LinkFollower {
        signed_in_as: who.0.as_ref().map(|identity| identity.user.id),
        sign_up_proof: session.sign_up_proof(),
    }
}

/// Shows what following the link would do; changes nothing (the form posts).
#[get("/verify-email/{token}")]
async fn confirm_email_form(
    who: MaybeSignedIn,
    session: TypedSession,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (lookup, follower) = (token.clone(), link_follower(&who, &session));
    let (link, problem) = match db
        .run(move |conn| registration::check_confirmation_link(conn, &lookup, &follower))
        .await
    {
        Ok(link) => (Some(link), None),
        Err(e @ (Error::InvalidTransition(_) | Error::Conflict(_))) => {
            (None, Some(e.public_message()))
        }
        Err(e) => return Err(e.into()),
    };
    render(&ConfirmEmailPage {
        page,
        token,
        link,
        errors: FieldErrors::new(),
        problem,
    })
}

#[derive(Deserialize)]
pub struct ConfirmEmailForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

#[post("/verify-email/{token}")]
async fn confirm_email(
    req: HttpRequest,
    who: MaybeSignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<String>,
    form: web::Form<ConfirmEmailForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let follower = link_follower(&who, &session);
    let refused = |session: &TypedSession, e: Error| {
        session.error(e.public_message());
        Ok(see_other("/account"))
    };
    let (lookup, checking) = (token.clone(), follower.clone());
    let link = match db
        .run(move |conn| registration::check_confirmation_link(conn, &lookup, &checking))
        .await
    {
        Ok(link) => link,
        Err(e @ (Error::InvalidTransition(_) | Error::Conflict(_))) => return refused(&session, e),
        Err(e) => return Err(e.into()),
    };
    let invalid = |link: ConfirmationLink, errors: FieldErrors| {
        render_invalid(&ConfirmEmailPage {
            page: Page::for_request(&req, who.0.as_ref()),
            token: token.clone(),
            link: Some(link),
            errors,
            problem: None,
        })
    };
    let mut errors = FieldErrors::new();
    let new_hash = if link.needs_new_password {
        match new_password_hash(
            &ctx,
            &link.email,
            &form.password,
            &form.confirm_password,
            &mut errors,
        )
        .await?
        {
            Some(hash) => Some(hash),
            None => return invalid(link, errors),
        }
    } else {
        None
    };
    let lookup = token.clone();
    match db
        .transaction(move |conn| {
            registration::confirm_email(conn, &lookup, &follower, new_hash.as_deref())
        })
        .await
    {
        Ok(user) => {
            // The link proved the address: its follower is signed in, unless this browser
            // is signed in as someone else and chose no password. Every other session of
            // the account ended.
            let someone_else = who.0.as_ref().is_some_and(|i| i.user.id != user.id);
            if link.needs_new_password || !someone_else {
                session.sign_in(user.id, user.session_generation);
            }
            if link.needs_new_password {
                session.success(format!(
                    "Thank you: {} is confirmed and your new password is set. Every other session of the account has ended.",
                    user.email
                ));
                Ok(see_other("/my"))
            } else {
                session.success(format!("Thank you: {} is confirmed.", user.email));
                Ok(see_other(if someone_else { "/account" } else { "/my" }))
            }
        }
        Err(e @ (Error::InvalidTransition(_) | Error::Conflict(_))) => refused(&session, e),
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

#[derive(Template)]
#[template(path = "accounts/claim_manager.html")]
struct ClaimPage {
    page: Page,
    token: String,
    email: String,
    partner_name: String,
    errors: FieldErrors,
    problem: Option<String>,
}

/// One form for both links that set a password: a reset, or claiming a manager role.
struct PasswordLinkForm {
    kind: PasswordLink,
    token: String,
    email: String,
    partner_name: String,
    errors: FieldErrors,
    problem: Option<String>,
}

impl PasswordLinkForm {
    fn respond(
        self,
        req: &HttpRequest,
        status: actix_web::http::StatusCode,
    ) -> Result<HttpResponse, AppError> {
        let page = Page::for_request(req, None);
        match self.kind {
            PasswordLink::Reset => render_status(
                status,
                &ResetPage {
                    page,
                    token: self.token,
                    errors: self.errors,
                    problem: self.problem,
                },
            ),
            PasswordLink::ClaimManager => render_status(
                status,
                &ClaimPage {
                    page,
                    token: self.token,
                    email: self.email,
                    partner_name: self.partner_name,
                    errors: self.errors,
                    problem: self.problem,
                },
            ),
        }
    }
}

/// The account behind a usable link and the partner it may manage, or why not.
async fn look_up_link(
    db: &Db,
    kind: PasswordLink,
    token: &str,
) -> Result<Result<(User, String), String>, AppError> {
    let lookup = token.to_string();
    match db
        .run(move |conn| {
            let user = registration::check_password_link(conn, kind, &lookup)?;
            let partner = crate::services::partners::pending_assignment(conn, user.id)?;
            Ok((user, partner.map(|p| p.name).unwrap_or_default()))
        })
        .await
    {
        Ok(found) => Ok(Ok(found)),
        Err(e @ (Error::InvalidTransition(_) | Error::NotFound(_))) => Ok(Err(e.public_message())),
        Err(e) => Err(e.into()),
    }
}

async fn password_link_form(
    req: HttpRequest,
    db: web::Data<Db>,
    kind: PasswordLink,
    token: String,
) -> Result<HttpResponse, AppError> {
    let (email, partner_name, problem) = match look_up_link(&db, kind, &token).await? {
        Ok((user, partner_name)) => (user.email, partner_name, None),
        Err(problem) => (String::new(), String::new(), Some(problem)),
    };
    PasswordLinkForm {
        kind,
        token,
        email,
        partner_name,
        errors: FieldErrors::new(),
        problem,
    }
    .respond(&req, actix_web::http::StatusCode::OK)
}

async fn set_password_from_link(
    req: HttpRequest,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    kind: PasswordLink,
    token: String,
    form: ResetForm,
) -> Result<HttpResponse, AppError> {
    let bad_request = actix_web::http::StatusCode::BAD_REQUEST;
    let (email, partner_name) = match look_up_link(&db, kind, &token).await? {
        Ok((user, partner_name)) => (user.email, partner_name),
        Err(problem) => {
            return PasswordLinkForm {
                kind,
                token,
                email: String::new(),
                partner_name: String::new(),
                errors: FieldErrors::new(),
                problem: Some(problem),
            }
            .respond(&req, bad_request);
        }
    };
    let mut errors = FieldErrors::new();
    let Some(hash) = new_password_hash(
        &ctx,
        &email,
        &form.password,
        &form.confirm_password,
        &mut errors,
    )
    .await?
    else {
        return PasswordLinkForm {
            kind,
            token,
            email,
            partner_name,
            errors,
            problem: None,
        }
        .respond(&req, bad_request);
    };
    let lookup = token.clone();
    match db
        .transaction(move |conn| registration::set_password_with_link(conn, kind, &lookup, &hash))
        .await
    {
        Ok(user) => {
            session.sign_in(user.id, user.session_generation);
            match kind {
                PasswordLink::Reset => {
                    session.success("Your new password is set and you are signed in. Every other session of your account has ended.");
                    Ok(see_other("/"))
                }
                PasswordLink::ClaimManager => {
                    session.success(format!("Welcome! You now manage {partner_name}."));
                    Ok(see_other("/"))
                }
            }
        }
        Err(e @ (Error::InvalidTransition(_) | Error::NotFound(_))) => PasswordLinkForm {
            kind,
            token,
            email,
            partner_name,
            errors: FieldErrors::new(),
            problem: Some(e.public_message()),
        }
        .respond(&req, bad_request),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

#[get("/password/reset/{token}")]
async fn reset_form(
    req: HttpRequest,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    password_link_form(req, db, PasswordLink::Reset, path.into_inner()).await
}

#[post("/password/reset/{token}")]
async fn reset(
    req: HttpRequest,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<String>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    let (kind, token) = (PasswordLink::Reset, path.into_inner());
    set_password_from_link(req, session, db, ctx, kind, token, form.into_inner()).await
}

#[get("/manager/claim/{token}")]
async fn claim_form(
    req: HttpRequest,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    password_link_form(req, db, PasswordLink::ClaimManager, path.into_inner()).await
}

#[post("/manager/claim/{token}")]
async fn claim(
    req: HttpRequest,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<String>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    let (kind, token) = (PasswordLink::ClaimManager, path.into_inner());
    set_password_from_link(req, session, db, ctx, kind, token, form.into_inner()).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(signup_form)
        .service(signup)
        .service(confirm_email_form)
        .service(confirm_email)
        .service(resend_verification)
        .service(forgot_form)
        .service(forgot)
        .service(reset_form)
        .service(reset)
        .service(claim_form)
        .service(claim);
}
