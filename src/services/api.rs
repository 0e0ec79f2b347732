//! What the JSON API reads and does, composed of the same rules and use cases as the
//! pages: catalogs by slug (rule 3), memberships (rules 4–6) and course access (rule 7).

use diesel::PgConnection;

use super::invitations;
use super::patterns::PatternCache;
use super::visibility;
use crate::domain::EmailAddress;
use crate::domain::invitation_status::Channel;
use crate::error::{Error, Result};
use crate::models::catalogs::{self, Catalog, CatalogCourse};
use crate::models::courses::Course;
use crate::models::learners::{self, CatalogLearner};
use crate::models::pending_enrollments::{self as pending, PendingEnrollment, PendingStatus};
use crate::models::users::{self, User};
use crate::policies::Actor;

/// Longest page of any list.
pub const MAX_PAGE: i64 = 200;
pub const DEFAULT_PAGE: i64 = 50;

/// How the caller stands to a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Staff, or a manager of its partner.
    Manages,
    /// Sees it (rule 3) as a learner or would-be learner.
    Sees,
}

/// A page read with one row more than `limit`: the page, and whether another follows.
pub fn split_page<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    (rows, more)
}

/// A page size from the query: default when absent, refused outside 1..=MAX_PAGE.
pub fn page_size(raw: Option<i64>) -> Result<i64> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid(
            "limit",
            format!("must be a whole number from 1 to {MAX_PAGE}"),
        )),
    }
}

/// The catalog with this slug, if the caller manages or sees it; "not found" otherwise
/// (rule 10: another partner's catalog does not exist for this caller).
pub fn catalog(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
) -> Result<(Catalog, Standing)> {
    let catalog = catalogs::find_by_slug(conn, slug)?.ok_or(Error::NotFound("catalog"))?;
    if actor.can_manage_partner(catalog.partner_id) {
        return Ok((catalog, Standing::Manages));
    }
    if !catalog.is_archived() && visibility::can_see_catalog(conn, cache, actor, catalog.id)? {
        return Ok((catalog, Standing::Sees));
    }
    Err(Error::NotFound("catalog"))
}

/// Catalogs the caller may see, by slug, after `after`: staff every one, managers their
/// partner's, everyone the ones rule 3 shows them. Archived catalogs only to those who
/// manage them. One more than `limit` tells whether there is a next page.
pub fn catalogs(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    after: Option<&str>,
    limit: i64,
) -> Result<(Vec<(Catalog, Standing)>, bool)> {
    let found: Vec<(Catalog, Standing)> = if actor.is_staff {
        catalogs::page_by_slug(conn, None, after, limit + 1)?
            .into_iter()
            .map(|c| (c, Standing::Manages))
            .collect()
    } else {
        let mut all: Vec<(Catalog, Standing)> = Vec::new();
        if let Some(partner) = actor.managed_partner_id {
            all.extend(
                catalogs::page_by_slug(conn, Some(partner), after, limit + 1)?
                    .into_iter()
                    .map(|c| (c, Standing::Manages)),
            );
        }
        for seen in visibility::visible_catalogs(conn, cache, actor)? {
            let catalog = seen.catalog;
            let later = after.is_none_or(|after| catalog.slug.as_str() > after);
            if later && !all.iter().any(|(c, _)| c.id == catalog.id) && !catalog.is_archived() {
                all.push((catalog, Standing::Sees));
            }
        }
        all.sort_by(|a, b| a.0.slug.cmp(&b.0.slug));
        all
    };
    Ok(split_page(found, limit))
}

/// The catalog's courses in order.
pub fn courses(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
) -> Result<Vec<(CatalogCourse, Course)>> {
    let (catalog, _) = catalog(conn, cache, actor, slug)?;
    Ok(catalogs::courses_of(conn, catalog.id)?)
}

/// A membership with its person.
#[derive(Debug, Clone)]
pub struct Membership {
    pub learner: CatalogLearner,
    pub user: User,
    pub channel: String,
}

fn membership(conn: &mut PgConnection, learner: CatalogLearner) -> Result<Membership> {
    let user = users::find(conn, learner.user_id)?;
    let channel = crate::models::invitations::find(conn, learner.invitation_id)?.channel;
    Ok(Membership {
        learner,
        user,
        channel,
    })
}

fn parse_email(raw: &str) -> Result<EmailAddress> {
    EmailAddress::parse(raw).map_err(|e| Error::invalid("email", e.to_string()))
}

