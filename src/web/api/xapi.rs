//! `GET /api/v1/xapi/statements`: the statement stream in the xAPI StatementResult shape.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde_json::json;

use super::{ApiError, caller};
use crate::configuration::Settings;
use crate::db::Db;
use crate::events::xapi::{StatementOptions, VERSION};
use crate::services::xapi::{self, StatementsQuery};

const PATH: &str = "/api/v1/xapi/statements";

#[get("/api/v1/xapi/statements")]
async fn statements(
    req: HttpRequest,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    query: web::Query<StatementsQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller(&req).await?.actor();
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
