//! Rule 8: pre-enrolment of people who have no account yet, by email address or by an
//! external identity (`provider:remote_id`). When the account appears — a verified
//! address, or an identity linked to it — the person joins the catalog (an invitation
//! with channel `pre_enrollment`, accepted at once, rule 4) and gets its courses (rule 7),
//! in the same transaction. One that cannot be fulfilled yet stays open with its reason,
//! and the worker tries again.

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};

use super::ServiceContext;
use super::audit::{self, Subject};
use super::enrollments;
use super::invitations::join_directly;
use crate::domain::invitation_status::Channel;
use crate::domain::{EmailAddress, ExternalKey};
use crate::error::{Error, Result};
use crate::models::catalogs::{self, Catalog};
use crate::models::pending_enrollments::{
    self as pending, NewPending, PendingEnrollment, PendingStatus,
};
use crate::models::users::{self, User};
use crate::models::{PageRequest, Paginated, learners};
use crate::policies::Actor;
use crate::policies::access::require_partner_access;

/// Who is pre-enrolled: an email address or an external identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    Email(EmailAddress),
    External(ExternalKey),
}

impl Person {
    /// An address when it has an `@`, else `provider:remote_id`.
    pub fn parse(raw: &str) -> std::result::Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("is required: an email address or provider:remote_id".into());
        }
        if text.contains('@') {
            EmailAddress::parse(text)
                .map(Person::Email)
                .map_err(|e| e.to_string())
        } else if !text.contains(':') {
            Err(format!(
                "\"{text}\" is neither an email address (such as ada@example.org) nor an outside identity (such as university:12345)"
            ))
        } else {
            ExternalKey::parse(text)
                .map(Person::External)
                .map_err(|e| e.to_string())
        }
    }

    pub fn new_pending(&self, full_name: &str) -> NewPending {
        match self {
            Person::Email(email) => NewPending {
                email: Some(email.as_str().to_string()),
                external: None,
                full_name: full_name.to_string(),
            },
            Person::External(key) => NewPending {
                email: None,
                external: Some((key.provider().to_string(), key.remote_id().to_string())),
                full_name: full_name.to_string(),
            },
        }
    }

    /// The account this person already has: a verified address, or a linked identity.
    pub fn account(&self, conn: &mut PgConnection) -> Result<Option<User>> {
        match self {
            Person::Email(email) => Ok(users::find_by_email(conn, email.as_str())?
                .filter(|u| u.is_verified() && u.is_active)),
            Person::External(key) => {
                match users::find_identity(conn, key.provider(), key.remote_id())? {
                    Some(identity) => {
                        Ok(Some(users::find(conn, identity.user_id)?).filter(|u| u.is_active))
                    }
                    None => Ok(None),
                }
            }
        }
    }
}

impl std::fmt::Display for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Person::Email(email) => write!(f, "{email}"),
            Person::External(key) => write!(f, "{key}"),
        }
    }
}

/// Course ids typed on a form, checked to be courses of the catalog.
pub fn catalog_course_ids(
    conn: &mut PgConnection,
    catalog_id: i64,
    raw: &[String],
) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for value in raw.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let id = value
            .parse::<i64>()
            .map_err(|_| Error::invalid("courses", "choose courses of this catalog"))?;
        if catalogs::catalog_course(conn, catalog_id, id)?.is_none() {
            return Err(Error::invalid(
                "courses",
                "only courses of this catalog can be given",
            ));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// What pre-enrolling one person came to.
#[derive(Debug)]
pub enum PreEnrolled {
    /// Waiting for the person's account.
    Pending(PendingEnrollment),
    /// The account existed: the person joined at once.
    Joined(PendingEnrollment),
    /// The account existed, but the person cannot join yet; the worker retries.
    Waiting(PendingEnrollment, String),
}

/// Pre-enrols one person (staff, or a manager of the catalog's partner).
pub fn create(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    catalog_id: i64,
    raw_person: &str,
    raw_course_ids: &[String],
) -> Result<PreEnrolled> {
    let catalog = catalogs::find(conn, catalog_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("catalog"),
        other => other.into(),
    })?;
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let person = Person::parse(raw_person).map_err(|e| Error::invalid("person", e))?;
    let course_ids = catalog_course_ids(conn, catalog.id, raw_course_ids)?;
    if catalog.window().has_ended_at(Utc::now()) {
        return Err(Error::CatalogUnavailable(format!(
            "{} has ended; nobody can be pre-enrolled any more",
            catalog.name
        )));
    }
    let account = person.account(conn)?;
    if let Some(user) = &account {
        if learners::find(conn, catalog.id, user.id)?.is_some_and(|l| l.is_active) {
            return Err(Error::Conflict(format!(
                "{person} is already a learner of this catalog."
            )));
        }
    }
    let created = pending::insert_many(
        conn,
        catalog.id,
        &[person.new_pending("")],
        &course_ids,
        actor.user_id,
        expiry(ctx),
        None,
    )?;
    let Some(created) = created.into_iter().next() else {
        return Err(Error::Conflict(format!(
            "{person} is already pre-enrolled in this catalog."
        )));
    };
    audit::record(
        conn,
        actor,
        "pre_enrollment.create",
        Subject::new("pending_enrollment", created.id).catalog(catalog.partner_id, catalog.id),
        None,
        Some(serde_json::json!({ "person": person.to_string(), "course_ids": course_ids })),
        None,
    )?;
    match account {
        None => Ok(PreEnrolled::Pending(created)),
        Some(user) => match fulfil(conn, &created, &user, Wait::Yes)? {
            Fulfilment::Done => Ok(PreEnrolled::Joined(pending::find(conn, created.id)?)),
            Fulfilment::Waiting(reason) => Ok(PreEnrolled::Waiting(
                pending::find(conn, created.id)?,
                reason,
            )),
        },
    }
}