fn user_by_email(conn: &mut PgConnection, email: &EmailAddress) -> Result<User> {
    users::find_by_email(conn, email.as_str())?.ok_or(Error::NotFound("user"))
}

/// Whether an address is the caller's own.
fn is_own(actor: &Actor, email: &EmailAddress) -> bool {
    actor.user_id.is_some() && actor.email.eq_ignore_ascii_case(email.as_str())
}

/// `GET …/enrollment[?email=]`: one membership (the caller's own without `email`).
pub fn membership_of(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    email: &str,
) -> Result<Membership> {
    let (catalog, standing) = catalog(conn, cache, actor, slug)?;
    let email = parse_email(email)?;
    if standing != Standing::Manages && !is_own(actor, &email) {
        return Err(Error::Forbidden(
            "a learner may only ask for their own membership".into(),
        ));
    }
    let user = user_by_email(conn, &email)?;
    let learner = learners::find(conn, catalog.id, user.id)?
        .filter(|l| l.is_active)
        .ok_or(Error::NotFound("membership"))?;
    membership(conn, learner)
}

/// `GET …/enrollment` without `email`: every active learner for those who manage the
/// catalog (by user id, after `after`), the caller's own membership for anyone else.
pub fn memberships(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<(Vec<Membership>, bool)> {
    let (catalog, standing) = catalog(conn, cache, actor, slug)?;
    if standing == Standing::Sees {
        let user_id = actor.require_user()?;
        let learner = learners::find(conn, catalog.id, user_id)?
            .filter(|l| l.is_active)
            .ok_or(Error::NotFound("membership"))?;
        return Ok((vec![membership(conn, learner)?], false));
    }
    let (page, more) = split_page(
        learners::active_page(conn, catalog.id, after, limit + 1)?,
        limit,
    );
    let mut found = Vec::with_capacity(page.len());
    for learner in page {
        found.push(membership(conn, learner)?);
    }
    Ok((found, more))
}

/// `POST …/enrollment[?email=]`. Without `email` the caller joins: a waiting invitation
/// is accepted, else rule 4's self-enrolment. With `email` (staff, managers) that
/// existing account joins through an invitation of channel `api`, accepted at once.
/// Already an active learner: 409.
pub fn join(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    email: Option<&str>,
) -> Result<Membership> {
    let (catalog, standing) = catalog(conn, cache, actor, slug)?;
    let user = match email {
        Some(raw) => {
            if standing != Standing::Manages {
                return Err(Error::Forbidden(
                    "only staff and the partner's managers may enrol someone else".into(),
                ));
            }
            user_by_email(conn, &parse_email(raw)?)?
        }
        None => users::find(conn, actor.require_user()?)?,
    };
    // The catalog first (see `catalogs::lock`), then the learner it holds.
    let locked = catalogs::lock(conn, catalog.id)?;
    if learners::find(conn, catalog.id, user.id)?.is_some_and(|l| l.is_active) {
        return Err(Error::Conflict(format!(
            "{} is already a learner of this catalog",
            user.email
        )));
    }
    let learner = if email.is_some() {
        let (learner, invitation_id) =
            invitations::join_directly(conn, actor, &locked, &user, Channel::Api)?;
        super::audit::record(
            conn,
            actor,
            "learner.enrol",
            super::audit::Subject::new("catalog_learner", learner.id)
                .catalog(locked.partner_id, locked.id),
            None,
            Some(serde_json::json!({
                "user_id": user.id,
                "email": user.email,
                "invitation_id": invitation_id,
                "channel": Channel::Api.as_str(),
            })),
            None,
        )?;
        learner
    } else {
        let open = crate::models::invitations::find_open(conn, catalog.id, &user.email)?;
        match open {
            Some(invitation) if user.is_verified() => {
                invitations::accept_by_id(conn, actor, invitation.id)?;
                learners::find(conn, catalog.id, user.id)?.ok_or(Error::NotFound("membership"))?
            }
            _ => invitations::join_self_enrollment(conn, cache, actor, catalog.id)?,
        }
    };
    membership(conn, learner)
}

/// `DELETE …/enrollment[?email=]` (rule 6). A learner leaving on their own needs the
/// catalog to allow it (403 otherwise); not an active learner: 404.
pub fn remove(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    email: Option<&str>,
) -> Result<()> {
    let (catalog, standing) = catalog(conn, cache, actor, slug)?;
    let other = match email {
        None => None,
        Some(raw) => Some(parse_email(raw)?).filter(|email| !is_own(actor, email)),
    };
    if let Some(email) = other {
        if standing != Standing::Manages {
            return Err(Error::Forbidden(
                "a learner may only remove their own membership".into(),
            ));
        }
        let user = user_by_email(conn, &email)?;
        invitations::remove_learner(
            conn,
            actor,
            catalog.id,
            user.id,
            Some("removed through the API"),
        )?;
        return Ok(());
    }
    let user_id = actor.require_user()?;
    learners::find(conn, catalog.id, user_id)?
        .filter(|l| l.is_active)
        .ok_or(Error::NotFound("membership"))?;
    if standing == Standing::Manages {
        invitations::remove_learner(
            conn,
            actor,
            catalog.id,
            user_id,
            Some("removed through the API"),
        )?;
        return Ok(());
    }
    if !catalog.allow_self_unenrollment {
        return Err(Error::Forbidden(
            "this catalog does not let learners leave on their own; ask its managers".into(),
        ));
    }
    invitations::leave(conn, actor, catalog.id)?;
    Ok(())
}

/// The catalog and course for a course request by slug and course key, 404 when the
/// course is not in the catalog.
pub fn catalog_course(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    course_key: &str,
) -> Result<(Catalog, Course)> {
    let (catalog, _) = catalog(conn, cache, actor, slug)?;
    let course = catalogs::courses_of(conn, catalog.id)?
        .into_iter()
        .map(|(_, course)| course)
        .find(|course| course.key == course_key)
        .ok_or(Error::NotFound("course"))?;
    Ok((catalog, course))
}

/// The partner codes of these catalogs, by partner id.
pub fn partner_codes(
    conn: &mut PgConnection,
    catalogs: &[&Catalog],
) -> Result<std::collections::HashMap<i64, String>> {
    let mut codes = std::collections::HashMap::new();
    for catalog in catalogs {
        if let std::collections::hash_map::Entry::Vacant(slot) = codes.entry(catalog.partner_id) {
            slot.insert(crate::models::partners::find(conn, catalog.partner_id)?.code);
        }
    }
    Ok(codes)
}

/// Most addresses one invitation request may carry.
pub const MAX_INVITATIONS_PER_CALL: usize = 100;

fn managed_catalog(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
) -> Result<Catalog> {
    match catalog(conn, cache, actor, slug)? {
        (catalog, Standing::Manages) => Ok(catalog),
        _ => Err(Error::Forbidden(
            "only staff and the partner's managers may see and send its invitations".into(),
        )),
    }
}

/// A catalog's invitations, of one status if given, by id after `after`.
pub fn invitations(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<(Vec<crate::models::invitations::Invitation>, bool)> {
    let catalog = managed_catalog(conn, cache, actor, slug)?;
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            crate::domain::invitation_status::InvitationStatus::parse(raw).ok_or_else(|| {
                Error::invalid(
                    "status",
                    "must be one of sent, accepted, declined, expired, removed",
                )
            })?,
        ),
    };
    let page = crate::models::invitations::page_after(
        conn,
        catalog.id,
        status,
        after,
        chrono::Utc::now(),
        limit + 1,
    )?;
    Ok(split_page(page, limit))
}

