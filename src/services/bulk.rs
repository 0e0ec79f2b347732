//! Rule 9: bulk invitations and pre-enrolments. A list (a CSV file or pasted addresses)
//! is read into a draft job with a preview of what each row would come to; once
//! submitted it runs at once, or, for a manager's list above the approval threshold,
//! after staff approve it. The worker runs approved jobs in batches, each one
//! transaction, resumable at the first unprocessed row.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde_json::json;
use uuid::Uuid;

use super::ServiceContext;
use super::audit::{self, Subject};
use super::pre_enrollment::{self, Person, PreEnrolOutcome};
use crate::domain::bulk_input::{CsvRows, InputError, InputRow, pasted_rows};
use crate::domain::{EmailAddress, EmailPatterns, ExternalKey, SecretToken};
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::mail::{self, OutgoingEmail, messages};
use crate::models::bulk::{self, BulkJob, BulkJobRow, BulkRow, NewBulkJob, NewBulkRow};
use crate::models::catalogs::{self, Catalog};
use crate::models::invitations::{self, BulkInvitation};
use crate::models::partners::{self, Partner};
use crate::models::users;
use crate::models::{PageRequest, Paginated, learners, outbox};
use crate::policies::Actor;
use crate::policies::access::{require_partner_access, require_staff};
use crate::policies::joining::user_limit_allows;

/// Rows handled in one transaction of the run.
pub const BATCH_ROWS: i64 = 500;
/// Rows shown per outcome on the preview.
const SAMPLES: i64 = 10;
/// Failed runs in a row before a job fails for good.
pub const MAX_RUN_FAILURES: i32 = 5;

/// What a bulk job does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Emails each address an invitation with its link (rule 5).
    Invite,
    /// Pre-enrols each person: no email; they join when their account appears (rule 8).
    PreEnroll,
}

impl Kind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "invite" => Some(Self::Invite),
            "pre_enroll" => Some(Self::PreEnroll),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::PreEnroll => "pre_enroll",
        }
    }
}

/// Every outcome a row can have, in the order pages list them, with words for people.
pub const OUTCOMES: [(&str, &str); 11] = [
    ("invited", "invited"),
    (
        "pre_enrolled",
        "pre-enrolled: joins when the account appears",
    ),
    ("enrolled", "joined at once (had an account)"),
    ("already_invited", "already invited"),
    ("already_pending", "already pre-enrolled"),
    ("already_learner", "already a learner"),
    ("limit_reached", "not invited: the catalog is full"),
    ("catalog_ended", "not invited: the catalog has ended"),
    ("invalid_email", "not an email address"),
    ("invalid_external_key", "not a valid external_user_key"),
    ("duplicate_in_file", "appears earlier in the list"),
];

/// A list's status in words.
pub fn status_words(status: &str) -> &'static str {
    match status {
        "draft" => "Preview: not submitted yet",
        "pending_approval" => "Waiting for staff approval",
        "approved" => "Approved: starting",
        "running" => "Running",
        "done" => "Done",
        "rejected" => "Rejected",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

/// Outcomes that did what the row asked for.
const SUCCEEDED: [&str; 3] = ["invited", "pre_enrolled", "enrolled"];
/// Outcomes that did nothing because the row could not be used.
const FAILED: [&str; 5] = [
    "invalid_email",
    "invalid_external_key",
    "duplicate_in_file",
    "limit_reached",
    "catalog_ended",
];

pub fn outcome_label(outcome: &str) -> &str {
    OUTCOMES
        .iter()
        .find(|(code, _)| *code == outcome)
        .map_or(outcome, |(_, label)| label)
}

/// Where the rows come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Csv(&'a [u8]),
    Pasted(&'a str),
}

impl<'a> Source<'a> {
    /// The one source a form gave: a chosen file or pasted addresses, not both (one of
    /// them would be silently ignored), and not neither.
    pub fn from_form(file: &'a [u8], pasted: &'a str) -> Result<Self> {
        match (file.is_empty(), pasted.trim().is_empty()) {
            (true, true) => Err(Error::invalid(
                "file",
                "choose a CSV file, or paste addresses below",
            )),
            (false, false) => Err(Error::invalid(
                "addresses",
                "send either a file or pasted addresses, not both. The pasted addresses are kept; to send the file instead, empty this box and choose the file again",
            )),
            (false, true) => Ok(Self::Csv(file)),
            (true, false) => Ok(Self::Pasted(pasted)),
        }
    }
}

/// A bulk list as submitted on the form.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub kind: &'a str,
    pub source: Source<'a>,
    pub source_name: &'a str,
    pub course_ids: &'a [String],
}

