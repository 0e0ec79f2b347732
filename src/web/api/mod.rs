//! The JSON API: errors are `{"error": "<code>", "detail": "<message>"}` (with `fields` for
//! bad input), never an HTML page or a redirect to the sign-in form.

pub mod auth;
pub mod catalogs;
pub mod docs;
pub mod enrollments;
pub mod invitations;
pub mod memberships;
pub mod pending;
pub mod xapi;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, web};
use serde_json::json;

use super::error::AppError;
use crate::error::Error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] Error),
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("the session's CSRF token is missing")]
    CsrfRejected,
    #[error("{0}")]
    TooLarge(String),
    /// The address exists, with these methods only.
    #[error("this address does not answer that method")]
    MethodNotAllowed(Vec<actix_web::http::Method>),
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Service(e) => ApiError::Service(e),
            AppError::SignInRequired { .. } => ApiError::Unauthenticated,
            AppError::PageNotFound => ApiError::Service(Error::NotFound("this resource")),
            other => ApiError::Service(Error::internal(anyhow::anyhow!("{other}"))),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Service(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::Unauthenticated | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::CsrfRejected => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::Service(Error::Internal(e)) => {
                tracing::error!(error = ?e, "request failed");
                json!({ "error": "internal", "detail": "something went wrong on our side; try again later" })
            }
            ApiError::Service(e @ Error::Invalid(fields)) => json!({
                "error": e.code(),
                "detail": fields.to_string(),
                "fields": fields.iter().map(|(f, m)| (f.to_string(), json!(m))).collect::<serde_json::Map<_, _>>(),
            }),
            ApiError::Service(e) => json!({ "error": e.code(), "detail": e.public_message() }),
            ApiError::Unauthenticated => json!({
                "error": "unauthenticated",
                "detail": "send `Authorization: Bearer <API token>`, or sign in",
            }),
            ApiError::InvalidToken(detail) => json!({ "error": "invalid_token", "detail": detail }),
            ApiError::TooLarge(detail) => json!({ "error": "too_many_emails", "detail": detail }),
            ApiError::MethodNotAllowed(allowed) => json!({
                "error": "method_not_allowed",
                "detail": format!("this address answers {} only", allowed_list(allowed)),
            }),
            ApiError::CsrfRejected => json!({
                "error": "csrf_failed",
                "detail": "a signed-in browser's write must carry the session's CSRF token in the X-CSRF-Token header",
            }),
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Service(Error::Busy(_)) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::Service(Error::TooManyRequests(_)) => {
                response.insert_header((header::RETRY_AFTER, "900"));
            }
            ApiError::Unauthenticated | ApiError::InvalidToken(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed(allowed) => {
                response.insert_header((header::ALLOW, allowed_list(allowed)));
            }
            _ => {}
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body)
    }
}

/// Methods as an `Allow` header lists them: `GET, POST`.
fn allowed_list(methods: &[actix_web::http::Method]) -> String {
    methods
        .iter()
        .map(actix_web::http::Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answer to a request no API route took: 405 where the address exists with other
/// methods, else 404.
pub fn unrouted(req: &actix_web::HttpRequest) -> HttpResponse {
    let allowed = docs::methods_at(req.path());
    let error = if allowed.is_empty() || allowed.contains(req.method()) {
        ApiError::Service(Error::NotFound("this address"))
    } else {
        ApiError::MethodNotAllowed(allowed)
    };
    error.error_response()
}

/// Every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid_input`, `not_found`, `forbidden`, `unauthenticated`,
    /// `invalid_token`, `csrf_failed`, `method_not_allowed`, `conflict`,
    /// `not_allowed_to_enroll`, `course_limit_reached`, `user_limit_reached`, …
    pub error: String,
    /// What happened, in words.
    pub detail: String,
    /// For `invalid_input`: a message per field.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

/// The `next` link of a page: the same filters, after the last item, the same size.
pub fn next_link(
    path: &str,
    filters: &[(&str, Option<&str>)],
    last: Option<String>,
    limit: i64,
) -> Option<String> {
    let last = last?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in filters {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    query
        .append_pair("after", &last)
        .append_pair("limit", &limit.to_string());
    Some(format!("{path}?{}", query.finish()))
}

/// A 200 with a JSON body.
pub fn ok_json<T: serde::Serialize>(body: &T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    catalogs::routes(cfg);
    memberships::routes(cfg);
    invitations::routes(cfg);
    pending::routes(cfg);
    enrollments::routes(cfg);
    docs::routes(cfg);
    xapi::routes(cfg);
}
