//! Every state-changing request from a browser carries the session's CSRF token:
//! as the `csrf_token` form field, the `X-CSRF-Token` header, or (multipart uploads)
//! the `csrf_token` query parameter. Checked here, once, for every route but the
//! token-authenticated JSON API.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Bytes;

use super::error::AppError;
use super::session::TypedSession;

pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Refusals are answered here as responses, not errors, so that the layers outside
/// (security and caching headers) still apply to them.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes_state || req.path().starts_with("/api/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let expected = TypedSession::from_request(req.request()).existing_csrf_token();
    let mut presented = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if presented.is_none() && content_type.starts_with("application/x-www-form-urlencoded") {
        let body = match req.extract::<Bytes>().await {
            Ok(body) => body,
            // Too large, or cut off: answered as the error says (413, 400).
            Err(e) => return Ok(req.error_response(e)),
        };
        presented = form_field(&body, FIELD);
        req.set_payload(Payload::from(body));
    }
    if presented.is_none() && content_type.starts_with("multipart/form-data") {
        presented = form_field(req.query_string().as_bytes(), FIELD);
    }
    match (expected, presented) {
        (Some(expected), Some(presented))
            if constant_time_eq(expected.as_bytes(), presented.as_bytes()) =>
        {
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        _ => {
            let path = super::request_log::redact(req.path());
            tracing::warn!(%path, "refused a request without a valid CSRF token");
            Ok(req.error_response(AppError::CsrfRejected))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_field_from_a_form_body() {
        assert_eq!(
            form_field(b"a=1&csrf_token=abc%2Bd&b=2", FIELD).as_deref(),
            Some("abc+d")
        );
        assert_eq!(form_field(b"a=1", FIELD), None);
    }

    #[test]
    fn compares_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