fn not_found(e: diesel::result::Error, what: &'static str) -> Error {
    match e {
        diesel::result::Error::NotFound => Error::NotFound(what),
        other => other.into(),
    }
}

/// A name as typed in a list: one line, bounded.
fn clean_name(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Decides what reading alone can about a row.
struct Reader<'a> {
    kind: Kind,
    patterns: &'a EmailPatterns,
    first_line: HashMap<String, usize>,
}

impl Reader<'_> {
    fn read(&mut self, job_id: i64, row: InputRow) -> NewBulkRow {
        let mut new = NewBulkRow {
            job_id,
            line_number: i32::try_from(row.line).unwrap_or(i32::MAX),
            email: row.email.chars().take(320).collect(),
            external_user_key: row.external_user_key.chars().take(255).collect(),
            full_name: clean_name(&row.full_name),
            planned: None,
            detail: None,
            outside_patterns: false,
        };
        let invalid = |new: &mut NewBulkRow, outcome: &str, detail: String| {
            new.planned = Some(outcome.to_string());
            new.detail = Some(detail);
        };
        let identity = if !row.email.is_empty() || self.kind == Kind::Invite {
            match EmailAddress::parse(&row.email) {
                Ok(email) => {
                    new.email = email.as_str().to_string();
                    new.outside_patterns =
                        !self.patterns.is_empty() && !self.patterns.matches(email.as_str());
                    email.as_str().to_string()
                }
                Err(e) => {
                    let detail = if row.email.is_empty() {
                        "the email cell is empty".to_string()
                    } else {
                        e.to_string()
                    };
                    invalid(&mut new, "invalid_email", detail);
                    return new;
                }
            }
        } else {
            match ExternalKey::parse(&row.external_user_key) {
                Ok(key) => {
                    new.external_user_key = key.to_string();
                    format!("key:{key}")
                }
                Err(e) => {
                    let detail = if row.external_user_key.is_empty() {
                        "neither an email address nor an external_user_key".to_string()
                    } else {
                        e.to_string()
                    };
                    let outcome = if row.external_user_key.is_empty() {
                        "invalid_email"
                    } else {
                        "invalid_external_key"
                    };
                    invalid(&mut new, outcome, detail);
                    return new;
                }
            }
        };
        if let Some(first) = self.first_line.get(&identity) {
            invalid(
                &mut new,
                "duplicate_in_file",
                format!("also on line {first}"),
            );
        } else {
            self.first_line.insert(identity, row.line);
        }
        new
    }
}

fn counts_json(counts: &[(String, i64)]) -> serde_json::Value {
    serde_json::Value::Object(
        counts
            .iter()
            .map(|(outcome, n)| (outcome.clone(), json!(n)))
            .collect(),
    )
}

