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
use crate::services::accounts;

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
}

/// Only paths on this site are followed after signing in.
pub fn safe_next(next: &str) -> String {
    let next = next.trim();
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_string()
    } else {
        "/".to_string()
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
        email: String::new(),
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
    session: TypedSession,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let client_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    match accounts::sign_in(&db, &form.email, form.password, client_ip).await {
        Ok(user) => {
            session.sign_in(user.id);
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

#[post("/logout")]
async fn logout(session: TypedSession) -> HttpResponse {
    session.sign_out();
    see_other("/login")
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
    }
}
