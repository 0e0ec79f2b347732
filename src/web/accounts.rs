//! Signing in and out.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::auth::MaybeSignedIn;
use super::error::AppError;
use super::page::{Page, render, render_status, see_other};
use super::session::TypedSession;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::services::{ServiceContext, accounts, profile};

#[derive(Template)]
#[template(path = "accounts/login.html")]
struct LoginPage {
    page: Page,
    email: String,
    next: String,
    errors: FieldErrors,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    /// Offered in the form, e.g. from an invitation sent to this address.
    #[serde(default)]
    email: String,
}

/// Only paths on this site are followed after signing in. The value is parsed as a
/// browser would (which drops tabs and line breaks, and reads `\` as `/`), and only a
/// path of this origin is kept, re-serialised so that it is always a valid header.
pub fn safe_next(next: &str) -> String {
    const HOME: &str = "/";
    let next = next.trim();
    let suspicious = |c: char| c.is_control() || c.is_whitespace() || c == '\\';
    if !next.starts_with('/') || next.starts_with("//") || next.chars().any(suspicious) {
        return HOME.to_string();
    }
    let Ok(base) = url::Url::parse("http://this.host/") else {
        return HOME.to_string();
    };
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => {
            let mut target = url.path().to_string();
            if let Some(query) = url.query() {
                target.push('?');
                target.push_str(query);
            }
            if target.starts_with("//") {
                HOME.to_string()
            } else {
                target
            }
        }
        _ => HOME.to_string(),
    }
}

#[get("/login")]
async fn login_form(
    identity: MaybeSignedIn,
    page: Page,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    if identity.0.is_some() {
        return Ok(see_other(&safe_next(&query.next)));
    }
    render(&LoginPage {
        page,
        email: query.email.trim().chars().take(254).collect(),
        next: query.next.clone(),
        errors: FieldErrors::new(),
        message: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[post("/login")]
async fn login(
    req: HttpRequest,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    session: TypedSession,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let client_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    match accounts::sign_in(&db, &ctx, &form.email, form.password, client_ip).await {
        Ok(user) => {
            session.sign_in(user.id, user.session_generation);
            Ok(see_other(&safe_next(&form.next)))
        }
        Err(e @ (Error::Invalid(_) | Error::TooManyRequests(_) | Error::Forbidden(_))) => {
            let status = actix_web::http::StatusCode::from_u16(e.status())
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
            let (errors, message) = match e {
                Error::Invalid(errors) => (errors, None),
                other => (FieldErrors::new(), Some(other.public_message())),
            };
            let page = Page::for_request(&req, None);
            render_status(
                status,
                &LoginPage {
                    page,
                    email: form.email,
                    next: form.next,
                    errors,
                    message,
                },
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Ends the account's sessions, so that a copied cookie stops working too.
#[post("/logout")]
async fn logout(
    who: MaybeSignedIn,
    session: TypedSession,
    db: web::Data<Db>,
) -> Result<HttpResponse, AppError> {
    if let Some(identity) = who.0 {
        let user_id = identity.user.id;
        db.transaction(move |conn| profile::sign_out(conn, user_id))
            .await?;
    }
    session.sign_out();
    session.success("You are signed out.");
    Ok(see_other("/login"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(login_form).service(login).service(logout);
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next("/staff"), "/staff");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next(""), "/");
        // Browsers drop tabs and line breaks: "/\t/evil.example" would be "//evil.example".
        assert_eq!(safe_next("/\t/evil.example"), "/");
        assert_eq!(safe_next("/\n/evil.example"), "/");
        assert_eq!(safe_next("/staff\r\nSet-Cookie: x=y"), "/");
        assert_eq!(safe_next("/a\0b"), "/");
        assert_eq!(safe_next("/%2F/evil.example"), "/%2F/evil.example");
        assert_eq!(safe_next("/my?tab=1#top"), "/my?tab=1");
        assert_eq!(safe_next("/./../staff"), "/staff");
        assert_eq!(safe_next("/caf\u{e9}"), "/caf%C3%A9");
    }
}
