//! The "API tokens" page of staff and partner managers: their tokens, a form to make one
//! (whose secret is shown once, in the answer to the form, never through the session),
//! and revoking one after a confirmation.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::auth::{Identity, ManagerOrStaff};
use super::error::AppError;
use super::page::{ConfirmPage, Page, format_in_zone, render, render_invalid, see_other};
use super::session::TypedSession;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::api_tokens::ApiToken;
use crate::services::api_tokens;

const PATH: &str = "/account/api-tokens";

/// A token just made, with its secret: on this one page, once.
struct Created {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "accounts/api_tokens.html")]
struct TokensPage {
    page: Page,
    tokens: Vec<ApiToken>,
    /// The name typed into the form, kept when it is refused.
    typed_name: String,
    errors: FieldErrors,
    created: Option<Created>,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
}

impl TokensPage {
    async fn load(
        db: &Db,
        page: Page,
        identity: &Identity,
        typed_name: String,
        errors: FieldErrors,
        created: Option<Created>,
    ) -> Result<Self, AppError> {
        let actor = identity.actor();
        let tokens = db
            .run(move |conn| api_tokens::list_own(conn, &actor))
            .await?;
        Ok(Self {
            page,
            tokens,
            typed_name,
            errors,
            created,
            // Managers read times in their partner's zone, staff in UTC.
            tz: identity
                .partner
                .as_ref()
                .map_or(chrono_tz::UTC, |partner| partner.tz()),
            now: Utc::now(),
        })
    }

    fn when(&self, at: &DateTime<Utc>) -> String {
        format_in_zone(at, &self.tz)
    }

    /// The badge class and words for a token's state.
    fn state(&self, token: &ApiToken) -> (&'static str, &'static str) {
        if token.is_revoked() {
            ("removed", "revoked")
        } else if token.is_expired(self.now) {
            ("expired", "expired")
        } else {
            ("active", "active")
        }
    }
}

#[get("/account/api-tokens")]
async fn list(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
) -> Result<HttpResponse, AppError> {
    render(
        &TokensPage::load(
            &db,
            page,
            &who.identity,
            String::new(),
            FieldErrors::new(),
            None,
        )
        .await?,
    )
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    name: String,
}

/// Answers the form with the page itself (200), the secret on it: a redirect would need
/// the secret kept in the session cookie until the next page.
#[post("/account/api-tokens")]
async fn create(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    form: web::Form<NewTokenForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let name = form.into_inner().name;
    let typed = name.clone();
    let outcome = db
        .transaction(move |conn| api_tokens::create(conn, &actor, &typed))
        .await;
    let page = Page::for_request(&req, Some(&who.identity));
    match outcome {
        Ok((token, secret)) => {
            let created = Created {
                name: token.name,
                secret,
            };
            render(
                &TokensPage::load(
                    &db,
                    page,
                    &who.identity,
                    String::new(),
                    FieldErrors::new(),
                    Some(created),
                )
                .await?,
            )
        }
        Err(Error::Invalid(errors)) => {
            render_invalid(&TokensPage::load(&db, page, &who.identity, name, errors, None).await?)
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    id: i64,
    (reason, errors): (String, FieldErrors),
) -> Result<ConfirmPage, AppError> {
    let actor = who.actor();
    let token = db
        .run(move |conn| api_tokens::find_own(conn, &actor, id))
        .await?;
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        title: format!("Revoke the API token “{}”?", token.name),
        question: "Programs that use it are refused from their next request on. This cannot \
                   be undone: make a new token if you need one again."
            .into(),
        action: format!("{PATH}/{id}/revoke"),
        hidden: Vec::new(),
        button: "Revoke the token".into(),
        danger: true,
        back: PATH.into(),
        reason,
        errors,
    })
}

#[get("/account/api-tokens/{id}/revoke")]
async fn confirm_revoke(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let page = revoke_page(
        &req,
        &who,
        &db,
        path.into_inner(),
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

#[post("/account/api-tokens/{id}/revoke")]
async fn revoke(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let id = path.into_inner();
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    match db
        .transaction(move |conn| api_tokens::revoke(conn, &actor, id, Some(&typed)))
        .await
    {
        Ok(()) => {
            session.success("The token was revoked: it no longer opens the API.");
            Ok(see_other(PATH))
        }
        Err(Error::Invalid(errors)) => {
            render_invalid(&revoke_page(&req, &who, &db, id, (reason, errors)).await?)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(confirm_revoke)
        .service(revoke);
}