/// When a pre-enrolment stops waiting for its account.
pub fn expiry(ctx: &ServiceContext) -> DateTime<Utc> {
    Utc::now() + ctx.pending_enrollment_ttl
}

/// Whether fulfilment may wait for the catalog's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Called where the catalog is the first thing locked.
    Yes,
    /// Called where other rows are already locked (an account being confirmed): waiting
    /// could deadlock, so a busy catalog is left to the retry job.
    No,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fulfilment {
    Done,
    Waiting(String),
}

fn lock_catalog(conn: &mut PgConnection, catalog_id: i64, wait: Wait) -> Result<Option<Catalog>> {
    let locked = match wait {
        Wait::Yes => catalogs::lock(conn, catalog_id),
        Wait::No => catalogs::lock_nowait(conn, catalog_id),
    };
    match locked {
        Ok(catalog) => Ok(Some(catalog)),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().starts_with("could not obtain lock") =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Fulfils one open pre-enrolment for `user`: joins and gives the courses, or, when the
/// person cannot join yet, records why (in a savepoint: nothing half-done stays).
fn fulfil(
    conn: &mut PgConnection,
    pending_enrollment: &PendingEnrollment,
    user: &User,
    wait: Wait,
) -> Result<Fulfilment> {
    let system = Actor::system();
    let attempt = conn.transaction(|conn| -> Result<Fulfilment> {
        let Some(catalog) = lock_catalog(conn, pending_enrollment.catalog_id, wait)? else {
            return Ok(Fulfilment::Waiting(
                "the catalog was busy; tried again shortly".into(),
            ));
        };
        let already = learners::find(conn, catalog.id, user.id)?.is_some_and(|l| l.is_active);
        if !already {
            let (learner, invitation_id) =
                join_directly(conn, &system, &catalog, user, Channel::PreEnrollment)?;
            audit::record(
                conn,
                &system,
                "pre_enrollment.fulfil",
                Subject::new("pending_enrollment", pending_enrollment.id)
                    .catalog(catalog.partner_id, catalog.id),
                None,
                Some(serde_json::json!({
                    "user_id": user.id,
                    "learner_id": learner.id,
                    "invitation_id": invitation_id,
                })),
                None,
            )?;
        }
        let learner_actor = Actor::for_user(user, None);
        for course_id in &pending_enrollment.course_ids {
            // Refusals (no seat left) are answers with their event, not failures.
            enrollments::request_course_access(conn, &learner_actor, catalog.id, *course_id)?;
        }
        pending::set_fulfilled(conn, pending_enrollment.id, user.id)?;
        Ok(Fulfilment::Done)
    });
    let reason = match attempt {
        Ok(Fulfilment::Done) => return Ok(Fulfilment::Done),
        Ok(Fulfilment::Waiting(reason)) => reason,
        Err(Error::UserLimitReached(_)) => "the catalog is full; joins when a place frees".into(),
        Err(Error::CatalogUnavailable(message)) => message,
        Err(e) => return Err(e),
    };
    pending::set_waiting(conn, pending_enrollment.id, &reason)?;
    Ok(Fulfilment::Waiting(reason))
}

/// What pre-enrolling one person of a set came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreEnrolOutcome {
    AlreadyLearner,
    AlreadyPending,
    /// Had an account and joined at once.
    Enrolled,
    /// Has an account but cannot join yet (why); retried by the worker.
    Waiting(String),
    /// Waits for an account.
    Pending,
}

/// Pre-enrols many people (with the name a list gave each) into one catalog: their
/// accounts are found in two queries, those who have one join at once, and the others'
/// pre-enrolments are made in one statement. Outcomes come in the order of `people`.
/// The caller has checked access, the catalog's dates and the courses.
pub fn pre_enroll_many(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    catalog: &Catalog,
    people: &[(Person, String)],
    course_ids: &[i64],
    created_by: Option<i64>,
    bulk_job_id: Option<i64>,
) -> Result<Vec<PreEnrolOutcome>> {
    let emails: Vec<String> = people
        .iter()
        .filter_map(|(p, _)| match p {
            Person::Email(e) => Some(e.as_str().to_string()),
            Person::External(_) => None,
        })
        .collect();
    let keys: Vec<(String, String)> = people
        .iter()
        .filter_map(|(p, _)| match p {
            Person::External(k) => Some((k.provider().to_string(), k.remote_id().to_string())),
            Person::Email(_) => None,
        })
        .collect();
    let mut accounts: std::collections::HashMap<String, User> =
        users::verified_by_emails(conn, &emails)?
            .into_iter()
            .map(|u| (u.email.clone(), u))
            .collect();
    for (identity, user) in users::by_identities(conn, &keys)? {
        accounts.insert(identity.display(), user);
    }
    let learners_now: std::collections::HashSet<i64> = learners::active_user_ids_among(
        conn,
        catalog.id,
        &accounts.values().map(|u| u.id).collect::<Vec<_>>(),
    )?
    .into_iter()
    .collect();
    let expires_at = expiry(ctx);
    let mut outcomes: Vec<Option<PreEnrolOutcome>> = vec![None; people.len()];
    let mut waiting_for_account = Vec::new();
    let mut with_account = Vec::new();
    for (index, (person, _)) in people.iter().enumerate() {
        match accounts.get(&person.to_string()) {
            Some(user) if learners_now.contains(&user.id) => {
                outcomes[index] = Some(PreEnrolOutcome::AlreadyLearner);
            }
            Some(user) => with_account.push((index, user)),
            None => waiting_for_account.push(index),
        }
    }
    // Those with an account: their pre-enrolments made in one statement, then each
    // fulfilled (joining, its event and audit entry, the courses) at once.
    let new: Vec<NewPending> = with_account
        .iter()
        .map(|(i, _)| people[*i].0.new_pending(&people[*i].1))
        .collect();
    let mut made: std::collections::HashMap<String, PendingEnrollment> = pending::insert_many(
        conn,
        catalog.id,
        &new,
        course_ids,
        created_by,
        expires_at,
        bulk_job_id,
    )?
    .into_iter()
    .map(|p| (p.identifier(), p))
    .collect();
    for (index, user) in with_account {
        outcomes[index] = Some(match made.remove(&people[index].0.to_string()) {
            None => PreEnrolOutcome::AlreadyPending,
            Some(open) => match fulfil_now(conn, &open, user)? {
                None => PreEnrolOutcome::Enrolled,
                Some(reason) => PreEnrolOutcome::Waiting(reason),
            },
        });
    }
    let new: Vec<NewPending> = waiting_for_account
        .iter()
        .map(|&i| people[i].0.new_pending(&people[i].1))
        .collect();
    let created: std::collections::HashSet<String> = pending::insert_many(
        conn,
        catalog.id,
        &new,
        course_ids,
        created_by,
        expires_at,
        bulk_job_id,
    )?
    .into_iter()
    .map(|p| p.identifier())
    .collect();
    let mut claimed = std::collections::HashSet::new();
    for index in waiting_for_account {
        let key = people[index].0.to_string();
        // Made now, once: a second mention of the same person is already pending.
        outcomes[index] = Some(if created.contains(&key) && claimed.insert(key) {
            PreEnrolOutcome::Pending
        } else {
            PreEnrolOutcome::AlreadyPending
        });
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(PreEnrolOutcome::AlreadyPending))
        .collect())
}

