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
    db.run(move |conn| {
        let partner = console::partner_by_code(conn, &actor, &code)?;
        let catalog = match catalog_id {
            Some(id) => Some(console::catalog_of(conn, &actor, &partner, id)?),
            None => None,
        };
        Ok((partner, catalog))
    })
    .await
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    analytics::routes(cfg);
    catalogs::routes(cfg);
    people::routes(cfg);
    lifecycle::routes(cfg);
    bulk::routes(cfg);
    pre_enrollments::routes(cfg);
}
