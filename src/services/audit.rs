//! Rule 11: every change made by a person or a token leaves an audit entry, written
//! in the same transaction as the change.

use diesel::PgConnection;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEntry};
use crate::policies::Actor;

/// What an entry is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub object_type: &'a str,
    pub object_id: i64,
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
}

impl<'a> Subject<'a> {
    pub fn new(object_type: &'a str, object_id: i64) -> Self {
        Self {
            object_type,
            object_id,
            partner_id: None,
            catalog_id: None,
        }
    }

    pub fn partner(mut self, partner_id: i64) -> Self {
        self.partner_id = Some(partner_id);
        self
    }

    pub fn catalog(mut self, partner_id: i64, catalog_id: i64) -> Self {
        self.partner_id = Some(partner_id);
        self.catalog_id = Some(catalog_id);
        self
    }
}

pub fn to_json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(Error::internal)
}

/// The longest reason a person may give for a change.
pub const MAX_REASON_CHARS: usize = 500;

/// Writes the audit entry of a change. A reason that is too long refuses the whole change
/// (the caller's transaction rolls back).
pub fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    subject: Subject<'_>,
    before: Option<Value>,
    after: Option<Value>,
    reason: Option<&str>,
) -> Result<()> {
    let object_id = subject.object_id.to_string();
    let reason = reason
        .map(|raw| crate::domain::names::optional_text(raw, MAX_REASON_CHARS))
        .transpose()
        .map_err(|message| Error::invalid("reason", message))?
        .filter(|r| !r.is_empty());
    audit::insert(
        conn,
        &NewAuditEntry {
            actor_user_id: actor.user_id,
            actor_role: actor.audit_role(),
            api_token_id: actor.api_token_id,
            action,
            object_type: subject.object_type,
            object_id: &object_id,
            partner_id: subject.partner_id,
            catalog_id: subject.catalog_id,
            before,
            after,
            reason: reason.as_deref(),
        },
    )?;
    Ok(())
}

/// An audit entry as people read it: who (name and role) did what (in words) to what
/// (by its name), where, and why.
#[derive(Debug, Clone)]
pub struct AuditLine {
    pub entry: crate::models::audit::AuditEntry,
    pub who: String,
    pub role: &'static str,
    /// What the object is called: an address, a course's title, a catalog's name.
    pub what: String,
    pub catalog: Option<String>,
    pub partner: Option<String>,
}

/// A role in words.
pub fn role_words(role: &str) -> &'static str {
    match role {
        "staff" => "staff",
        "partner_manager" => "partner manager",
        "learner" => "learner",
        "api_token" => "API token",
        _ => "the platform",
    }
}

/// Puts names on a page of entries, with a few queries for the whole page.
pub fn describe(
    conn: &mut PgConnection,
    rows: Vec<crate::models::audit::AuditRow>,
) -> Result<Vec<AuditLine>> {
    use std::collections::{BTreeMap, HashMap};
    let mut wanted: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in &rows {
        if let Ok(id) = row.entry.object_id.parse::<i64>() {
            wanted
                .entry(row.entry.object_type.clone())
                .or_default()
                .push(id);
        }
        if let Some(id) = row.entry.catalog_id {
            wanted.entry("catalog".into()).or_default().push(id);
        }
        if let Some(id) = row.entry.partner_id {
            wanted.entry("partner".into()).or_default().push(id);
        }
    }
    let mut names: BTreeMap<String, HashMap<i64, String>> = BTreeMap::new();
    for (object_type, mut ids) in wanted {
        ids.sort_unstable();
        ids.dedup();
        let found = audit::names_of(conn, &object_type, &ids)?;
        names.insert(object_type, found.into_iter().collect());
    }
    let name = |object_type: &str, id: i64| names.get(object_type)?.get(&id).cloned();
    Ok(rows
        .into_iter()
        .map(|row| {
            let entry = row.entry;
            let who = match (
                row.actor_name.filter(|n| !n.trim().is_empty()),
                row.actor_email,
            ) {
                (Some(name), _) => name,
                (None, Some(email)) => email,
                (None, None) if entry.actor_role == "learner" => {
                    "someone with an emailed link".into()
                }
                (None, None) => "the platform".into(),
            };
            let what = entry
                .object_id
                .parse::<i64>()
                .ok()
                .and_then(|id| name(&entry.object_type, id))
                .unwrap_or_else(|| {
                    format!(
                        "{} #{}",
                        entry.object_type.replace('_', " "),
                        entry.object_id
                    )
                });
            AuditLine {
                who,
                role: role_words(&entry.actor_role),
                what,
                catalog: entry.catalog_id.and_then(|id| name("catalog", id)),
                partner: entry.partner_id.and_then(|id| name("partner", id)),
                entry,
            }
        })
        .collect())
}