/// Fulfils one open pre-enrolment for an account now (the caller holds no lock the
/// catalog's would have to follow). `None` when done, else why it waits.
pub(crate) fn fulfil_now(
    conn: &mut PgConnection,
    pending_enrollment: &PendingEnrollment,
    user: &User,
) -> Result<Option<String>> {
    Ok(match fulfil(conn, pending_enrollment, user, Wait::Yes)? {
        Fulfilment::Done => None,
        Fulfilment::Waiting(reason) => Some(reason),
    })
}

/// Fulfils what waits for this account, in the caller's transaction: called when an
/// address is proven (verified, or changed through its link) and when an identity is
/// linked. An unverified address fulfils nothing: anyone can type any address.
pub fn fulfil_for_user(conn: &mut PgConnection, user: &User) -> Result<usize> {
    if !user.is_active {
        return Ok(0);
    }
    let identities: Vec<(String, String)> = users::identities_of(conn, user.id)?
        .into_iter()
        .map(|i| (i.provider, i.remote_id))
        .collect();
    let email = if user.is_verified() {
        user.email.as_str()
    } else {
        ""
    };
    let mut fulfilled = 0;
    for open in pending::open_for(conn, email, &identities)? {
        if fulfil(conn, &open, user, Wait::No)? == Fulfilment::Done {
            fulfilled += 1;
        }
    }
    Ok(fulfilled)
}

