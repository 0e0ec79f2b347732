//! Catalogs: create and edit, email patterns, and the ordered course list.

use chrono::Utc;
use diesel::PgConnection;
use serde::{Deserialize, Serialize};

use super::audit::{self, Subject};
use crate::domain::availability::{parse_local_datetime, to_local_input};
use crate::domain::patterns::{domain_of_pattern, domains_to_patterns};
use crate::domain::{AvailabilityWindow, EmailPatterns, names};
use crate::error::{Error, FieldErrors, Result};
use crate::models::catalogs::{self, Catalog, CatalogCourse, CatalogForm};
use crate::models::courses::{self, Course};
use crate::models::partners::{self, Partner};
use crate::policies::Actor;
use crate::policies::access::require_partner_access;
use crate::policies::eligibility::course_is_eligible;

/// As typed into the catalog form; dates in the partner's time zone.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CatalogInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub available_start: String,
    #[serde(default)]
    pub available_end: String,
    #[serde(default)]
    pub user_limit: String,
    #[serde(default)]
    pub course_enrollments_limit: String,
    #[serde(default)]
    pub is_self_enrollment: Option<String>,
    #[serde(default)]
    pub allow_self_unenrollment: Option<String>,
    #[serde(default)]
    pub support_email: String,
    #[serde(default)]
    pub authorization_message: String,
    #[serde(default)]
    pub alternative_link: String,
    /// One pattern per line.
    #[serde(default)]
    pub email_patterns: String,
    /// One domain per line, each standing for the pattern of every address at it.
    #[serde(default)]
    pub allowed_domains: String,
}

