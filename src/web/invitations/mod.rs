//! The page an emailed invitation link opens. No sign-in is needed to see it or to
//! decline; newcomers register here with the invited address, which accepts.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::db::Db;
use crate::domain::InvitationStatus;
use crate::error::{Error, FieldErrors};
use crate::services::learning::{self, InvitationPage};
use crate::services::registration::{self, Registration};
use crate::services::{ServiceContext, invitations};
use crate::web::auth::{Identity, MaybeSignedIn, SignedIn};
use crate::web::error::AppError;
use crate::web::page::{Page, render, render_status, see_other};
use crate::web::session::TypedSession;

#[derive(Template)]
#[template(path = "invitations/show.html")]
struct ShowPage {
    page: Page,
    token: String,
    view: InvitationPage,
    signed_in_email: Option<String>,
    full_name: String,
    errors: FieldErrors,
    message: Option<String>,
}

impl ShowPage {
    fn is(&self, status: &str) -> bool {
        self.view.status.as_str() == status
    }
    fn expires(&self) -> String {
        self.view
            .invitation
            .expires_at
            .with_timezone(&self.view.partner.tz())
            .format("%-d %B %Y at %H:%M %Z")
            .to_string()
    }
    fn same_account(&self) -> bool {
        self.signed_in_email.as_deref() == Some(self.view.invitation.email.as_str())
    }
    fn support(&self) -> &str {
        if self.view.catalog.support_email.is_empty() {
            &self.view.partner.support_email
        } else {
            &self.view.catalog.support_email
        }
    }
}

async fn show_page(
    req: &HttpRequest,
    db: &Db,
    identity: Option<&Identity>,
    token: String,
    full_name: String,
    errors: FieldErrors,
    message: Option<String>,
) -> Result<ShowPage, AppError> {
    let lookup = token.clone();
    let view = db
        .run(move |conn| learning::invitation_page(conn, &lookup))
        .await?;
    Ok(ShowPage {
        page: Page::for_request(req, identity),
        token,
        view,
        signed_in_email: identity.map(|i| i.user.email.clone()),
        full_name,
        errors,
        message,
    })
}

#[get("/invitations/{token}")]
async fn show(
    req: HttpRequest,
    who: MaybeSignedIn,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let page = show_page(
        &req,
        &db,
        who.0.as_ref(),
        path.into_inner(),
        String::new(),
        FieldErrors::new(),
        None,
    )
    .await?;
    // The name the inviting list gave, offered for the person to keep or change.
    let page = ShowPage {
        full_name: page.view.invitation.full_name.clone(),
        ..page
    };
    render(&page)
}

#[post("/invitations/{token}/accept")]
async fn accept(
    signed_in: SignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let actor = signed_in.0.actor();
    let token = path.into_inner();
    let back = format!("/invitations/{token}");
    match db
        .transaction(move |conn| invitations::accept(conn, &actor, &token))
        .await
    {
        Ok(_) => {
            session.success("Welcome! You joined the catalog. Enrol in its courses below.");
            Ok(see_other("/my"))
        }
        Err(
            e @ (Error::Forbidden(_)
            | Error::InvalidTransition(_)
            | Error::UserLimitReached(_)
            | Error::CatalogUnavailable(_)),
        ) => {
            session.error(e.public_message());
            Ok(see_other(&back))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

#[post("/invitations/{token}/register")]
async fn register(
    req: HttpRequest,
    who: MaybeSignedIn,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<String>,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let lookup = token.clone();
    let invited_email = db
        .run(move |conn| invitations::by_token(conn, &lookup).map(|i| i.email))
        .await
        .unwrap_or_default();
    let hash = crate::web::registration::new_password_hash(
        &ctx,
        &invited_email,
        &form.password,
        &form.confirm_password,
        &mut errors,
    )
    .await?;
    let outcome = match hash {
        Some(hash) => {
            let registration = Registration {
                full_name: form.full_name.clone(),
                password_hash: hash,
            };
            let lookup = token.clone();
            db.transaction(move |conn| {
                registration::register_from_invitation(conn, &lookup, &registration)
            })
            .await
        }
        None => Err(Error::Invalid(errors)),
    };
    match outcome {
        Ok((user, _)) => {
            session.sign_in(user.id, user.session_generation);
            session.success("Welcome! Your account is ready and you joined the catalog. Enrol in its courses below.");
            Ok(see_other("/my"))
        }
        Err(Error::Invalid(errors)) => {
            let page = show_page(
                &req,
                &db,
                who.0.as_ref(),
                token,
                form.full_name,
                errors,
                None,
            )
            .await?;
            render_status(actix_web::http::StatusCode::BAD_REQUEST, &page)
        }
        Err(
            e @ (Error::Conflict(_)
            | Error::InvalidTransition(_)
            | Error::UserLimitReached(_)
            | Error::CatalogUnavailable(_)),
        ) => {
            let status = actix_web::http::StatusCode::from_u16(e.status())
                .unwrap_or(actix_web::http::StatusCode::CONFLICT);
            let page = show_page(
                &req,
                &db,
                who.0.as_ref(),
                token,
                form.full_name,
                FieldErrors::new(),
                Some(e.public_message()),
            )
            .await?;
            render_status(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "invitations/decline.html")]
struct DeclinePage {
    page: Page,
    token: String,
    view: InvitationPage,
    done: bool,
}

#[get("/invitations/{token}/decline")]
async fn confirm_decline(
    page: Page,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let lookup = token.clone();
    let view = db
        .run(move |conn| learning::invitation_page(conn, &lookup))
        .await?;
    if view.status != InvitationStatus::Sent {
        return Ok(see_other(&format!("/invitations/{token}")));
    }
    render(&DeclinePage {
        page,
        token,
        view,
        done: false,
    })
}

#[post("/invitations/{token}/decline")]
async fn decline(
    page: Page,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let lookup = token.clone();
    match db
        .transaction(move |conn| invitations::decline(conn, &lookup))
        .await
    {
        Ok(_) => {
            let lookup = token.clone();
            let view = db
                .run(move |conn| learning::invitation_page(conn, &lookup))
                .await?;
            render(&DeclinePage {
                page,
                token,
                view,
                done: true,
            })
        }
        Err(e @ Error::InvalidTransition(_)) => {
            session.error(e.public_message());
            Ok(see_other(&format!("/invitations/{token}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show)
        .service(accept)
        .service(register)
        .service(confirm_decline)
        .service(decline);
}
