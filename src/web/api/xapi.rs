//! `GET /api/v1/xapi/statements`: the statement stream in the xAPI StatementResult shape.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

use super::ApiError;
use super::auth::ApiCaller;
use crate::configuration::Settings;
use crate::db::Db;
use crate::events::xapi::{StatementOptions, VERSION};
use crate::services::xapi::{self, StatementsQuery};

const PATH: &str = "/api/v1/xapi/statements";

/// A page of statements in the xAPI StatementResult shape.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatementResult {
    /// xAPI 1.0.3 statements, oldest first.
    pub statements: Vec<serde_json::Value>,
    /// The next page's address, or empty on the last.
    pub more: String,
}

/// Tracking events as xAPI 1.0.3 statements, in order: staff every partner's, a
/// partner's managers their own partner's.
#[utoipa::path(
    tag = "xapi",
    params(
        ("since" = Option<String>, Query, description = "RFC 3339 time; statements after it (exclusive)"),
        ("after" = Option<String>, Query, description = "from a `more` link"),
        ("limit" = Option<i64>, Query, description = "1–500 (100 when absent)"),
    ),
    responses(
        (status = 200, body = StatementResult),
        (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody),
    ),
    security(("bearer" = []), ("session" = []))
)]
#[get("/api/v1/xapi/statements")]
pub async fn statements(
    caller: ApiCaller,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    query: web::Query<StatementsQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let options = StatementOptions {
        base_url: settings.base_url.clone(),
        include_email: settings.xapi_include_email,
    };
    let query = query.into_inner();
    let page = db
        .run(move |conn| xapi::statements(conn, &actor, &query, &options, PATH))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Experience-API-Version", VERSION))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "statements": page.statements, "more": page.more })))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(statements);
}
