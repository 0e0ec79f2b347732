//! What every page's layout needs: the person signed in, the CSRF token, flash messages.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, ContentType};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use askama::Template;

use super::auth::{Identity, load_identity};
use super::error::AppError;
use super::session::{Flash, TypedSession};
use crate::models::{Paginated, Position};

#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    pub is_staff: bool,
    pub partner_code: Option<String>,
    /// Bulk lists waiting for a staff decision.
    pub bulk_waiting: i64,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub user: Option<NavUser>,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
    pub path: String,
}

impl Page {
    /// For error pages: shows no one as signed in.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            csrf_token: String::new(),
            flashes: Vec::new(),
            path: String::new(),
        }
    }

    pub fn for_request(req: &HttpRequest, identity: Option<&Identity>) -> Self {
        let session = TypedSession::from_request(req);
        Self {
            user: identity.map(|i| NavUser {
                name: i.user.display_name().to_string(),
                is_staff: i.user.is_staff,
                partner_code: i.partner.as_ref().map(|p| p.code.clone()),
                bulk_waiting: i.bulk_waiting,
            }),
            csrf_token: session.csrf_token(),
            flashes: session.take_flashes(),
            path: req.path().to_string(),
        }
    }

    /// The catalog tab a console path is on: `""` for the settings, else the segment
    /// after the catalog's id (`courses`, `invitations`, …).
    pub fn catalog_tab(&self) -> &str {
        self.path
            .split_once("/catalogs/")
            .and_then(|(_, rest)| rest.split('/').nth(1))
            .unwrap_or("")
    }

    /// Marks a navigation link as the current page, for links whose pages have their own
    /// links below them (the staff dashboard).
    pub fn nav_exact(&self, path: &str) -> &'static str {
        if self.path == path { "current" } else { "" }
    }

    /// Marks a navigation link as the current section.
    pub fn nav_class(&self, prefix: &str) -> &'static str {
        if self.path == prefix || self.path.starts_with(&format!("{prefix}/")) {
            "current"
        } else {
            ""
        }
    }
}

impl FromRequest for Page {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let identity = load_identity(&req).await?;
            Ok(Page::for_request(&req, identity.as_ref()))
        })
    }
}

pub fn render<T: Template>(template: &T) -> Result<HttpResponse, AppError> {
    render_status(actix_web::http::StatusCode::OK, template)
}

/// Renders a form again with what was typed and why it was refused.
pub fn render_invalid<T: Template>(template: &T) -> Result<HttpResponse, AppError> {
    render_status(actix_web::http::StatusCode::BAD_REQUEST, template)
}

pub fn render_status<T: Template>(
    status: actix_web::http::StatusCode,
    template: &T,
) -> Result<HttpResponse, AppError> {
    let body = template.render()?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}

/// "Are you sure?" before a change that is hard to undo, with an optional reason for the
/// audit log; the form posts to `action`.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub page: Page,
    pub title: String,
    pub question: String,
    pub action: String,
    pub hidden: Vec<(&'static str, String)>,
    pub button: String,
    pub danger: bool,
    pub back: String,
    pub reason: String,
    pub errors: crate::error::FieldErrors,
}

/// Post/redirect/get: answers a form with 303 to the page to show next.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// Where a list page starts, read from its link (`after`, `before` or `last`); a part
/// that cannot be read starts the list from its first page.
#[derive(Debug, Clone, Default)]
pub struct ListPosition(pub Position);

impl ListPosition {
    pub fn from_query(query: &str) -> Self {
        let key = |value: &str| serde_json::from_str::<Vec<String>>(value).ok();
        let mut position = Position::First;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "after" => {
                    if let Some(k) = key(&value) {
                        position = Position::After(k);
                    }
                }
                "before" => {
                    if let Some(k) = key(&value) {
                        position = Position::Before(k);
                    }
                }
                "last" if value == "1" => position = Position::Last,
                _ => {}
            }
        }
        Self(position)
    }
}

impl FromRequest for ListPosition {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Self::from_query(req.query_string())))
    }
}

/// Links to the first, previous, next and last pages of a list, keeping its filters.
#[derive(Debug, Clone)]
pub struct Pager {
    /// Where the list stands: "Page 3 of 12 · 290 in all", "Last page · more than 1000 in all".
    pub label: String,
    pub past_the_end: bool,
    pub first_url: Option<String>,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    pub last_url: Option<String>,
}

impl Pager {
    /// Whether the list spans more than this page (or a stale link missed it).
    pub fn has_pages(&self) -> bool {
        self.first_url.is_some() || self.next_url.is_some() || self.past_the_end
    }

