//! The email outbox: every email with its delivery state, a preview, and a retry.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::models::Paginated;
use crate::models::outbox::{OutboundEmail, OutboundEmailSummary};
use crate::models::xapi::ForwardingState;
use crate::services::outbox::{self, STATUSES};
use crate::services::xapi;
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, format_datetime, format_optional_datetime, render, see_other};
use crate::web::session::TypedSession;

/// `?status=…&q=…&page=…`
#[derive(Debug, Default, Deserialize)]
struct OutboxQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "staff/outbox.html")]
struct ListPage {
    page: Page,
    list: Paginated<OutboundEmailSummary>,
    pager: Pager,
    search: String,
    status_filter: String,
    statuses: [&'static str; 3],
    forwarding: ForwardingState,
    /// Where statements go, when a store is set.
    lrs: Option<String>,
}

impl ListPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        format_datetime(at)
    }

    fn status_selected(&self, status: &str) -> bool {
        self.status_filter == status
    }

    fn when_optional(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        format_optional_datetime(at)
    }

    /// Statements were forwarded after the last error: it is history.
    fn recovered(&self) -> bool {
        matches!(
            (self.forwarding.last_error_at, self.forwarding.last_forwarded_at),
            (Some(error), Some(forwarded)) if forwarded > error
        )
    }
}

#[derive(Template)]
#[template(path = "staff/outbox_email.html")]
struct EmailPage {
    page: Page,
    email: OutboundEmail,
}

impl EmailPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        format_datetime(at)
    }

    fn when_optional(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        format_optional_datetime(at)
    }
}

#[get("/outbox")]
async fn list(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    query: web::Query<OutboxQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let query = query.into_inner();
    let status_filter = STATUSES
        .iter()
        .find(|s| **s == query.status)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let request = crate::models::PageRequest::new(query.page, None).at(position.0);
    let (status, search) = (status_filter.clone(), query.q.clone());
    let (list, forwarding) = db
        .run(move |conn| {
            Ok((
                outbox::list(conn, &actor, &status, &search, request)?,
                xapi::forwarding_state(conn, &actor)?,
            ))
        })
        .await?;
    let pager = Pager::new(
        &list,
        "/staff/outbox",
        &[("status", &status_filter), ("q", &query.q)],
    );
    render(&ListPage {
        page,
        list,
        pager,
        search: query.q,
        status_filter,
        statuses: STATUSES,
        forwarding,
        lrs: settings
            .xapi_lrs_url
            .as_deref()
            .map(xapi::shown_destination),
    })
}

#[get("/outbox/{id}")]
async fn show(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let email = db.run(move |conn| outbox::find(conn, &actor, id)).await?;
    render(&EmailPage { page, email })
}

#[post("/outbox/{id}/retry")]
async fn retry(
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    match db
        .transaction(move |conn| outbox::retry(conn, &actor, id))
        .await
    {
        Ok(email) => session.success(format!(
            "The email to {} is queued again.",
            email.to_address
        )),
        Err(Error::Conflict(message)) => session.error(message),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&format!("/staff/outbox/{id}")))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(show).service(retry);
}
