//! The platform's analytics: every partner together, with links to each partner's.

use actix_web::{HttpResponse, get, web};

use crate::db::Db;
use crate::services::analytics::PeriodInput;
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::Page;
use crate::web::partner::analytics::{Heading, chart_csv, report_page};

fn heading() -> Heading {
    Heading {
        title: "Analytics · the whole platform".into(),
        path: "/staff/analytics".into(),
        back: Some(("/staff".into(), "Staff".into())),
        partner: None,
        catalog: None,
    }
}

#[get("/analytics")]
async fn platform_report(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    input: web::Query<PeriodInput>,
) -> Result<HttpResponse, AppError> {
    report_page(&db, &staff.0, page, heading(), input.into_inner()).await
}

#[get("/analytics/{chart}.csv")]
async fn platform_csv(
    staff: Staff,
    db: web::Data<Db>,
    path: web::Path<String>,
    input: web::Query<PeriodInput>,
) -> Result<HttpResponse, AppError> {
    chart_csv(
        &db,
        &staff.0,
        heading(),
        path.into_inner(),
        input.into_inner(),
    )
    .await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(platform_csv).service(platform_report);
}