/// Reads a list into a draft job and previews each row; nothing else changes until it
/// is submitted. A file that cannot be read is refused whole, naming the problem and line.
pub fn upload(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    upload: &Upload<'_>,
) -> Result<BulkJob> {
    let catalog = catalogs::find(conn, catalog_id).map_err(|e| not_found(e, "catalog"))?;
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let kind = Kind::parse(upload.kind)
        .ok_or_else(|| Error::invalid("kind", "choose invitations or pre-enrolments"))?;
    let course_ids = pre_enrollment::catalog_course_ids(conn, catalog.id, upload.course_ids)?;
    if catalog.window().has_ended_at(Utc::now()) {
        return Err(Error::CatalogUnavailable(format!(
            "{} has ended; nobody can be invited any more",
            catalog.name
        )));
    }
    let patterns = EmailPatterns::from_stored(
        catalogs::patterns_of(conn, catalog.id)?
            .iter()
            .map(String::as_str),
    );
    let source_name: String = upload.source_name.chars().take(200).collect();
    let job = bulk::insert_job(
        conn,
        &NewBulkJob {
            catalog_id: catalog.id,
            submitted_by: actor.user_id,
            kind: kind.as_str(),
            status: bulk::DRAFT,
            source_name: &source_name,
            course_ids: &course_ids,
        },
    )?;
    let mut reader = Reader {
        kind,
        patterns: &patterns,
        first_line: HashMap::new(),
    };
    let field = match upload.source {
        Source::Csv(_) => "file",
        Source::Pasted(_) => "addresses",
    };
    let refuse = |e: InputError| Error::invalid(field, e.to_string());
    let rows: Box<dyn Iterator<Item = std::result::Result<InputRow, InputError>>> =
        match upload.source {
            Source::Csv(bytes) => Box::new(CsvRows::new(bytes).map_err(refuse)?),
            Source::Pasted(text) => Box::new(pasted_rows(text)),
        };
    let mut buffer = Vec::with_capacity(1_000);
    let mut total = 0i32;
    for row in rows {
        buffer.push(reader.read(job.id, row.map_err(refuse)?));
        total += 1;
        if buffer.len() == 1_000 {
            bulk::insert_rows(conn, &buffer)?;
            buffer.clear();
        }
    }
    bulk::insert_rows(conn, &buffer)?;
    if total == 0 {
        return Err(refuse(InputError::Empty));
    }
    bulk::plan_already_learners(conn, job.id, catalog.id)?;
    match kind {
        Kind::Invite => {
            bulk::plan_already_invited(conn, job.id, catalog.id)?;
            bulk::plan_rest(conn, job.id, "invited")?;
        }
        Kind::PreEnroll => {
            bulk::plan_already_pending(conn, job.id, catalog.id)?;
            bulk::plan_existing_accounts(conn, job.id, "enrolled")?;
            bulk::plan_rest(conn, job.id, "pre_enrolled")?;
        }
    }
    let counts = bulk::counts(conn, job.id, false)?;
    let outside = bulk::count_outside_patterns(conn, job.id)?;
    Ok(bulk::set_preview(
        conn,
        job.id,
        total,
        &counts_json(&counts),
        i32::try_from(outside).unwrap_or(i32::MAX),
    )?)
}

/// A job with what its pages show about it.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: BulkJob,
    pub catalog: Catalog,
    pub partner: Partner,
    pub submitter: Option<String>,
    pub decided_by: Option<String>,
    /// The courses the list gives, each with whether it takes a paid seat.
    pub courses: Vec<(String, bool)>,
}

/// A job in scope: staff see every job, a manager the jobs of their partner's catalogs;
/// anyone else finds nothing.
pub fn find(conn: &mut PgConnection, actor: &Actor, job_id: i64) -> Result<JobView> {
    let job = bulk::find(conn, job_id).map_err(|e| not_found(e, "bulk job"))?;
    let catalog = catalogs::find(conn, job.catalog_id)?;
    require_partner_access(actor, catalog.partner_id, "bulk job")?;
    // A draft is its submitter's alone, until submitted.
    if job.status == bulk::DRAFT && actor.user_id != job.submitted_by && !actor.is_staff {
        return Err(Error::NotFound("bulk job"));
    }
    let partner = partners::find(conn, catalog.partner_id)?;
    let email_of = |conn: &mut PgConnection, id: Option<i64>| -> Result<Option<String>> {
        Ok(match id {
            Some(id) => Some(users::find(conn, id)?.email),
            None => None,
        })
    };
    let submitter = email_of(conn, job.submitted_by)?;
    let decided_by = email_of(conn, job.decided_by)?;
    let courses = crate::models::courses::find_many(conn, &job.course_ids)?
        .into_iter()
        .map(|c| {
            let paid = crate::domain::course::is_paid(&c.modes);
            (c.title, paid)
        })
        .collect();
    Ok(JobView {
        job,
        catalog,
        partner,
        submitter,
        decided_by,
        courses,
    })
}

/// The count of one outcome, with the first rows that have it.
#[derive(Debug, Clone)]
pub struct OutcomeGroup {
    pub outcome: String,
    pub label: String,
    pub count: i64,
    pub samples: Vec<BulkRow>,
}

/// What the preview shows before anything happens.
#[derive(Debug, Clone)]
pub struct Preview {
    pub view: JobView,
    pub groups: Vec<OutcomeGroup>,
    pub outside_patterns: Vec<BulkRow>,
    /// Places the catalog has left and how many the list would fill, when it has a limit.
    pub places: Option<(i64, i64)>,
    pub needs_approval: bool,
}