/// Invites each address (channel `api`), reporting every outcome.
pub fn invite(
    conn: &mut PgConnection,
    ctx: &super::ServiceContext,
    actor: &Actor,
    slug: &str,
    emails: Vec<String>,
) -> Result<super::console::InviteReport> {
    let catalog = managed_catalog(conn, &ctx.patterns, actor, slug)?;
    if emails.len() > MAX_INVITATIONS_PER_CALL {
        return Err(Error::invalid(
            "emails",
            format!(
                "{} addresses were sent; at most {MAX_INVITATIONS_PER_CALL} a call. Use a bulk list for more.",
                emails.len()
            ),
        ));
    }
    super::console::invite_addresses(conn, ctx, actor, &catalog, emails, Channel::Api)
}

/// A catalog's pre-enrolments (staff and the partner's managers), by id after `after`.
pub fn pending_enrollments(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<(Vec<PendingEnrollment>, bool)> {
    let catalog = managed_catalog(conn, cache, actor, slug)?;
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(PendingStatus::parse(raw).ok_or_else(|| {
            Error::invalid(
                "status",
                "must be one of pending, waiting, fulfilled, expired, cancelled",
            )
        })?),
    };
    Ok(split_page(
        pending::page_after(conn, catalog.id, status, after, limit + 1)?,
        limit,
    ))
}

