//! The analytics pages: a partner's, a catalog's, and (for staff) the platform's, each
//! with charts drawn as inline SVG, the numbers beside them, and each chart as CSV.

use actix_web::{HttpResponse, get, web};
use askama::Template;

use super::scope;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::catalogs::Catalog;
use crate::models::partners::Partner;
use crate::services::analytics::{self, PeriodInput, Report, Subject};
use crate::services::exports;
use crate::web::auth::{Identity, ManagerOrStaff};
use crate::web::error::AppError;
use crate::web::page::{Count, Page, csv_attachment, render, render_invalid};

/// Where the report is about, for titles and links.
pub struct Heading {
    pub title: String,
    /// The page's own path, without query.
    pub path: String,
    /// The way back, when there is one: (link, words).
    pub back: Option<(String, String)>,
    pub partner: Option<Partner>,
    pub catalog: Option<Catalog>,
}

#[derive(Template)]
#[template(path = "analytics/report.html")]
pub struct ReportPage {
    pub page: Page,
    pub heading: Heading,
    pub input: PeriodInput,
    pub report: Option<Report>,
    pub errors: FieldErrors,
    /// `?period=…` as the page was asked, for the CSV links.
    pub query: String,
}

/// Bars are drawn on a scale of this many units (of a chart 480 wide, leaving room for
/// the value after the longest).
const BAR: i64 = 380;

impl ReportPage {
    /// A bar's length for `value` against the largest value shown.
    fn bar(&self, value: impl Count, max: impl Count) -> i64 {
        let (value, max) = (value.count(), max.count());
        if max <= 0 {
            0
        } else {
            (value * BAR / max).max(if value > 0 { 2 } else { 0 })
        }
    }
    fn percent(&self, part: impl Count, whole: impl Count) -> String {
        Report::percent(part.count(), whole.count()).map_or_else(|| "–".into(), |p| format!("{p}%"))
    }
    fn rate(&self, rate: Option<i64>) -> String {
        rate.map_or_else(|| "–".into(), |p| format!("{p}%"))
    }
    fn delay(&self, spread: &Option<analytics::Spread>) -> String {
        match spread {
            Some(s) => format!(
                "{} (median) · {} (90th percentile)",
                analytics::duration_words(s.median),
                analytics::duration_words(s.p90)
            ),
            None => "no answers yet".into(),
        }
    }
    fn channel(&self, channel: &str) -> String {
        analytics::channel_words(channel).to_string()
    }
    fn funnel_max(&self, report: &Report) -> i64 {
        report.funnel.iter().map(|s| s.count).max().unwrap_or(0)
    }
    fn week_max(&self, report: &Report) -> i64 {
        report
            .weeks
            .iter()
            .map(|w| w.active_learners)
            .max()
            .unwrap_or(0)
    }
    fn blocked_max(&self, report: &Report) -> i64 {
        report.blocked.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }
    fn channel_max(&self, report: &Report) -> i64 {
        report.channels.iter().map(|c| c.created).max().unwrap_or(0)
    }
    /// A vertical bar's height in a chart 160 units high.
    fn column(&self, value: impl Count, max: impl Count) -> i64 {
        let (value, max) = (value.count(), max.count());
        if max <= 0 { 0 } else { value * 160 / max }
    }
    /// Where a week's column starts, for `count` weeks between 40 and 472.
    fn column_x(&self, index: impl Count, count: impl Count) -> i64 {
        40 + index.count() * 432 / count.count().max(1)
    }
    fn column_width(&self, count: impl Count) -> i64 {
        (432 / count.count().max(1) - 4).max(2)
    }
    fn csv(&self, chart: &str) -> String {
        if self.query.is_empty() {
            format!("{}/{chart}.csv", self.heading.path)
        } else {
            format!("{}/{chart}.csv?{}", self.heading.path, self.query)
        }
    }
    fn selected(&self, value: &str) -> bool {
        let chosen = self.input.period.trim();
        chosen == value || (chosen.is_empty() && value == "30")
    }
}

fn query_of(input: &PeriodInput) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in input.pairs() {
        query.append_pair(key, &value);
    }
    query.finish()
}