/// Whether this person's job of this many rows waits for staff approval.
pub fn needs_approval(ctx: &ServiceContext, actor: &Actor, total_rows: i32) -> bool {
    !actor.is_staff
        && usize::try_from(total_rows).unwrap_or(usize::MAX) > ctx.bulk_approval_threshold
}

pub fn preview(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    job_id: i64,
) -> Result<Preview> {
    let view = find(conn, actor, job_id)?;
    let counts: BTreeMap<String, i64> = bulk::counts(conn, job_id, false)?.into_iter().collect();
    let mut groups = Vec::new();
    for (outcome, label) in OUTCOMES {
        if let Some(count) = counts.get(outcome) {
            // What is still to happen, in the preview's words.
            let label = match outcome {
                "invited" => "to be invited",
                "pre_enrolled" => "to be pre-enrolled: joins when the account appears",
                "enrolled" => "has an account: joins at once",
                _ => label,
            };
            groups.push(OutcomeGroup {
                outcome: outcome.to_string(),
                label: label.to_string(),
                count: *count,
                samples: bulk::first_planned(conn, job_id, outcome, SAMPLES)?,
            });
        }
    }
    let outside_patterns = bulk::first_outside_patterns(conn, job_id, SAMPLES)?;
    let wanted = ["invited", "pre_enrolled", "enrolled"]
        .iter()
        .filter_map(|o| counts.get(*o))
        .sum::<i64>();
    let places = (view.catalog.user_limit > 0).then(|| {
        learners::count_active(conn, view.catalog.id)
            .map(|active| ((i64::from(view.catalog.user_limit) - active).max(0), wanted))
    });
    let places = places.transpose()?;
    let needs_approval = needs_approval(ctx, actor, view.job.total_rows);
    Ok(Preview {
        view,
        groups,
        outside_patterns,
        places,
        needs_approval,
    })
}

/// Submits a draft: it runs at once, or waits for staff approval when a manager's list
/// has more rows than the threshold (or would pass the partner's hourly email cap).
pub fn submit(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    job_id: i64,
) -> Result<BulkJob> {
    let view = find(conn, actor, job_id)?;
    let job = bulk::lock(conn, job_id)?;
    if job.status != bulk::DRAFT || actor.user_id != job.submitted_by {
        return Err(Error::InvalidTransition(
            "This list was already submitted or discarded.".into(),
        ));
    }
    let over_cap = !actor.is_staff
        && job.kind == Kind::Invite.as_str()
        && ctx.invitation_emails_per_hour > 0
        && {
            let since = Utc::now() - chrono::Duration::hours(1);
            let sent = outbox::invitation_emails_since(conn, view.catalog.partner_id, since)?;
            let planned = job
                .planned_counts
                .get("invited")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            sent + planned > ctx.invitation_emails_per_hour
        };
    let status = if needs_approval(ctx, actor, job.total_rows) || over_cap {
        bulk::PENDING_APPROVAL
    } else {
        bulk::APPROVED
    };
    let submitted = bulk::set_submitted(conn, job.id, status)?;
    audit::record(
        conn,
        actor,
        "bulk.submit",
        Subject::new("bulk_job", job.id).catalog(view.catalog.partner_id, view.catalog.id),
        None,
        Some(json!({
            "kind": job.kind,
            "rows": job.total_rows,
            "planned": job.planned_counts,
            "status": status,
        })),
        None,
    )?;
    Ok(submitted)
}

/// Throws a draft away.
pub fn discard(conn: &mut PgConnection, actor: &Actor, job_id: i64) -> Result<()> {
    find(conn, actor, job_id)?;
    let job = bulk::lock(conn, job_id)?;
    if job.status != bulk::DRAFT {
        return Err(Error::InvalidTransition(
            "Only a list that was not submitted can be discarded; cancel it instead.".into(),
        ));
    }
    bulk::delete(conn, job.id)?;
    Ok(())
}

fn decision_email(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    view: &JobView,
    approved: bool,
    reason: Option<&str>,
) -> Result<()> {
    let Some(submitter) = view.job.submitted_by else {
        return Ok(());
    };
    let submitter = users::find(conn, submitter)?;
    let email = messages::bulk_decision(
        &ctx.base_url,
        &submitter,
        &view.partner,
        &view.catalog,
        &view.job,
        approved,
        reason,
    )?;
    mail::queue(conn, &ctx.sealer, email)?;
    Ok(())
}