impl CatalogInput {
    /// The form as it shows a stored catalog.
    pub fn from_catalog(catalog: &Catalog, patterns: &[String], tz: chrono_tz::Tz) -> Self {
        Self {
            name: catalog.name.clone(),
            description: catalog.description.clone(),
            available_start: to_local_input(catalog.available_start, tz),
            available_end: to_local_input(catalog.available_end, tz),
            user_limit: catalog.user_limit.to_string(),
            course_enrollments_limit: catalog.course_enrollments_limit.to_string(),
            is_self_enrollment: catalog.is_self_enrollment.then(|| "on".into()),
            allow_self_unenrollment: catalog.allow_self_unenrollment.then(|| "on".into()),
            support_email: catalog.support_email.clone(),
            authorization_message: catalog.authorization_message.clone(),
            alternative_link: catalog.alternative_link.clone(),
            email_patterns: patterns
                .iter()
                .filter(|p| domain_of_pattern(p).is_none())
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            allowed_domains: patterns
                .iter()
                .filter_map(|p| domain_of_pattern(p))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn checkbox(value: &Option<String>) -> bool {
    matches!(
        value.as_deref().map(str::trim),
        Some("on" | "true" | "1" | "yes")
    )
}

struct ValidCatalog {
    name: String,
    description: String,
    window: AvailabilityWindow,
    user_limit: i32,
    course_enrollments_limit: i32,
    is_self_enrollment: bool,
    allow_self_unenrollment: bool,
    support_email: String,
    authorization_message: String,
    alternative_link: String,
    patterns: Vec<String>,
}

impl ValidCatalog {
    fn form(&self) -> CatalogForm<'_> {
        CatalogForm {
            name: &self.name,
            description: &self.description,
            available_start: self.window.start(),
            available_end: self.window.end(),
            user_limit: self.user_limit,
            course_enrollments_limit: self.course_enrollments_limit,
            is_self_enrollment: self.is_self_enrollment,
            allow_self_unenrollment: self.allow_self_unenrollment,
            support_email: &self.support_email,
            authorization_message: &self.authorization_message,
            alternative_link: &self.alternative_link,
        }
    }
}

/// Describes every bad pattern line for the field's message.
pub fn pattern_errors_message(errors: &[crate::domain::patterns::PatternLineError]) -> String {
    errors
        .iter()
        .map(|e| format!("line {} ({}): {}", e.line, e.pattern, e.error))
        .collect::<Vec<_>>()
        .join("\n")
}

fn validate(input: &CatalogInput, tz: chrono_tz::Tz) -> Result<ValidCatalog> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", names::required_single_line(&input.name, 200));
    let description = errors.check(
        "description",
        names::optional_text(&input.description, 5000),
    );
    let start = errors.check(
        "available_start",
        parse_local_datetime(&input.available_start, tz, false),
    );
    let end = errors.check(
        "available_end",
        parse_local_datetime(&input.available_end, tz, true),
    );
    let window = match (start, end) {
        (Some(s), Some(e)) => errors.check("available_end", AvailabilityWindow::new(s, e)),
        _ => None,
    };
    let user_limit = errors.check("user_limit", names::non_negative(&input.user_limit));
    let course_enrollments_limit = errors.check(
        "course_enrollments_limit",
        names::non_negative(&input.course_enrollments_limit),
    );
    let support_email = errors.check("support_email", names::optional_email(&input.support_email));
    let authorization_message = errors.check(
        "authorization_message",
        names::optional_text(&input.authorization_message, 2000),
    );
    let alternative_link = errors.check(
        "alternative_link",
        names::optional_url(&input.alternative_link),
    );
    let domain_patterns = match domains_to_patterns(&input.allowed_domains) {
        Ok(patterns) => patterns,
        Err(bad) => {
            let lines: Vec<String> = bad
                .iter()
                .map(|(line, typed)| {
                    format!("line {line} ({typed}) is not a domain such as acme.com")
                })
                .collect();
            errors.add("allowed_domains", lines.join("; "));
            Vec::new()
        }
    };
    // Domains first, then the patterns typed as such; a domain typed twice counts once.
    let all_lines: Vec<&str> = domain_patterns
        .iter()
        .map(String::as_str)
        .chain(input.email_patterns.lines())
        .collect();
    let patterns = match EmailPatterns::parse_lines(all_lines.iter().copied()) {
        Ok(patterns) => {
            let mut sources = patterns.sources();
            let mut seen = std::collections::HashSet::new();
            sources.retain(|p| seen.insert(p.clone()));
            Some(sources)
        }
        Err(bad) => {
            // Line numbers are those of the patterns box.
            let offset = domain_patterns.len();
            let in_box: Vec<_> = bad
                .into_iter()
                .map(|mut e| {
                    e.line = e.line.saturating_sub(offset);
                    e
                })
                .collect();
            errors.add("email_patterns", pattern_errors_message(&in_box));
            None
        }
    };
    errors.into_result()?;
    match (
        name,
        description,
        window,
        user_limit,
        course_enrollments_limit,
        support_email,
        authorization_message,
        alternative_link,
        patterns,
    ) {
        (
            Some(name),
            Some(description),
            Some(window),
            Some(user_limit),
            Some(course_enrollments_limit),
            Some(support_email),
            Some(authorization_message),
            Some(alternative_link),
            Some(patterns),
        ) => Ok(ValidCatalog {
            name,
            description,
            window,
            user_limit,
            course_enrollments_limit,
            is_self_enrollment: checkbox(&input.is_self_enrollment),
            allow_self_unenrollment: checkbox(&input.allow_self_unenrollment),
            support_email,
            authorization_message,
            alternative_link,
            patterns,
        }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validated catalog is incomplete"
        ))),
    }
}

/// `partner-code-name`, then `-2`, `-3`… until it is free.
fn unique_slug(conn: &mut PgConnection, partner: &Partner, name: &str) -> Result<String> {
    let base = names::slugify(&format!("{} {}", partner.code, name));
    let taken = catalogs::slugs_like(conn, &base)?;
    if !taken.contains(&base) {
        return Ok(base);
    }
    let mut n = 2;
    loop {
        let candidate = format!("{base}-{n}");
        if !taken.contains(&candidate) {
            return Ok(candidate);
        }
        n += 1;
    }
}