    pub fn new<T>(list: &Paginated<T>, base_path: &str, filters: &[(&str, &str)]) -> Self {
        let url_for = |position: &[(&str, String)]| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in filters {
                if !value.is_empty() {
                    query.append_pair(key, value);
                }
            }
            for (key, value) in position {
                query.append_pair(key, value);
            }
            let query = query.finish();
            if query.is_empty() {
                base_path.to_string()
            } else {
                format!("{base_path}?{query}")
            }
        };
        let key = |k: &Vec<String>| serde_json::to_string(k).unwrap_or_default();
        // On a last page reached page by page, the entries before it give the exact total.
        let (total, lower_bound) = match list.page {
            Some(page) if list.total_is_lower_bound && !list.has_next && !list.past_the_end => (
                (page - 1)
                    .saturating_mul(list.per_page)
                    .saturating_add(list.items.len() as i64),
                false,
            ),
            _ => (list.total, list.total_is_lower_bound),
        };
        let pages = (total.saturating_add(list.per_page - 1) / list.per_page.max(1)).max(1);
        let label = match (list.page, lower_bound) {
            _ if list.past_the_end => format!(
                "Nothing more here: the list has changed since this link was made ({} in all)",
                list.total
            ),
            (Some(page), false) if pages > 1 || page > 1 => {
                format!("Page {page} of {} · {total} in all", pages.max(page))
            }
            (_, false) => format!("{total} in all"),
            (Some(page), true) => format!("Page {page} · more than {total} in all"),
            (None, true) if !list.has_next => format!("Last page · more than {total} in all"),
            (None, true) => format!("More than {total} in all"),
        };
        let page = list.page;
        Self {
            label,
            past_the_end: list.past_the_end,
            first_url: (list.has_previous || list.past_the_end).then(|| url_for(&[])),
            prev_url: match (&list.first_key, list.has_previous) {
                (Some(first), true) => {
                    let mut at = vec![("before", key(first))];
                    if let Some(page) = page {
                        at.push(("page", (page - 1).max(1).to_string()));
                    }
                    Some(url_for(&at))
                }
                _ => None,
            },
            next_url: match (&list.last_key, list.has_next) {
                (Some(last), true) => {
                    let mut at = vec![("after", key(last))];
                    if let Some(page) = page {
                        at.push(("page", (page + 1).to_string()));
                    }
                    Some(url_for(&at))
                }
                _ => None,
            },
            last_url: list.has_next.then(|| url_for(&[("last", "1".to_string())])),
        }
    }
}

/// A count of any integer type, as templates hand them over (often by reference).
pub trait Count {
    fn count(&self) -> i64;
}

impl Count for i64 {
    fn count(&self) -> i64 {
        *self
    }
}

impl Count for i32 {
    fn count(&self) -> i64 {
        i64::from(*self)
    }
}

impl Count for usize {
    fn count(&self) -> i64 {
        i64::try_from(*self).unwrap_or(i64::MAX)
    }
}

impl<T: Count + ?Sized> Count for &T {
    fn count(&self) -> i64 {
        (**self).count()
    }
}

/// "1 place", "3 places".
pub fn count_of(count: impl Count, one: &str, many: &str) -> String {
    let count = count.count();
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// Writes `YYYY-MM-DD`, and ` HH:MM` when `with_time`. Lists write thousands of times,
/// and chrono's general formatter costs more than the time itself (and renders a zone's
/// name into a string of its own each time).
fn write_local<Tz: chrono::TimeZone>(
    text: &mut String,
    value: &chrono::DateTime<Tz>,
    with_time: bool,
) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let _ = write!(
        text,
        "{:04}-{:02}-{:02}",
        value.year(),
        value.month(),
        value.day()
    );
    if with_time {
        let _ = write!(text, " {:02}:{:02}", value.hour(), value.minute());
    }
}

/// Date and time shown to people.
pub fn format_datetime(value: &chrono::DateTime<chrono::Utc>) -> String {
    let mut text = String::with_capacity(20);
    write_local(&mut text, value, true);
    text.push_str(" UTC");
    text
}

/// An instant in a time zone, with the zone's abbreviation so no time is ambiguous.
pub fn format_in_zone(value: &chrono::DateTime<chrono::Utc>, zone: &chrono_tz::Tz) -> String {
    use std::fmt::Write;
    let local = value.with_timezone(zone);
    let mut text = String::with_capacity(24);
    write_local(&mut text, &local, true);
    // The zone's abbreviation, or its offset where it has none.
    let _ = write!(text, " {}", local.offset());
    text
}

pub fn format_optional_datetime(value: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    value.as_ref().map(format_datetime).unwrap_or_default()
}

pub fn format_date(value: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    let mut text = String::new();
    if let Some(value) = value {
        write_local(&mut text, value, false);
    }
    text
}

/// What an audit action means, in words; unknown actions show their code.
pub use crate::services::audit::action_words as action_label;

/// A small CSV download sent at once.
pub fn csv_attachment(body: actix_web::web::Bytes, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body)
}

/// A CSV download streamed from an export's chunks.
pub fn csv_download(
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<actix_web::web::Bytes>>,
    filename: &str,
) -> HttpResponse {
    let body = futures_util::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_are_written_as_date_hour_minute_and_zone() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 12, 4, 0).unwrap();
        let summer = chrono::Utc.with_ymd_and_hms(2026, 7, 2, 12, 4, 0).unwrap();
        assert_eq!(format_datetime(&at), "2026-01-02 12:04 UTC");
        assert_eq!(
            format_in_zone(&at, &chrono_tz::Europe::Paris),
            "2026-01-02 13:04 CET"
        );
        assert_eq!(
            format_in_zone(&summer, &chrono_tz::Europe::Paris),
            "2026-07-02 14:04 CEST"
        );
        assert_eq!(format_date(&Some(at)), "2026-01-02");
        assert_eq!(format_date(&None), "");
        // A zone whose database names no abbreviation shows its offset.
        assert_eq!(
            format_in_zone(&at, &chrono_tz::Asia::Dubai),
            "2026-01-02 16:04 +04"
        );
        assert_eq!(
            format_in_zone(&at, &chrono_tz::Asia::Kolkata),
            "2026-01-02 17:34 IST"
        );
        // Each of them as chrono's formatter writes it.
        for zone in [
            chrono_tz::UTC,
            chrono_tz::Europe::Paris,
            chrono_tz::Asia::Kathmandu,
        ] {
            for instant in [at, summer] {
                assert_eq!(
                    format_in_zone(&instant, &zone),
                    instant
                        .with_timezone(&zone)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                );
            }
        }
        assert_eq!(
            format_datetime(&summer),
            summer.format("%Y-%m-%d %H:%M UTC").to_string()
        );
    }
}
