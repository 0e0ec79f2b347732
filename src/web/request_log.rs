//! One log line per request. Paths that carry link secrets are logged without them.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;

/// Path prefixes whose next segment is a secret from an emailed link.
const SECRET_SEGMENTS: [&str; 4] = [
    "/invitations/",
    "/verify-email/",
    "/password/reset/",
    "/manager/claim/",
];

pub fn redact(path: &str) -> String {
    for prefix in SECRET_SEGMENTS {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}[secret]{tail}");
        }
    }
    path.to_string()
}

pub async fn log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = redact(req.path());
    let span = tracing::info_span!("request", %method, %path, request_id = %uuid::Uuid::new_v4());
    let response = next.call(req).instrument(span.clone()).await;
    let _entered = span.enter();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &response {
        Ok(res) => tracing::info!(status = res.status().as_u16(), elapsed_ms, "request"),
        Err(e) => tracing::warn!(error = %e, elapsed_ms, "request failed"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn link_secrets_never_reach_the_log() {
        assert_eq!(redact("/invitations/abc123"), "/invitations/[secret]");
        assert_eq!(
            redact("/invitations/abc123/decline"),
            "/invitations/[secret]/decline"
        );
        assert_eq!(redact("/password/reset/xyz"), "/password/reset/[secret]");
        assert_eq!(redact("/verify-email/xyz"), "/verify-email/[secret]");
        assert_eq!(redact("/manager/claim/xyz"), "/manager/claim/[secret]");
        assert_eq!(redact("/staff/users"), "/staff/users");
    }
}