/// A pre-enrolment of this person that could not be fulfilled yet, as they read it.
#[derive(Debug, Clone)]
pub struct WaitingPlace {
    pub catalog: String,
    pub partner: String,
    /// Why it waits, in words ("the catalog is full; joins when a place frees").
    pub reason: Option<String>,
}

/// What waits for this person (a verified address or a linked identity): shown on their
/// page so that a full catalog is not a silent dead end.
pub fn waiting_for(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<WaitingPlace>> {
    let user = users::find(conn, actor.require_user()?)?;
    let identities: Vec<(String, String)> = users::identities_of(conn, user.id)?
        .into_iter()
        .map(|i| (i.provider, i.remote_id))
        .collect();
    let email = if user.is_verified() {
        user.email.as_str()
    } else {
        ""
    };
    let mut places = Vec::new();
    for open in pending::open_for(conn, email, &identities)? {
        let catalog = catalogs::find(conn, open.catalog_id)?;
        if catalog.is_archived() {
            continue;
        }
        let partner = crate::models::partners::find(conn, catalog.partner_id)?;
        places.push(WaitingPlace {
            catalog: catalog.name,
            partner: partner.name,
            reason: open.last_error,
        });
    }
    Ok(places)
}

/// The retry job: tries again pre-enrolments whose person has an account. One runner
/// at a time (others find the lock taken and return at once).
pub fn retry_waiting(conn: &mut PgConnection, limit: i64) -> Result<(usize, usize)> {
    if !crate::models::try_advisory_xact_lock(conn, "pre-enrollment-retry")? {
        return Ok((0, 0));
    }
    let (mut tried, mut fulfilled) = (0, 0);
    for (pending_id, user_id) in pending::ready_to_retry(conn, limit)? {
        let open = pending::lock(conn, pending_id)?;
        if !open.is_open_at(Utc::now()) {
            continue;
        }
        let user = users::find(conn, user_id)?;
        tried += 1;
        if fulfil(conn, &open, &user, Wait::Yes)? == Fulfilment::Done {
            fulfilled += 1;
        }
    }
    Ok((tried, fulfilled))
}

fn find_in_scope(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
) -> Result<(PendingEnrollment, Catalog)> {
    let found = pending::find(conn, id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("pre-enrolment"),
        other => other.into(),
    })?;
    let catalog = catalogs::find(conn, found.catalog_id)?;
    require_partner_access(actor, catalog.partner_id, "pre-enrolment")?;
    Ok((found, catalog))
}

/// A pre-enrolment of this catalog (staff, or a manager of its partner); another
/// catalog's is "not found".
pub fn find_in_catalog(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    id: i64,
) -> Result<PendingEnrollment> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    match pending::find(conn, id) {
        Ok(found) if found.catalog_id == catalog.id => Ok(found),
        Ok(_) | Err(diesel::result::Error::NotFound) => Err(Error::NotFound("pre-enrolment")),
        Err(e) => Err(e.into()),
    }
}

/// Cancels an open pre-enrolment (staff, or a manager of the partner).
pub fn cancel(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    reason: Option<&str>,
) -> Result<PendingEnrollment> {
    let (_, catalog) = find_in_scope(conn, actor, id)?;
    let found = pending::lock(conn, id)?;
    let status = found.status_at(Utc::now());
    if !matches!(status, PendingStatus::Pending | PendingStatus::Waiting) {
        return Err(Error::InvalidTransition(format!(
            "This pre-enrolment is {}; only a pending or waiting one can be cancelled.",
            status.as_str()
        )));
    }
    let cancelled = pending::set_cancelled(conn, id)?;
    audit::record(
        conn,
        actor,
        "pre_enrollment.cancel",
        Subject::new("pending_enrollment", id).catalog(catalog.partner_id, catalog.id),
        Some(serde_json::json!({ "status": status.as_str(), "person": found.identifier() })),
        Some(serde_json::json!({ "status": "cancelled" })),
        reason,
    )?;
    Ok(cancelled)
}

/// A catalog's pre-enrolments, newest first.
pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    status: Option<PendingStatus>,
    page: PageRequest,
) -> Result<Paginated<PendingEnrollment>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(pending::list_for_catalog(conn, catalog.id, status, page)?)
}