/// Staff approve a job waiting for approval: it runs.
pub fn approve(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    job_id: i64,
) -> Result<BulkJob> {
    require_staff(actor)?;
    let view = find(conn, actor, job_id)?;
    let job = bulk::lock(conn, job_id)?;
    if job.status != bulk::PENDING_APPROVAL {
        return Err(Error::InvalidTransition(format!(
            "This list's status is \"{}\"; only a list waiting for approval can be approved.",
            status_words(&job.status)
        )));
    }
    let approved = bulk::set_decision(conn, job.id, bulk::APPROVED, actor.require_user()?, None)?;
    audit::record(
        conn,
        actor,
        "bulk.approve",
        Subject::new("bulk_job", job.id).catalog(view.catalog.partner_id, view.catalog.id),
        Some(json!({ "status": job.status })),
        Some(json!({ "status": approved.status })),
        None,
    )?;
    decision_email(conn, ctx, &view, true, None)?;
    Ok(approved)
}

/// Staff reject a job waiting for approval, saying why.
pub fn reject(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    job_id: i64,
    reason: &str,
) -> Result<BulkJob> {
    require_staff(actor)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid(
            "reason",
            "is required: tell the submitter why, so they can correct the list",
        ));
    }
    let view = find(conn, actor, job_id)?;
    let job = bulk::lock(conn, job_id)?;
    if job.status != bulk::PENDING_APPROVAL {
        return Err(Error::InvalidTransition(format!(
            "This list's status is \"{}\"; only a list waiting for approval can be rejected.",
            status_words(&job.status)
        )));
    }
    let rejected = bulk::set_decision(
        conn,
        job.id,
        bulk::REJECTED,
        actor.require_user()?,
        Some(reason),
    )?;
    audit::record(
        conn,
        actor,
        "bulk.reject",
        Subject::new("bulk_job", job.id).catalog(view.catalog.partner_id, view.catalog.id),
        Some(json!({ "status": job.status })),
        Some(json!({ "status": rejected.status })),
        Some(reason),
    )?;
    decision_email(conn, ctx, &view, false, Some(reason))?;
    Ok(rejected)
}

/// The submitter or staff cancel a job that has not finished; what was done stays done.
pub fn cancel(
    conn: &mut PgConnection,
    actor: &Actor,
    job_id: i64,
    reason: Option<&str>,
) -> Result<BulkJob> {
    let view = find(conn, actor, job_id)?;
    if !actor.is_staff && actor.user_id != view.job.submitted_by {
        return Err(Error::Forbidden(
            "Only the person who submitted this list, or staff, can cancel it.".into(),
        ));
    }
    let job = bulk::lock(conn, job_id)?;
    if !job.is_open() {
        return Err(Error::InvalidTransition(format!(
            "This list's status is \"{}\"; it can no longer be cancelled.",
            status_words(&job.status)
        )));
    }
    let cancelled = bulk::set_cancelled(conn, job.id, actor.require_user()?)?;
    audit::record(
        conn,
        actor,
        "bulk.cancel",
        Subject::new("bulk_job", job.id).catalog(view.catalog.partner_id, view.catalog.id),
        Some(json!({ "status": job.status, "processed_rows": job.processed_rows })),
        Some(json!({ "status": cancelled.status })),
        reason,
    )?;
    Ok(cancelled)
}

/// The submitted jobs of a catalog, newest first.
pub fn list_for_catalog(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    page: PageRequest,
) -> Result<Paginated<BulkJobRow>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(bulk::search(conn, Some(catalog.id), None, None, page)?)
}

/// Previews nobody submitted are removed this long after they were read.
pub const KEEP_DRAFTS_HOURS: i64 = 24;

/// This person's previews of a catalog not submitted yet (each kept for a day).
pub fn my_drafts(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
) -> Result<Vec<BulkJob>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    match actor.user_id {
        Some(user_id) => Ok(bulk::drafts_of(conn, catalog.id, user_id)?),
        None => Ok(Vec::new()),
    }
}

/// The staff queue: every submitted job, filtered by status and partner.
pub fn queue(
    conn: &mut PgConnection,
    actor: &Actor,
    status: Option<&str>,
    partner_id: Option<i64>,
    page: PageRequest,
) -> Result<Paginated<BulkJobRow>> {
    require_staff(actor)?;
    Ok(bulk::search(conn, None, status, partner_id, page)?)
}