#[derive(Serialize)]
struct CatalogSnapshot<'a> {
    #[serde(flatten)]
    catalog: &'a Catalog,
    email_patterns: &'a [String],
}

fn snapshot(catalog: &Catalog, patterns: &[String]) -> Result<serde_json::Value> {
    audit::to_json(&CatalogSnapshot {
        catalog,
        email_patterns: patterns,
    })
}

pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    partner_id: i64,
    input: &CatalogInput,
) -> Result<Catalog> {
    require_partner_access(actor, partner_id, "partner")?;
    let partner = partners::find(conn, partner_id).map_err(|_| Error::NotFound("partner"))?;
    let valid = validate(input, partner.tz())?;
    // Two catalogs created at once with the same name must not both take the slug.
    let slug_lock = format!(
        "catalog-slug:{}",
        names::slugify(&format!("{} {}", partner.code, valid.name))
    );
    crate::models::advisory_xact_lock(conn, &slug_lock)?;
    let slug = unique_slug(conn, &partner, &valid.name)?;
    let catalog = catalogs::insert(conn, partner.id, &slug, actor.user_id, &valid.form())?;
    catalogs::replace_patterns(conn, catalog.id, &valid.patterns)?;
    audit::record(
        conn,
        actor,
        "catalog.create",
        Subject::new("catalog", catalog.id).catalog(partner.id, catalog.id),
        None,
        Some(snapshot(&catalog, &valid.patterns)?),
        None,
    )?;
    Ok(catalog)
}

pub fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    input: &CatalogInput,
) -> Result<Catalog> {
    let before = find_locked(conn, actor, catalog_id)?;
    let partner = partners::find(conn, before.partner_id)?;
    let patterns_before = catalogs::patterns_of(conn, catalog_id)?;
    let valid = validate(input, partner.tz())?;
    let after = catalogs::update(conn, catalog_id, &valid.form())?;
    catalogs::replace_patterns(conn, catalog_id, &valid.patterns)?;
    audit::record(
        conn,
        actor,
        "catalog.update",
        Subject::new("catalog", catalog_id).catalog(partner.id, catalog_id),
        Some(snapshot(&before, &patterns_before)?),
        Some(snapshot(&after, &valid.patterns)?),
        None,
    )?;
    Ok(after)
}

/// Archives a catalog: learners no longer see it, nobody can join or enrol through it,
/// reminders stop, and the partner's lists leave it out. Its people, seats and history
/// stay, and it can be restored.
pub fn archive(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    reason: Option<&str>,
) -> Result<Catalog> {
    let before = find_locked(conn, actor, catalog_id)?;
    if before.is_archived() {
        return Err(Error::InvalidTransition(format!(
            "{} is already archived.",
            before.name
        )));
    }
    let after =
        catalogs::set_archived(conn, catalog_id, Some((Utc::now(), actor.require_user()?)))?;
    audit::record(
        conn,
        actor,
        "catalog.archive",
        Subject::new("catalog", catalog_id).catalog(before.partner_id, catalog_id),
        Some(serde_json::json!({ "archived_at": before.archived_at })),
        Some(serde_json::json!({ "archived_at": after.archived_at })),
        reason,
    )?;
    Ok(after)
}

