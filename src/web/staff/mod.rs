//! Staff administration: organisations, partners, courses, the shared pool, users, the
//! audit log.

mod analytics;
mod audit;
mod bulk;
mod courses;
mod organisations;
mod outbox;
mod partners;
mod users;

use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::auth::Staff;
use super::error::AppError;
use super::page::{Page, render};
use crate::db::Db;
use crate::services::overview::{self, StaffOverview};

/// `?q=…&page=…` of every list page.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    pub page: Option<i64>,
}

impl ListQuery {
    pub fn page_request(
        &self,
        position: crate::web::page::ListPosition,
    ) -> crate::models::PageRequest {
        crate::models::PageRequest::new(self.page, None).at(position.0)
    }
}

/// `reason=…` on confirmations.
#[derive(Debug, Default, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub reason: String,
}

#[derive(Template)]
#[template(path = "staff/dashboard.html")]
struct DashboardPage {
    page: Page,
    overview: StaffOverview,
}

impl DashboardPage {}

#[get("")]
async fn dashboard(staff: Staff, page: Page, db: web::Data<Db>) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let overview = db
        .run(move |conn| overview::staff_overview(conn, &actor))
        .await?;
    render(&DashboardPage { page, overview })
}

/// Every staff page, under `/staff`: other requests pass them by with one prefix test.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/staff").configure(|cfg| {
        cfg.service(dashboard);
        analytics::routes(cfg);
        audit::routes(cfg);
        bulk::routes(cfg);
        organisations::routes(cfg);
        outbox::routes(cfg);
        partners::routes(cfg);
        courses::routes(cfg);
        users::routes(cfg);
    }));
}
