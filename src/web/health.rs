use actix_web::{HttpResponse, get, web};

use crate::db::Db;

/// 200 only when the database answers.
#[get("/healthz")]
pub async fn healthz(db: web::Data<Db>) -> HttpResponse {
    match db.run(|conn| Ok(crate::models::ping(conn)?)).await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable")
        }
    }
}
