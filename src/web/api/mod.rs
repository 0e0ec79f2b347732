//! The JSON API: errors are `{"error": "<code>", "detail": "<message>"}` (with `fields` for
//! bad input), never an HTML page or a redirect to the sign-in form.

pub mod xapi;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use super::auth::{Identity, load_identity};
use super::error::AppError;
use crate::error::Error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] Error),
    #[error("sign in first")]
    Unauthenticated,
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
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
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
                "detail": "sign in first: this address needs a signed-in session",
            }),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Service(Error::Busy(_))) {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body)
    }
}

/// The signed-in person, or a JSON 401.
pub async fn caller(req: &HttpRequest) -> Result<Identity, ApiError> {
    load_identity(req).await?.ok_or(ApiError::Unauthenticated)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    xapi::routes(cfg);
}