/// The report page for a subject; a bad period is explained and keeps what was typed.
pub async fn report_page(
    db: &Db,
    who: &Identity,
    page: Page,
    heading: Heading,
    input: PeriodInput,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (partner, catalog) = (heading.partner.clone(), heading.catalog.clone());
    let typed = input.clone();
    let outcome = db
        .run(move |conn| {
            let subject = subject_of(partner.as_ref(), catalog.as_ref());
            let period = analytics::period(
                &typed,
                subject.time_zone(),
                analytics::today_in(subject.time_zone()),
            )?;
            analytics::report(conn, &actor, subject, &period)
        })
        .await;
    let query = query_of(&input);
    match outcome {
        Ok(report) => render(&ReportPage {
            page,
            heading,
            input,
            report: Some(report),
            errors: FieldErrors::new(),
            query,
        }),
        Err(Error::Invalid(errors)) => render_invalid(&ReportPage {
            page,
            heading,
            input,
            report: None,
            errors,
            query,
        }),
        Err(e) => Err(e.into()),
    }
}

fn subject_of<'a>(partner: Option<&'a Partner>, catalog: Option<&'a Catalog>) -> Subject<'a> {
    match (partner, catalog) {
        (Some(partner), Some(catalog)) => Subject::Catalog(partner, catalog),
        (Some(partner), None) => Subject::Partner(partner),
        _ => Subject::Platform,
    }
}

/// One chart's numbers as CSV, for the same subject and period as its page.
pub async fn chart_csv(
    db: &Db,
    who: &Identity,
    heading: Heading,
    chart: String,
    input: PeriodInput,
) -> Result<HttpResponse, AppError> {
    if !analytics::CHARTS.contains(&chart.as_str()) {
        return Err(AppError::PageNotFound);
    }
    let actor = who.actor();
    let (partner, catalog) = (heading.partner.clone(), heading.catalog.clone());
    let wanted = chart.clone();
    let (header, rows) = db
        .run(move |conn| {
            let subject = subject_of(partner.as_ref(), catalog.as_ref());
            let period = analytics::period(
                &input,
                subject.time_zone(),
                analytics::today_in(subject.time_zone()),
            )?;
            let report = analytics::report(conn, &actor, subject, &period)?;
            analytics::chart_rows(&report, &wanted).ok_or(Error::NotFound("chart"))
        })
        .await?;
    let body = exports::csv_bytes(&header, rows)?;
    let name = heading
        .catalog
        .as_ref()
        .map(|c| c.slug.clone())
        .or_else(|| heading.partner.as_ref().map(|p| p.code.clone()))
        .unwrap_or_else(|| "platform".into());
    Ok(csv_attachment(body, &format!("{name}-{chart}.csv")))
}

async fn partner_heading(
    db: &Db,
    who: &ManagerOrStaff,
    code: String,
    catalog_id: Option<i64>,
) -> Result<Heading, AppError> {
    let (partner, catalog) = scope(db, &who.actor(), code, catalog_id).await?;
    Ok(match catalog {
        Some(catalog) => Heading {
            title: format!("Analytics · {}", catalog.name),
            path: format!(
                "/partner/{}/catalogs/{}/analytics",
                partner.code, catalog.id
            ),
            back: Some((
                format!("/partner/{}/analytics", partner.code),
                format!("All of {}", partner.name),
            )),
            partner: Some(partner),
            catalog: Some(catalog),
        },
        None => Heading {
            title: format!("Analytics · {}", partner.name),
            path: format!("/partner/{}/analytics", partner.code),
            back: Some((format!("/partner/{}", partner.code), partner.name.clone())),
            partner: Some(partner),
            catalog: None,
        },
    })
}

#[get("/analytics")]
async fn partner_report(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<String>,
    input: web::Query<PeriodInput>,
) -> Result<HttpResponse, AppError> {
    let heading = partner_heading(&db, &who, path.into_inner(), None).await?;
    report_page(&db, &who.identity, page, heading, input.into_inner()).await
}

#[get("/analytics/{chart}.csv")]
async fn partner_csv(
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, String)>,
    input: web::Query<PeriodInput>,
) -> Result<HttpResponse, AppError> {
    let (code, chart) = path.into_inner();
    let heading = partner_heading(&db, &who, code, None).await?;
    chart_csv(&db, &who.identity, heading, chart, input.into_inner()).await
}

#[get("/catalogs/{id}/analytics")]
async fn catalog_report(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    input: web::Query<PeriodInput>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let heading = partner_heading(&db, &who, code, Some(id)).await?;
    report_page(&db, &who.identity, page, heading, input.into_inner()).await
}

#[get("/catalogs/{id}/analytics/{chart}.csv")]
async fn catalog_csv(
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, String)>,
    input: web::Query<PeriodInput>,
) -> Result<HttpResponse, AppError> {
    let (code, id, chart) = path.into_inner();
    let heading = partner_heading(&db, &who, code, Some(id)).await?;
    chart_csv(&db, &who.identity, heading, chart, input.into_inner()).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(partner_csv)
        .service(partner_report)
        .service(catalog_csv)
        .service(catalog_report);
}