/// Pre-enrols one person by `email` or `external_user_key` (exactly one), optionally
/// with courses of the catalog by key (rule 8).
pub fn pre_enroll(
    conn: &mut PgConnection,
    ctx: &super::ServiceContext,
    actor: &Actor,
    slug: &str,
    email: Option<&str>,
    external_user_key: Option<&str>,
    course_keys: &[String],
) -> Result<super::pre_enrollment::PreEnrolled> {
    let catalog = managed_catalog(conn, &ctx.patterns, actor, slug)?;
    let person = match (
        email.map(str::trim).filter(|s| !s.is_empty()),
        external_user_key.map(str::trim).filter(|s| !s.is_empty()),
    ) {
        (Some(email), None) => email,
        (None, Some(key)) => key,
        _ => {
            return Err(Error::invalid(
                "email",
                "give either `email` or `external_user_key` (provider:remote_id), not both",
            ));
        }
    };
    let courses = catalogs::courses_of(conn, catalog.id)?;
    let mut course_ids = Vec::new();
    for key in course_keys {
        let (_, course) = courses.iter().find(|(_, c)| c.key == *key).ok_or_else(|| {
            Error::invalid("courses", format!("{key} is not a course of this catalog"))
        })?;
        course_ids.push(course.id.to_string());
    }
    super::pre_enrollment::create(conn, ctx, actor, catalog.id, person, &course_ids)
}

/// Cancels a pre-enrolment of this catalog.
pub fn cancel_pre_enrollment(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    id: i64,
) -> Result<PendingEnrollment> {
    let catalog = managed_catalog(conn, cache, actor, slug)?;
    super::pre_enrollment::find_in_catalog(conn, actor, &catalog, id)?;
    super::pre_enrollment::cancel(conn, actor, id, Some("cancelled through the API"))
}

/// Most entries of a membership's history.
pub const MAX_HISTORY: i64 = 1_000;

/// The changes of one person's membership, from the audit trail (staff and the
/// partner's managers).
pub fn history(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    slug: &str,
    email: &str,
) -> Result<Vec<crate::models::audit::HistoryRow>> {
    let catalog = managed_catalog(conn, cache, actor, slug)?;
    let email = parse_email(email)?;
    let user = users::find_by_email(conn, email.as_str())?;
    Ok(crate::models::audit::membership_history(
        conn,
        catalog.id,
        user.map(|u| u.id),
        email.as_str(),
        MAX_HISTORY,
    )?)
}

/// The memberships the caller may list: their own, or for staff and managers every one
/// in scope; optionally of one catalog and one address; by id after `after`.
pub fn enrollments(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    catalog_slug: Option<&str>,
    email: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<(Vec<learners::MembershipRow>, bool)> {
    let catalog_id = match catalog_slug.map(str::trim).filter(|s| !s.is_empty()) {
        Some(slug) => Some(catalog(conn, cache, actor, slug)?.0.id),
        None => None,
    };
    let email = match email.map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(parse_email(raw)?),
        None => None,
    };
    let (partner, user) = if actor.is_staff {
        (None, None)
    } else if let Some(partner) = actor.managed_partner_id {
        (Some(partner), None)
    } else {
        if email.as_ref().is_some_and(|e| !is_own(actor, e)) {
            return Err(Error::Forbidden(
                "a learner may only list their own memberships".into(),
            ));
        }
        (None, Some(actor.require_user()?))
    };
    Ok(split_page(
        learners::memberships_page(
            conn,
            learners::MembershipScope {
                partner_id: partner,
                user_id: user,
                catalog_id,
                email: email.as_ref().map(|e| e.as_str().to_string()),
            },
            after,
            limit + 1,
        )?,
        limit,
    ))
}

/// Most addresses one `bulk_enroll` call may carry; beyond, a bulk list.
pub const MAX_BULK_ENROLL: usize = 1_000;

