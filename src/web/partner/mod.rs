//! The partner console: managers work on their own partner's catalogs; staff may open
//! any partner's console. Every lookup goes through services that check access.

pub(crate) mod analytics;
pub(crate) mod bulk;
mod catalogs;
mod lifecycle;
mod people;
mod pre_enrollments;

use actix_web::web;
use serde::Deserialize;

use crate::db::Db;
use crate::error::Result;
use crate::models::catalogs::Catalog;
use crate::models::partners::Partner;
use crate::policies::Actor;
use crate::services::console;

/// The partner named in the path, and the catalog when there is one.
pub(crate) async fn scope(
    db: &Db,
    actor: &Actor,
    code: String,
    catalog_id: Option<i64>,
) -> Result<(Partner, Option<Catalog>)> {
    let actor = actor.clone();
    db.run(move |conn| scope_in(conn, &actor, &code, catalog_id))
        .await
}

/// `scope` inside a page's own unit of work, which then needs no trip of its own.
pub(crate) fn scope_in(
    conn: &mut diesel::PgConnection,
    actor: &Actor,
    code: &str,
    catalog_id: Option<i64>,
) -> Result<(Partner, Option<Catalog>)> {
    console::partner_and_catalog(conn, actor, code, catalog_id)
}

/// `scope_in` for a page about one catalog.
pub(crate) fn catalog_scope_in(
    conn: &mut diesel::PgConnection,
    actor: &Actor,
    code: &str,
    catalog_id: i64,
) -> Result<(Partner, Catalog)> {
    let (partner, catalog) = scope_in(conn, actor, code, Some(catalog_id))?;
    Ok((
        partner,
        catalog.ok_or(crate::error::Error::NotFound("catalog"))?,
    ))
}

/// `reason=…` of confirmation forms.
#[derive(Debug, Default, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub reason: String,
}

/// Formats an instant in the partner's time zone.
pub(crate) fn local(partner: &Partner, at: &chrono::DateTime<chrono::Utc>) -> String {
    crate::web::page::format_in_zone(at, &partner.tz())
}

pub(crate) fn local_opt(partner: &Partner, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.as_ref().map(|t| local(partner, t)).unwrap_or_default()
}

/// Percentage of a limit used, for the bars (0 = unlimited shows no bar).
pub(crate) fn percent(used: i64, limit: i32) -> i64 {
    if limit <= 0 {
        0
    } else {
        (used * 100 / i64::from(limit)).min(100)
    }
}

/// Every console page, under `/partner/{code}`: other requests pass them by with one
/// prefix test, and these match only the rest of the path.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/partner/{code}").configure(|cfg| {
        analytics::routes(cfg);
        catalogs::routes(cfg);
        people::routes(cfg);
        lifecycle::routes(cfg);
        bulk::routes(cfg);
        pre_enrollments::routes(cfg);
    }));
}