/// Takes a catalog out of the archive: it is as it was before.
pub fn restore(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<Catalog> {
    let before = find_locked(conn, actor, catalog_id)?;
    if !before.is_archived() {
        return Err(Error::InvalidTransition(format!(
            "{} is not archived.",
            before.name
        )));
    }
    let after = catalogs::set_archived(conn, catalog_id, None)?;
    audit::record(
        conn,
        actor,
        "catalog.restore",
        Subject::new("catalog", catalog_id).catalog(before.partner_id, catalog_id),
        Some(serde_json::json!({ "archived_at": before.archived_at })),
        Some(serde_json::json!({ "archived_at": after.archived_at })),
        None,
    )?;
    Ok(after)
}

/// A new catalog with another's settings, email patterns and courses (in order), and
/// none of its people: no invitations, learners or seats.
pub fn duplicate(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<Catalog> {
    let source = find(conn, actor, catalog_id)?;
    let partner = partners::find(conn, source.partner_id)?;
    let name: String = format!("Copy of {}", source.name)
        .chars()
        .take(200)
        .collect();
    let slug_lock = format!(
        "catalog-slug:{}",
        names::slugify(&format!("{} {}", partner.code, name))
    );
    crate::models::advisory_xact_lock(conn, &slug_lock)?;
    let slug = unique_slug(conn, &partner, &name)?;
    let form = catalogs::CatalogForm {
        name: &name,
        description: &source.description,
        available_start: source.available_start,
        available_end: source.available_end,
        user_limit: source.user_limit,
        course_enrollments_limit: source.course_enrollments_limit,
        is_self_enrollment: source.is_self_enrollment,
        allow_self_unenrollment: source.allow_self_unenrollment,
        support_email: &source.support_email,
        authorization_message: &source.authorization_message,
        alternative_link: &source.alternative_link,
    };
    let copy = catalogs::insert(conn, partner.id, &slug, actor.user_id, &form)?;
    let patterns = catalogs::patterns_of(conn, source.id)?;
    catalogs::replace_patterns(conn, copy.id, &patterns)?;
    for (position, (_, course)) in catalogs::courses_of(conn, source.id)?.iter().enumerate() {
        catalogs::insert_course_at(
            conn,
            copy.id,
            course.id,
            i32::try_from(position).unwrap_or(i32::MAX),
        )?;
    }
    let mut after = snapshot(&copy, &patterns)?;
    after["copied_from"] = serde_json::json!(source.id);
    after["courses"] = serde_json::json!(course_order(conn, copy.id)?);
    audit::record(
        conn,
        actor,
        "catalog.create",
        Subject::new("catalog", copy.id).catalog(partner.id, copy.id),
        None,
        Some(after),
        None,
    )?;
    Ok(copy)
}

/// A partner's archived catalogs.
pub fn archived_for_partner(
    conn: &mut PgConnection,
    actor: &Actor,
    partner_id: i64,
) -> Result<Vec<Catalog>> {
    require_partner_access(actor, partner_id, "partner")?;
    Ok(catalogs::archived_for_partner(conn, partner_id)?)
}

/// Replaces the catalog's email patterns with the given lines (rule 2).
pub fn replace_patterns(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    lines: &str,
) -> Result<Vec<String>> {
    let catalog = find_locked(conn, actor, catalog_id)?;
    let patterns = EmailPatterns::parse_lines(lines.lines())
        .map_err(|bad| Error::invalid("email_patterns", pattern_errors_message(&bad)))?
        .sources();
    let before = catalogs::patterns_of(conn, catalog_id)?;
    catalogs::replace_patterns(conn, catalog_id, &patterns)?;
    audit::record(
        conn,
        actor,
        "catalog.patterns_replace",
        Subject::new("catalog", catalog_id).catalog(catalog.partner_id, catalog_id),
        Some(serde_json::json!({ "email_patterns": before })),
        Some(serde_json::json!({ "email_patterns": patterns })),
        None,
    )?;
    Ok(patterns)
}

/// The catalog, if this actor may manage it; otherwise "not found" (rule 10).
pub fn find(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<Catalog> {
    let catalog = catalogs::find(conn, catalog_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("catalog"),
        other => other.into(),
    })?;
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(catalog)
}

fn find_locked(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<Catalog> {
    find(conn, actor, catalog_id)?;
    Ok(catalogs::lock(conn, catalog_id)?)
}

pub fn for_partner(
    conn: &mut PgConnection,
    actor: &Actor,
    partner_id: i64,
) -> Result<Vec<Catalog>> {
    require_partner_access(actor, partner_id, "partner")?;
    Ok(catalogs::for_partner(conn, partner_id)?)
}

pub fn patterns(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<Vec<String>> {
    find(conn, actor, catalog_id)?;
    Ok(catalogs::patterns_of(conn, catalog_id)?)
}

pub fn courses(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
) -> Result<Vec<(CatalogCourse, Course)>> {
    let catalog = find(conn, actor, catalog_id)?;
    courses_of(conn, actor, &catalog)
}

/// `courses` of a catalog already loaded.
pub fn courses_of(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
) -> Result<Vec<(CatalogCourse, Course)>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(catalogs::courses_of(conn, catalog.id)?)
}

fn course_order(conn: &mut PgConnection, catalog_id: i64) -> Result<Vec<String>> {
    Ok(catalogs::courses_of(conn, catalog_id)?
        .into_iter()
        .map(|(_, c)| c.key)
        .collect())
}

/// Adds a course at `position` (0-based; past the end or none means last).
pub fn add_course(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    course_id: i64,
    position: Option<i32>,
) -> Result<CatalogCourse> {
    let catalog = find_locked(conn, actor, catalog_id)?;
    let partner = partners::find(conn, catalog.partner_id)?;
    let course = courses::find(conn, course_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::invalid("course_id", "choose an existing course"),
        other => other.into(),
    })?;
    if !course_is_eligible(conn, &partner, &course)? {
        return Err(Error::invalid(
            "course_id",
            format!(
                "{} belongs to another organisation and is not in the shared pool",
                course.key
            ),
        ));
    }
    if catalogs::catalog_course(conn, catalog_id, course_id)?.is_some() {
        return Err(Error::invalid(
            "course_id",
            format!("{} is already in this catalog", course.key),
        ));
    }
    let before = course_order(conn, catalog_id)?;
    let count = catalogs::course_count(conn, catalog_id)? as i32;
    let position = position.map(|p| p.clamp(0, count)).unwrap_or(count);
    let added = catalogs::insert_course_at(conn, catalog_id, course_id, position)?;
    let after = course_order(conn, catalog_id)?;
    audit::record(
        conn,
        actor,
        "catalog.course_add",
        Subject::new("course", course_id).catalog(partner.id, catalog_id),
        Some(serde_json::json!({ "courses": before })),
        Some(serde_json::json!({ "courses": after, "added": course.key, "position": position })),
        None,
    )?;
    Ok(added)
}

pub fn remove_course(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    course_id: i64,
    reason: Option<&str>,
) -> Result<()> {
    let catalog = find_locked(conn, actor, catalog_id)?;
    let before = course_order(conn, catalog_id)?;
    if catalogs::remove_course(conn, catalog_id, course_id)?.is_none() {
        return Err(Error::NotFound("course in this catalog"));
    }
    let after = course_order(conn, catalog_id)?;
    audit::record(
        conn,
        actor,
        "catalog.course_remove",
        Subject::new("course", course_id).catalog(catalog.partner_id, catalog_id),
        Some(serde_json::json!({ "courses": before })),
        Some(serde_json::json!({ "courses": after })),
        reason,
    )?;
    Ok(())
}

/// Moves a course to `to` (0-based, clamped to the list).
pub fn move_course(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    course_id: i64,
    to: i32,
) -> Result<()> {
    let catalog = find_locked(conn, actor, catalog_id)?;
    let entry = catalogs::catalog_course(conn, catalog_id, course_id)?
        .ok_or(Error::NotFound("course in this catalog"))?;
    let count = catalogs::course_count(conn, catalog_id)? as i32;
    let to = to.clamp(0, (count - 1).max(0));
    if to == entry.position {
        return Ok(());
    }
    let before = course_order(conn, catalog_id)?;
    catalogs::move_course(conn, catalog_id, entry.position, to)?;
    let after = course_order(conn, catalog_id)?;
    audit::record(
        conn,
        actor,
        "catalog.course_move",
        Subject::new("course", course_id).catalog(catalog.partner_id, catalog_id),
        Some(serde_json::json!({ "courses": before })),
        Some(serde_json::json!({ "courses": after })),
        None,
    )?;
    Ok(())
}
