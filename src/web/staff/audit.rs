//! The platform-wide audit log: every change, filtered by partner, person, action and
//! dates, as a page and as CSV.

use actix_web::{HttpResponse, get, web};
use askama::Template;

use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::{PageRequest, Paginated};
use crate::services::audit::{self, AuditLine, PlatformFilter};
use crate::services::exports;
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, csv_download, render, render_invalid};

#[derive(Template)]
#[template(path = "staff/audit.html")]
struct AuditPage {
    page: Page,
    list: Paginated<AuditLine>,
    pager: Pager,
    typed: PlatformFilter,
    csv_url: String,
    errors: FieldErrors,
}

impl AuditPage {
    fn actions(&self) -> &'static [&'static str] {
        audit::ACTIONS
    }
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

fn query_string(typed: &PlatformFilter) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in typed.pairs() {
        if !value.is_empty() {
            query.append_pair(key, value);
        }
    }
    query.finish()
}

#[get("/audit")]
async fn audit_log(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    typed: web::Query<PlatformFilter>,
    at: web::Query<PageQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let typed = typed.into_inner();
    let request = PageRequest::new(at.page, Some(50)).at(position.0);
    let filter = typed.clone();
    let found = db
        .run({
            let request = request.clone();
            move |conn| audit::platform_log(conn, &actor, &filter, request)
        })
        .await;
    let (list, errors) = match found {
        Ok(list) => (list, FieldErrors::new()),
        Err(Error::Invalid(errors)) => (Paginated::empty(request), errors),
        Err(e) => return Err(e.into()),
    };
    let pager = Pager::new(&list, "/staff/audit", &typed.pairs());
    let query = query_string(&typed);
    let csv_url = if query.is_empty() {
        "/staff/audit.csv".to_string()
    } else {
        format!("/staff/audit.csv?{query}")
    };
    let view = AuditPage {
        page,
        list,
        pager,
        typed,
        csv_url,
        errors,
    };
    if view.errors.is_empty() {
        render(&view)
    } else {
        render_invalid(&view)
    }
}

#[get("/audit.csv")]
async fn audit_csv(
    staff: Staff,
    db: web::Data<Db>,
    typed: web::Query<PlatformFilter>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let typed = typed.into_inner();
    let filter = match db
        .run(move |conn| audit::platform_filter(conn, &actor, &typed))
        .await
    {
        Ok(filter) => filter,
        // Bad filters are explained on the page, with what was typed.
        Err(Error::Invalid(_)) => {
            return Ok(HttpResponse::SeeOther()
                .insert_header(("Location", "/staff/audit"))
                .finish());
        }
        Err(e) => return Err(e.into()),
    };
    let receiver = exports::stream_batches(&db, &audit::CSV_HEADER, move |conn, after| {
        audit::csv_batch(conn, filter.as_ref(), after)
    });
    let filename = format!("audit-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    Ok(csv_download(receiver, &filename))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(audit_csv).service(audit_log);
}
