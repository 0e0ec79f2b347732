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
use crate::models::Paginated;

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

/// Links to the previous and next pages of a list, keeping its filters.
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: i64,
    pub total_pages: i64,
    pub total: i64,
    pub total_is_lower_bound: bool,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
}

impl Pager {
    pub fn new<T>(list: &Paginated<T>, base_path: &str, filters: &[(&str, &str)]) -> Self {
        let url_for = |page: i64| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in filters {
                if !value.is_empty() {
                    query.append_pair(key, value);
                }
            }
            query.append_pair("page", &page.to_string());
            format!("{base_path}?{}", query.finish())
        };
        let total_pages = list.total_pages();
        Self {
            page: list.page,
            total_pages,
            total: list.total,
            total_is_lower_bound: list.total_is_lower_bound,
            prev_url: (list.page > 1).then(|| url_for((list.page - 1).min(total_pages))),
            next_url: if list.total_is_lower_bound {
                // Uncounted: a full page may have a next one.
                (list.items.len() as i64 == list.per_page).then(|| url_for(list.page + 1))
            } else {
                (list.page < total_pages).then(|| url_for(list.page + 1))
            },
        }
    }
}

/// Date and time shown to people.
pub fn format_datetime(value: &chrono::DateTime<chrono::Utc>) -> String {
    value.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn format_optional_datetime(value: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    value.as_ref().map(format_datetime).unwrap_or_default()
}

pub fn format_date(value: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    value
        .map(|v| v.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// What an audit action means, in words; unknown actions show their code.
pub fn action_label(action: &str) -> &str {
    match action {
        "catalog.create" => "created the catalog",
        "catalog.update" => "changed the catalog's settings",
        "catalog.patterns_replace" => "changed the email patterns",
        "catalog.course_add" => "added a course",
        "catalog.course_remove" => "removed a course",
        "catalog.course_move" => "moved a course",
        "catalog.self_enroll" => "joined by self-enrolment",
        "invitation.create" => "invited someone",
        "invitation.resend" => "sent an invitation again",
        "invitation.remind" => "sent an invitation reminder",
        "invitation.accept" => "accepted an invitation",
        "invitation.decline" => "declined an invitation",
        "invitation.revoke" => "revoked an invitation",
        "learner.remove" => "removed a learner",
        "licence.grant" => "granted a paid seat",
        "licence.deactivate" => "deactivated a licence",
        "enrollment.create" => "enrolled in a course",
        "enrollment.upgrade" => "upgraded an enrolment",
        "organisation.create" => "created an organisation",
        "organisation.update" => "changed an organisation",
        "partner.create" => "created a partner",
        "partner.update" => "changed a partner",
        "partner.manager_assign" => "assigned a manager",
        "partner.manager_unassign" => "removed a manager",
        "course.create" => "created a course",
        "course.update" => "changed a course",
        "course.import" => "imported courses",
        "shared_pool.add" => "added a course to the shared pool",
        "shared_pool.remove" => "took a course out of the shared pool",
        "user.make_staff" => "made someone staff",
        "user.remove_staff" => "removed a staff role",
        "user.activate" => "reactivated an account",
        "user.deactivate" => "deactivated an account",
        "user.email_change" => "changed an email address",
        "user.email_verify" => "confirmed an email address",
        "user.password_change" => "changed a password",
        "user.password_reset" => "reset a password",
        "user.sign_out_everywhere" => "signed out everywhere",
        "partner.manager_claim" => "took on a manager role",
        "user.identity_link" => "linked an outside identity",
        "user.identity_unlink" => "removed an outside identity",
        "pre_enrollment.create" => "pre-enrolled someone",
        "pre_enrollment.fulfil" => "joined through a pre-enrolment",
        "pre_enrollment.cancel" => "cancelled a pre-enrolment",
        "bulk.submit" => "submitted a bulk invitation",
        "bulk.approve" => "approved a bulk invitation",
        "bulk.reject" => "rejected a bulk invitation",
        "bulk.cancel" => "cancelled a bulk invitation",
        "bulk.batch" => "ran part of a bulk invitation",
        "user.rename" => "changed a name",
        "email.retry" => "retried an email",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::action_label;

    /// Every action the services record reads as words on the audit pages.
    #[test]
    fn every_recorded_action_has_a_label() {
        let pattern = regex::Regex::new(r#""([a-z_]+\.[a-z_]+)""#).expect("pattern");
        let mut seen = 0;
        for entry in std::fs::read_dir("src/services").expect("services") {
            let path = entry.expect("entry").path();
            let source = std::fs::read_to_string(&path).expect("source");
            for found in pattern.captures_iter(&source) {
                let action = &found[1];
                if action.ends_with(".rs") || action.ends_with(".csv") {
                    continue;
                }
                seen += 1;
                assert_ne!(action_label(action), action, "{action} in {path:?}");
            }
        }
        assert!(seen > 30, "found only {seen} actions");
    }
}
