//! The one error type at the HTTP edge for pages. Service errors keep their status and
//! their message for people; anything unexpected is logged with its cause chain and
//! shown as a plain 500 page.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::page::Page;
use crate::error::Error;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Service(#[from] Error),
    #[error("sign-in required")]
    SignInRequired { next: String },
    #[error("the form's security token is missing or out of date")]
    CsrfRejected,
    #[error("page not found")]
    PageNotFound,
    #[error("rendering failed: {0}")]
    Template(#[from] askama::Error),
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Service(e.into())
    }
}

#[derive(Template)]
#[template(path = "errors/404.html")]
struct NotFoundPage {
    page: Page,
    message: String,
}

#[derive(Template)]
#[template(path = "errors/403.html")]
struct ForbiddenPage {
    page: Page,
    message: String,
}

#[derive(Template)]
#[template(path = "errors/500.html")]
struct InternalErrorPage {
    page: Page,
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct OtherErrorPage {
    page: Page,
    status: u16,
    title: String,
    message: String,
}

impl AppError {
    fn log(&self) {
        match self {
            AppError::Service(Error::Internal(e)) => tracing::error!(error = ?e, "request failed"),
            AppError::Template(e) => tracing::error!(error = ?e, "template rendering failed"),
            _ => {}
        }
    }

    fn render_page(&self) -> Result<String, askama::Error> {
        let page = Page::anonymous();
        match self {
            AppError::PageNotFound => NotFoundPage { page, message: "There is nothing at this address.".into() }.render(),
            AppError::Service(e @ Error::NotFound(_)) => NotFoundPage { page, message: format!("{}.", capitalise(&e.public_message())) }.render(),
            AppError::Service(e @ (Error::Forbidden(_) | Error::NotAllowedToEnroll)) => {
                ForbiddenPage { page, message: e.public_message() }.render()
            }
            AppError::CsrfRejected => ForbiddenPage {
                page,
                message: "This form has expired or did not come from this site. Go back, reload the page and try again."
                    .into(),
            }
            .render(),
            AppError::Service(Error::Internal(_)) | AppError::Template(_) => InternalErrorPage { page }.render(),
            AppError::Service(e) => OtherErrorPage {
                page,
                status: e.status(),
                title: match e.status() {
                    400 => "Please check what you entered".into(),
                    409 => "That cannot be done right now".into(),
                    429 => "Please wait a moment".into(),
                    503 => "Busy: please try again".into(),
                    _ => "Something is not right".into(),
                },
                message: e.public_message(),
            }
            .render(),
            AppError::SignInRequired { .. } => Ok(String::new()),
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Service(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            AppError::SignInRequired { .. } => StatusCode::SEE_OTHER,
            AppError::CsrfRejected => StatusCode::FORBIDDEN,
            AppError::PageNotFound => StatusCode::NOT_FOUND,
            AppError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        if let AppError::SignInRequired { next } = self {
            let location = format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        let body = self.render_page().unwrap_or_else(|e| {
            tracing::error!(error = ?e, "error page rendering failed");
            "<!doctype html><title>Error</title><h1>Something went wrong</h1>".to_string()
        });
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Service(Error::Busy(_))) {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response.content_type(ContentType::html()).body(body)
    }
}