/// The platform audit log's filters as staff typed them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PlatformFilter {
    #[serde(default)]
    pub partner: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    /// A date (UTC), inclusive.
    #[serde(default)]
    pub from: String,
    /// A date (UTC), inclusive.
    #[serde(default)]
    pub until: String,
}

impl PlatformFilter {
    /// The filters as query-string pairs, for page links and the CSV link.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("partner", self.partner.trim()),
            ("actor", self.actor.trim()),
            ("action", self.action.trim()),
            ("from", self.from.trim()),
            ("until", self.until.trim()),
        ]
    }
}

/// Turns typed filters into a query: `None` when a named partner or person does not
/// exist (nothing can match); a date that is not one is refused, naming its field.
pub fn platform_filter(
    conn: &mut PgConnection,
    actor: &Actor,
    typed: &PlatformFilter,
) -> Result<Option<crate::models::audit::AuditFilter>> {
    crate::policies::access::require_staff(actor)?;
    let mut errors = crate::error::FieldErrors::new();
    let mut date = |field: &str, text: &str| -> Option<chrono::NaiveDate> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        errors.check(
            field,
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| "is not a date; give it as YYYY-MM-DD, for example 2026-11-25"),
        )
    };
    let from = date("from", &typed.from);
    let until = date("until", &typed.until);
    if let (Some(from), Some(until)) = (from, until)
        && until < from
    {
        errors.add("until", "is before the From date");
    }
    let action = typed.action.trim();
    if !action.is_empty() && !ACTIONS.contains(&action) {
        errors.add("action", "is not an action the log records");
    }
    errors.into_result()?;
    let mut filter = crate::models::audit::AuditFilter {
        action: (!action.is_empty()).then(|| action.to_string()),
        since: from.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
        until: until
            .and_then(|d| d.succ_opt())
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
        ..Default::default()
    };
    let partner = typed.partner.trim();
    if !partner.is_empty() {
        match crate::models::partners::find_by_code(conn, &partner.to_lowercase())? {
            Some(found) => filter.partner_id = Some(found.id),
            None => return Ok(None),
        }
    }
    let person = typed.actor.trim();
    if !person.is_empty() {
        match crate::models::users::find_by_email(conn, &person.to_lowercase())? {
            Some(found) => filter.actor_user_id = Some(found.id),
            None => return Ok(None),
        }
    }
    Ok(Some(filter))
}

/// The platform-wide audit log (staff), newest first.
pub fn platform_log(
    conn: &mut PgConnection,
    actor: &Actor,
    typed: &PlatformFilter,
    page: crate::models::PageRequest,
) -> Result<crate::models::Paginated<AuditLine>> {
    let Some(filter) = platform_filter(conn, actor, typed)? else {
        return Ok(crate::models::Paginated::empty(page));
    };
    let rows = audit::list(conn, &filter, page)?;
    described_page(conn, rows)
}

/// The columns of the audit CSV.
pub const CSV_HEADER: [&str; 14] = [
    "occurred_at_utc",
    "who",
    "who_email",
    "role",
    "action",
    "what_happened",
    "object_type",
    "object_id",
    "object",
    "partner",
    "catalog",
    "reason",
    "before",
    "after",
];

/// The next batch of the audit CSV after entry `after_id`, oldest first.
pub fn csv_batch(
    conn: &mut PgConnection,
    filter: Option<&crate::models::audit::AuditFilter>,
    after_id: i64,
) -> Result<(Vec<Vec<String>>, Option<i64>)> {
    const BATCH: i64 = 1000;
    let Some(filter) = filter else {
        return Ok((Vec::new(), None));
    };
    let rows = audit::batch_after(conn, filter, after_id, BATCH)?;
    let full = rows.len() as i64 == BATCH;
    let emails: Vec<Option<String>> = rows.iter().map(|r| r.actor_email.clone()).collect();
    let lines = describe(conn, rows)?;
    let last = lines.last().map(|l| l.entry.id).filter(|_| full);
    let json = |value: &Option<serde_json::Value>| {
        value.as_ref().map(|v| v.to_string()).unwrap_or_default()
    };
    let cells = lines
        .into_iter()
        .zip(emails)
        .map(|(line, email)| {
            vec![
                line.entry
                    .occurred_at
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                line.who,
                email.unwrap_or_default(),
                line.role.to_string(),
                line.entry.action.clone(),
                action_words(&line.entry.action).to_string(),
                line.entry.object_type.clone(),
                line.entry.object_id.clone(),
                line.what,
                line.partner.unwrap_or_default(),
                line.catalog.unwrap_or_default(),
                line.entry.reason.clone().unwrap_or_default(),
                json(&line.entry.before),
                json(&line.entry.after),
            ]
        })
        .collect();
    Ok((cells, last))
}

