//! The one error type at the HTTP edge for pages. Service errors keep their status and
//! their message for people; anything unexpected is logged with its cause chain and
//! shown as a plain 500 page.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::Next;
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

/// What an error page says, kept on the response so that it can be shown again with the
/// signed-in person's navigation (see `with_navigation`).
#[derive(Debug, Clone)]
pub enum ErrorView {
    NotFound(String),
    Forbidden(String),
    Internal,
    Other {
        status: u16,
        title: String,
        message: String,
    },
}

impl ErrorView {
    pub fn render(&self, page: Page) -> Result<String, askama::Error> {
        match self.clone() {
            ErrorView::NotFound(message) => NotFoundPage { page, message }.render(),
            ErrorView::Forbidden(message) => ForbiddenPage { page, message }.render(),
            ErrorView::Internal => InternalErrorPage { page }.render(),
            ErrorView::Other {
                status,
                title,
                message,
            } => OtherErrorPage {
                page,
                status,
                title,
                message,
            }
            .render(),
        }
    }
}

impl AppError {
    fn log(&self) {
        match self {
            AppError::Service(Error::Internal(e)) => tracing::error!(error = ?e, "request failed"),
            AppError::Template(e) => tracing::error!(error = ?e, "template rendering failed"),
            _ => {}
        }
    }

    fn view(&self) -> ErrorView {
        match self {
            AppError::PageNotFound => ErrorView::NotFound("There is nothing at this address.".into()),
            AppError::Service(e @ Error::NotFound(_)) => {
                ErrorView::NotFound(format!("{}.", capitalise(&e.public_message())))
            }
            AppError::Service(e @ (Error::Forbidden(_) | Error::NotAllowedToEnroll)) => {
                ErrorView::Forbidden(e.public_message())
            }
            AppError::CsrfRejected => ErrorView::Forbidden(
                "This form has expired or did not come from this site. Go back, reload the page and try again."
                    .into(),
            ),
            AppError::Service(Error::Internal(_)) | AppError::Template(_) => ErrorView::Internal,
            AppError::Service(e) => ErrorView::Other {
                status: e.status(),
                title: match e.status() {
                    400 => "Please check what you entered".into(),
                    409 => "That cannot be done right now".into(),
                    429 => "Please wait a moment".into(),
                    503 => "Busy: please try again".into(),
                    _ => "Something is not right".into(),
                },
                message: e.public_message(),
            },
            AppError::SignInRequired { .. } => ErrorView::Internal,
        }
    }
}

const FALLBACK_PAGE: &str = "<!doctype html><title>Error</title><h1>Something went wrong</h1>";

/// Shows an error page again with the navigation of the person signed in, so that a
/// refusal or a missing page is not a dead end.
pub async fn with_navigation(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let Some(view) = response.response().extensions().get::<ErrorView>().cloned() else {
        return Ok(response.map_into_boxed_body());
    };
    let identity = super::auth::load_identity(response.request())
        .await
        .ok()
        .flatten();
    let Some(identity) = identity else {
        return Ok(response.map_into_boxed_body());
    };
    let page = Page::for_request(response.request(), Some(&identity));
    let Ok(body) = view.render(page) else {
        return Ok(response.map_into_boxed_body());
    };
    let (request, old) = response.into_parts();
    let mut shown = HttpResponse::build(old.status());
    for (name, value) in old.headers() {
        if name != header::CONTENT_LENGTH {
            shown.insert_header((name.clone(), value.clone()));
        }
    }
    Ok(ServiceResponse::new(request, shown.body(body)))
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
        let view = self.view();
        let body = view.render(Page::anonymous()).unwrap_or_else(|e| {
            tracing::error!(error = ?e, "error page rendering failed");
            FALLBACK_PAGE.to_string()
        });
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Service(Error::Busy(_))) {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        let mut response = response.content_type(ContentType::html()).body(body);
        response.extensions_mut().insert(view);
        response
    }
}