/// How many jobs wait for staff approval.
pub fn waiting_for_approval(conn: &mut PgConnection, actor: &Actor) -> Result<i64> {
    require_staff(actor)?;
    Ok(bulk::count_pending_approval(conn)?)
}

/// The rows file after `after_line`: as read, planned, and what came of each.
pub fn result_rows(
    conn: &mut PgConnection,
    job_id: i64,
    after_line: i64,
) -> Result<(Vec<Vec<String>>, Option<i64>)> {
    let rows = bulk::rows_after(
        conn,
        job_id,
        i32::try_from(after_line).unwrap_or(i32::MAX),
        1_000,
    )?;
    let last = rows.last().map(|r| i64::from(r.line_number));
    let cells = rows
        .into_iter()
        .map(|r| {
            vec![
                r.line_number.to_string(),
                r.email.clone(),
                r.external_user_key.clone(),
                r.full_name.clone(),
                r.planned.clone().unwrap_or_default(),
                r.outcome.clone().unwrap_or_default(),
                r.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Ok((cells, last))
}

/// Each row of a list as read, what the preview planned for it, and (once handled)
/// what came of it.
pub const RESULT_HEADER: [&str; 7] = [
    "line",
    "email",
    "external_user_key",
    "full_name",
    "planned",
    "outcome",
    "detail",
];

/// What one batch of a run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Rows were handled; more may remain.
    Handled(usize),
    /// No rows remained: the job is done.
    Finished,
    /// The job is no longer this runner's (cancelled, or its lease passed to another).
    NotOurs,
}

/// Runs the next batch of a job this runner holds, in the caller's transaction: the rows'
/// outcomes, the invitations or pre-enrolments, their emails and events, the counters and
/// an audit entry commit together.
pub fn run_batch(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    job_id: i64,
    token: Uuid,
    lease_until: DateTime<Utc>,
) -> Result<Batch> {
    let Some(job) = bulk::lock_if_held(conn, job_id, token)? else {
        return Ok(Batch::NotOurs);
    };
    // The catalog first, as everywhere (see `catalogs::lock`): limits are checked under it.
    let catalog = catalogs::lock(conn, job.catalog_id)?;
    let rows = bulk::next_rows(conn, job.id, BATCH_ROWS)?;
    if rows.is_empty() {
        let done = bulk::set_finished(conn, job.id, bulk::DONE)?;
        tracing::info!(job_id = done.id, rows = done.total_rows, "bulk job done");
        return Ok(Batch::Finished);
    }
    let kind = Kind::parse(&job.kind).unwrap_or(Kind::Invite);
    let mut outcomes: HashMap<i64, (&'static str, Option<String>)> = HashMap::new();
    let mut usable = Vec::new();
    for row in &rows {
        match row.planned.as_deref() {
            Some(decided @ ("invalid_email" | "invalid_external_key" | "duplicate_in_file")) => {
                let code = FAILED
                    .iter()
                    .find(|f| **f == decided)
                    .copied()
                    .unwrap_or("invalid_email");
                outcomes.insert(row.id, (code, row.detail.clone()));
            }
            _ => usable.push(row),
        }
    }
    let now = Utc::now();
    if catalog.window().has_ended_at(now) {
        for row in usable.drain(..) {
            outcomes.insert(row.id, ("catalog_ended", None));
        }
    }
    let partner = partners::find(conn, catalog.partner_id)?;
    let done = match kind {
        Kind::Invite => invite_rows(conn, ctx, &job, &catalog, &partner, &usable, now)?,
        Kind::PreEnroll => pre_enroll_rows(conn, ctx, &job, &catalog, &usable)?,
    };
    outcomes.extend(done);

    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let codes: Vec<&str> = rows
        .iter()
        .map(|r| {
            outcomes
                .get(&r.id)
                .map_or("invalid_email", |(code, _)| *code)
        })
        .collect();
    let details: Vec<Option<String>> = rows
        .iter()
        .map(|r| outcomes.get(&r.id).and_then(|(_, detail)| detail.clone()))
        .collect();
    bulk::set_outcomes(conn, &ids, &codes, &details)?;
    let mut totals: BTreeMap<String, i64> = match &job.outcome_counts {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut batch_counts: BTreeMap<&str, i64> = BTreeMap::new();
    for code in &codes {
        *totals.entry((*code).to_string()).or_default() += 1;
        *batch_counts.entry(code).or_default() += 1;
    }
    let succeeded = codes.iter().filter(|c| SUCCEEDED.contains(c)).count();
    let failed = codes.iter().filter(|c| FAILED.contains(c)).count();
    let as_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    bulk::record_batch(
        conn,
        job.id,
        as_i32(rows.len()),
        as_i32(succeeded),
        as_i32(failed),
        &counts_json(&totals.into_iter().collect::<Vec<_>>()),
        lease_until,
    )?;
    let first = rows.first().map_or(0, |r| r.line_number);
    let last = rows.last().map_or(0, |r| r.line_number);
    let actor = submitter_actor(conn, &job)?;
    audit::record(
        conn,
        &actor,
        "bulk.batch",
        Subject::new("bulk_job", job.id).catalog(catalog.partner_id, catalog.id),
        None,
        Some(json!({ "lines": [first, last], "outcomes": batch_counts })),
        None,
    )?;
    Ok(Batch::Handled(rows.len()))
}

/// The job acts for whoever submitted it (the system when that account is gone).
fn submitter_actor(conn: &mut PgConnection, job: &BulkJob) -> Result<Actor> {
    Ok(match job.submitted_by {
        Some(id) => {
            let user = users::find(conn, id)?;
            let partner = partners::managed_by(conn, id)?;
            Actor::for_user(&user, partner.map(|p| p.id))
        }
        None => Actor::system(),
    })
}

type Outcomes = Vec<(i64, (&'static str, Option<String>))>;

/// Invites a batch's usable rows: set-based checks, one insert for the invitations, one
/// for their emails, one for their events.
fn invite_rows(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    job: &BulkJob,
    catalog: &Catalog,
    partner: &Partner,
    rows: &[&BulkRow],
    now: DateTime<Utc>,
) -> Result<Outcomes> {
    let mut outcomes = Vec::with_capacity(rows.len());
    if rows.is_empty() {
        return Ok(outcomes);
    }
    let emails: Vec<String> = rows.iter().map(|r| r.email.clone()).collect();
    let learners: HashSet<String> = learners::active_emails_among(conn, catalog.id, &emails)?
        .into_iter()
        .collect();
    let open: HashMap<String, invitations::Invitation> =
        invitations::open_among(conn, catalog.id, &emails)?
            .into_iter()
            .map(|i| (i.email.clone(), i))
            .collect();
    let accounts: HashMap<String, i64> = users::verified_by_emails(conn, &emails)?
        .into_iter()
        .map(|u| (u.email, u.id))
        .collect();
    let full = catalog.user_limit > 0
        && !user_limit_allows(
            catalog.user_limit,
            learners::count_active(conn, catalog.id)?,
            false,
        );
    let expires_at = now + ctx.invitation_ttl;
    let mut fresh = Vec::new();
    let mut tokens: HashMap<String, SecretToken> = HashMap::new();
    let mut by_email: HashMap<String, i64> = HashMap::new();
    for row in rows {
        if learners.contains(&row.email) {
            outcomes.push((row.id, ("already_learner", None)));
        } else if open.get(&row.email).is_some_and(|i| i.expires_at > now) {
            outcomes.push((row.id, ("already_invited", None)));
        } else if full {
            outcomes.push((
                row.id,
                (
                    "limit_reached",
                    Some(format!(
                        "all {} places of the catalog are taken",
                        catalog.user_limit
                    )),
                ),
            ));
        } else if let Some(expired) = open.get(&row.email) {
            // An expired invitation is sent again with a new link.
            let token = SecretToken::generate();
            let renewed = invitations::renew(conn, expired.id, &token.hash(), expires_at, now)?;
            tokens.insert(renewed.email.clone(), token);
            by_email.insert(renewed.email.clone(), row.id);
            fresh.push(renewed);
        } else {
            let token = SecretToken::generate();
            by_email.insert(row.email.clone(), row.id);
            tokens.insert(row.email.clone(), token);
        }
    }
    let renewed: HashSet<String> = fresh.iter().map(|i| i.email.clone()).collect();
    let names: HashMap<&str, &str> = rows
        .iter()
        .map(|r| (r.email.as_str(), r.full_name.as_str()))
        .collect();
    let new_rows: Vec<BulkInvitation> = by_email
        .keys()
        .filter(|email| !renewed.contains(*email))
        .map(|email| BulkInvitation {
            email: email.clone(),
            full_name: names
                .get(email.as_str())
                .map(|n| n.to_string())
                .unwrap_or_default(),
            user_id: accounts.get(email).copied(),
            token_hash: tokens[email].hash().to_vec(),
        })
        .collect();
    let inserted = invitations::insert_bulk(
        conn,
        catalog.id,
        job.submitted_by,
        (now, expires_at),
        &job.course_ids,
        &new_rows,
    )?;
    let renewed_count = fresh.len();
    fresh.extend(inserted);
    let template =
        messages::invitation_to_anyone(&ctx.base_url, partner, catalog, expires_at, false)?;
    let mut emails_out: Vec<OutgoingEmail> = Vec::with_capacity(fresh.len());
    let mut sent_events = Vec::with_capacity(fresh.len());
    let mut invited: HashSet<String> = HashSet::new();
    for (index, invitation) in fresh.iter().enumerate() {
        let mut email = template.clone();
        email.to = invitation.email.clone();
        email.invitation_id = Some(invitation.id);
        email.secret = tokens
            .get(&invitation.email)
            .map(|t| t.as_str().to_string());
        emails_out.push(email);
        let mut event = Event::new(events::INVITATION_SENT, catalog.partner_id, catalog.id)
            .invitation(invitation.id, &invitation.channel)
            .user(invitation.user_id)
            .data(json!({ "bulk_job_id": job.id }));
        if index < renewed_count {
            event = event.data(json!({ "bulk_job_id": job.id, "resend": true }));
        }
        sent_events.push(event);
        invited.insert(invitation.email.clone());
    }
    mail::queue_many(conn, &ctx.sealer, emails_out)?;
    Event::record_all(conn, sent_events)?;
    for (email, row_id) in by_email {
        if invited.contains(&email) {
            outcomes.push((row_id, ("invited", None)));
        } else {
            // Invited by someone else between the preview and now.
            outcomes.push((row_id, ("already_invited", None)));
        }
    }
    Ok(outcomes)
}

/// Pre-enrols a batch's usable rows: people who already have an account join at once;
/// the others get pre-enrolments, made in one statement.
fn pre_enroll_rows(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    job: &BulkJob,
    catalog: &Catalog,
    rows: &[&BulkRow],
) -> Result<Outcomes> {
    let mut outcomes = Vec::with_capacity(rows.len());
    if rows.is_empty() {
        return Ok(outcomes);
    }
    let people: Vec<(&BulkRow, Person)> = rows
        .iter()
        .filter_map(|row| {
            let person = if row.email.is_empty() {
                ExternalKey::parse(&row.external_user_key)
                    .ok()
                    .map(Person::External)
            } else {
                EmailAddress::parse(&row.email).ok().map(Person::Email)
            };
            person.map(|p| (*row, p))
        })
        .collect();
    let made = pre_enrollment::pre_enroll_many(
        conn,
        ctx,
        catalog,
        &people
            .iter()
            .map(|(row, person)| (person.clone(), row.full_name.clone()))
            .collect::<Vec<_>>(),
        &job.course_ids,
        job.submitted_by,
        Some(job.id),
    )?;
    for ((row, _), outcome) in people.iter().zip(made) {
        outcomes.push((
            row.id,
            match outcome {
                PreEnrolOutcome::AlreadyLearner => ("already_learner", None),
                PreEnrolOutcome::AlreadyPending => ("already_pending", None),
                PreEnrolOutcome::Enrolled => ("enrolled", None),
                PreEnrolOutcome::Waiting(reason) => {
                    ("pre_enrolled", Some(format!("waiting: {reason}")))
                }
                PreEnrolOutcome::Pending => ("pre_enrolled", None),
            },
        ));
    }
    Ok(outcomes)
}

/// A job's final outcome counts, in the order pages list them.
pub fn outcome_groups(job: &BulkJob) -> Vec<(String, String, i64)> {
    let counts = match &job.outcome_counts {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    OUTCOMES
        .iter()
        .filter_map(|(code, label)| {
            counts
                .get(*code)
                .and_then(serde_json::Value::as_i64)
                .map(|n| ((*code).to_string(), (*label).to_string(), n))
        })
        .collect()
}