/// One (email, catalog) pair of a `bulk_enroll` call.
#[derive(Debug, Clone)]
pub struct BulkEnrolled {
    pub email: String,
    pub catalog: String,
    /// `enrolled`, `pending`, `waiting`, `already_learner`, `already_pending`,
    /// `invalid_email`, `catalog_not_found`, `invalid_course`, `catalog_unavailable`,
    /// or `refused`.
    pub outcome: &'static str,
    pub detail: String,
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Enrols many addresses into many catalogs (staff and managers): existing accounts
/// join at once, unknown addresses are pre-enrolled (rule 8), optionally with courses.
/// Bad addresses and catalogs out of the caller's reach are reported per pair, not
/// fatal; each pair is its own savepoint.
pub fn bulk_enroll(
    conn: &mut PgConnection,
    ctx: &super::ServiceContext,
    actor: &Actor,
    catalog_slugs: &str,
    emails: &str,
    course_keys: &str,
) -> Result<Vec<BulkEnrolled>> {
    if !actor.is_staff && actor.managed_partner_id.is_none() {
        return Err(Error::Forbidden(
            "bulk enrolment is for staff and partner managers".into(),
        ));
    }
    let (slugs, emails, keys) = (
        split_list(catalog_slugs),
        split_list(emails),
        split_list(course_keys),
    );
    let mut errors = crate::error::FieldErrors::new();
    if slugs.is_empty() {
        errors.add("catalogs", "give at least one catalog slug");
    }
    if emails.is_empty() {
        errors.add("emails", "give at least one email address");
    }
    errors.into_result()?;
    let mut results = Vec::with_capacity(slugs.len() * emails.len());
    for slug in &slugs {
        let found = match catalog(conn, &ctx.patterns, actor, slug) {
            Ok((catalog, Standing::Manages)) => Some(catalog),
            Ok(_) | Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let Some(catalog) = found else {
            results.extend(emails.iter().map(|email| BulkEnrolled {
                email: email.clone(),
                catalog: slug.clone(),
                outcome: "catalog_not_found",
                detail: "no catalog with this slug is yours to enrol into".into(),
            }));
            continue;
        };
        let courses = catalogs::courses_of(conn, catalog.id)?;
        let course_ids: Option<Vec<i64>> = keys
            .iter()
            .map(|key| {
                courses
                    .iter()
                    .find(|(_, c)| c.key == *key)
                    .map(|(_, c)| c.id)
            })
            .collect();
        let refuse_all = |outcome: &'static str, detail: &'static str| {
            emails.iter().map(move |email| BulkEnrolled {
                email: email.clone(),
                catalog: slug.clone(),
                outcome,
                detail: detail.to_string(),
            })
        };
        let Some(course_ids) = course_ids else {
            results.extend(refuse_all(
                "invalid_course",
                "a course given is not in this catalog",
            ));
            continue;
        };
        if catalog.window().has_ended_at(chrono::Utc::now()) {
            results.extend(refuse_all(
                "catalog_unavailable",
                "this catalog has ended; nobody can be enrolled any more",
            ));
            continue;
        }
        // The valid addresses, pre-enrolled together; the others reported.
        let mut people = Vec::new();
        let mut places = Vec::with_capacity(emails.len());
        for email in &emails {
            match EmailAddress::parse(email) {
                Ok(address) => {
                    places.push(Ok(people.len()));
                    people.push((super::pre_enrollment::Person::Email(address), String::new()));
                }
                Err(e) => places.push(Err(e.to_string())),
            }
        }
        let made = super::pre_enrollment::pre_enroll_many(
            conn,
            ctx,
            &catalog,
            &people,
            &course_ids,
            actor.user_id,
            None,
        )?;
        use super::pre_enrollment::PreEnrolOutcome as Made;
        let mut counts = std::collections::BTreeMap::<&str, i64>::new();
        for (email, place) in emails.iter().zip(places) {
            let (outcome, detail) = match place {
                Err(reason) => ("invalid_email", reason),
                Ok(index) => match &made[index] {
                    Made::Enrolled => ("enrolled", "joined the catalog".to_string()),
                    Made::Pending => (
                        "pending",
                        "pre-enrolled: joins when the account appears".to_string(),
                    ),
                    Made::Waiting(reason) => ("waiting", reason.clone()),
                    Made::AlreadyLearner => (
                        "already_learner",
                        "already a learner of this catalog".to_string(),
                    ),
                    Made::AlreadyPending => (
                        "already_pending",
                        "already pre-enrolled in this catalog".to_string(),
                    ),
                },
            };
            *counts.entry(outcome).or_default() += 1;
            results.push(BulkEnrolled {
                email: email.clone(),
                catalog: slug.clone(),
                outcome,
                detail,
            });
        }
        super::audit::record(
            conn,
            actor,
            "pre_enrollment.create",
            super::audit::Subject::new("catalog", catalog.id)
                .catalog(catalog.partner_id, catalog.id),
            None,
            Some(serde_json::json!({ "bulk_enroll": counts, "course_ids": course_ids })),
            None,
        )?;
    }
    Ok(results)
}

/// Addresses in a `bulk_enroll` request, to refuse an oversized one before any work.
pub fn bulk_enroll_size(emails: &str) -> usize {
    split_list(emails).len()
}