/// A page of entries with names put on them.
pub fn described_page(
    conn: &mut PgConnection,
    rows: crate::models::Paginated<crate::models::audit::AuditRow>,
) -> Result<crate::models::Paginated<AuditLine>> {
    rows.try_with_items(|items| describe(conn, items))
}

/// Every action the services record, grouped as the filters list them.
pub const ACTIONS: &[&str] = &[
    "catalog.create",
    "catalog.update",
    "catalog.archive",
    "catalog.restore",
    "catalog.patterns_replace",
    "catalog.course_add",
    "catalog.course_remove",
    "catalog.course_move",
    "catalog.self_enroll",
    "invitation.create",
    "invitation.resend",
    "invitation.remind",
    "invitation.accept",
    "invitation.decline",
    "invitation.revoke",
    "learner.remove",
    "learner.enrol",
    "licence.grant",
    "licence.deactivate",
    "enrollment.create",
    "enrollment.upgrade",
    "organisation.create",
    "organisation.update",
    "partner.create",
    "partner.update",
    "partner.manager_assign",
    "partner.manager_unassign",
    "course.create",
    "course.update",
    "course.import",
    "shared_pool.add",
    "shared_pool.remove",
    "user.make_staff",
    "user.remove_staff",
    "user.activate",
    "user.deactivate",
    "user.email_change",
    "user.email_verify",
    "user.password_change",
    "user.password_reset",
    "user.sign_out_everywhere",
    "partner.manager_claim",
    "user.identity_link",
    "user.identity_unlink",
    "pre_enrollment.create",
    "pre_enrollment.fulfil",
    "pre_enrollment.cancel",
    "bulk.submit",
    "bulk.approve",
    "bulk.reject",
    "bulk.cancel",
    "bulk.batch",
    "user.rename",
    "email.retry",
    "api_token.create",
    "api_token.revoke",
];

/// What an action means, in words; unknown actions show their code.
pub fn action_words(action: &str) -> &str {
    match action {
        "catalog.create" => "created the catalog",
        "catalog.update" => "changed the catalog's settings",
        "catalog.archive" => "archived the catalog",
        "catalog.restore" => "took the catalog out of the archive",
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
        "licence.deactivate" => "released a paid seat",
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
        "learner.enrol" => "enrolled someone into a catalog",
        "pre_enrollment.cancel" => "cancelled a pre-enrolment",
        "bulk.submit" => "submitted a bulk invitation",
        "bulk.approve" => "approved a bulk invitation",
        "bulk.reject" => "rejected a bulk invitation",
        "bulk.cancel" => "cancelled a bulk invitation",
        "bulk.batch" => "ran part of a bulk invitation",
        "user.rename" => "changed a name",
        "email.retry" => "retried an email",
        "api_token.create" => "created an API token",
        "api_token.revoke" => "revoked an API token",
        other => other,
    }
}

/// Actions that concern a partner's own data, for the partner's audit filter.
pub fn partner_actions() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().copied().filter(|action| {
        !["organisation.", "course.", "shared_pool.", "user."]
            .iter()
            .any(|prefix| action.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::{ACTIONS, action_words};

    /// Every action the services and jobs record reads as words and can be filtered on.
    #[test]
    fn every_recorded_action_has_words_and_a_filter() {
        let pattern = regex::Regex::new(r#""([a-z_]+\.[a-z_]+)""#).expect("pattern");
        let mut seen = 0;
        for folder in ["src/services", "src/jobs"] {
            for entry in std::fs::read_dir(folder).expect("folder") {
                let path = entry.expect("entry").path();
                let source = std::fs::read_to_string(&path).expect("source");
                for found in pattern.captures_iter(&source) {
                    let action = &found[1];
                    let known_prefix = action.split('.').next().is_some_and(|prefix| {
                        ACTIONS.iter().any(|a| a.starts_with(&format!("{prefix}.")))
                    });
                    if !known_prefix {
                        continue;
                    }
                    seen += 1;
                    assert_ne!(action_words(action), action, "{action} in {path:?}");
                    assert!(
                        ACTIONS.contains(&action),
                        "{action} in {path:?} cannot be filtered on"
                    );
                }
            }
        }
        assert!(seen > 30, "found only {seen} actions");
    }
}
