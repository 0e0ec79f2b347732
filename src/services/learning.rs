//! "My catalogs": what a learner sees and can do.

use std::collections::HashMap;

use chrono::Utc;
use diesel::PgConnection;

use super::ServiceContext;
use super::visibility::{VisibleCatalog, visible_catalogs};
use crate::domain::availability::CatalogPhase;
use crate::error::Result;
use crate::models::courses::Course;
use crate::models::partners::{self, Partner};
use crate::models::{catalogs, enrollments, invitations};
use crate::policies::Actor;
use crate::policies::quota::has_seat_left;

/// A learner's standing in one course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CourseState {
    NotEnrolled,
    /// Enrolled in an open mode (audit, honor).
    Open(String),
    /// Paid access through a licence, or a paid enrolment of their own.
    Paid(String),
}

impl CourseState {
    /// The access in words: "full access with certificate", "free access".
    pub fn label(&self) -> String {
        match self {
            CourseState::NotEnrolled => "not enrolled".into(),
            CourseState::Open(mode) | CourseState::Paid(mode) => {
                crate::domain::CourseMode::in_words(mode)
            }
        }
    }

    pub fn is_paid(&self) -> bool {
        matches!(self, CourseState::Paid(_))
    }

    pub fn is_enrolled(&self) -> bool {
        !matches!(self, CourseState::NotEnrolled)
    }
}

pub struct MyCourse {
    pub course: Course,
    pub state: CourseState,
    pub has_licence: bool,
    /// Where the course itself is followed.
    pub url: String,
}

pub struct MyCatalog {
    pub visible: VisibleCatalog,
    pub partner: Partner,
    pub phase: CatalogPhase,
    pub courses: Vec<MyCourse>,
    /// A waiting invitation to this catalog, if any.
    pub pending_invitation_id: Option<i64>,
    /// Whether the catalog has paid seats left (rule 7's quota).
    pub seats_left: bool,
    /// Whom to ask: the catalog's support address, else the partner's.
    pub support_email: String,
}

pub fn my_catalogs(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
) -> Result<Vec<MyCatalog>> {
    let user_id = actor.require_user()?;
    let now = Utc::now();
    let visible = visible_catalogs(conn, &ctx.patterns, actor)?;
    let enrolments: HashMap<i64, enrollments::PlatformEnrollment> =
        enrollments::enrollments_of(conn, user_id)?
            .into_iter()
            .map(|e| (e.course_id, e))
            .collect();
    let licences: HashMap<i64, enrollments::Licence> = enrollments::licences_of(conn, user_id)?
        .into_iter()
        .map(|l| (l.course_id, l))
        .collect();
    let user = crate::models::users::find(conn, user_id)?;
    // Waiting invitations are offered only to a verified address.
    let pending: HashMap<i64, i64> = if user.is_verified() {
        invitations::pending_for_email(conn, &user.email, now)?
            .into_iter()
            .map(|i| (i.catalog_id, i.id))
            .collect()
    } else {
        HashMap::new()
    };
    let mut partners_by_id: HashMap<i64, Partner> = HashMap::new();
    let mut result = Vec::with_capacity(visible.len());
    for entry in visible {
        let partner = match partners_by_id.get(&entry.catalog.partner_id) {
            Some(p) => p.clone(),
            None => {
                let p = partners::find(conn, entry.catalog.partner_id)?;
                partners_by_id.insert(p.id, p.clone());
                p
            }
        };
        let courses = catalogs::courses_of(conn, entry.catalog.id)?
            .into_iter()
            .map(|(_, course)| {
                let has_licence = licences.get(&course.id).is_some_and(|l| l.is_active);
                let state = match enrolments.get(&course.id) {
                    Some(e) if e.is_active && crate::domain::CourseMode::is_paid_mode(&e.mode) => {
                        CourseState::Paid(e.mode.clone())
                    }
                    Some(e) if e.is_active => CourseState::Open(e.mode.clone()),
                    _ => CourseState::NotEnrolled,
                };
                MyCourse {
                    url: ctx.course_url(&course.key, course.id),
                    course,
                    state,
                    has_licence,
                }
            })
            .collect();
        let used = enrollments::count_active_owned(conn, entry.catalog.id)?;
        let support_email = if entry.catalog.support_email.is_empty() {
            partner.support_email.clone()
        } else {
            entry.catalog.support_email.clone()
        };
        result.push(MyCatalog {
            seats_left: has_seat_left(entry.catalog.course_enrollments_limit, used),
            support_email,
            phase: entry.catalog.phase_at(now),
            pending_invitation_id: pending.get(&entry.catalog.id).copied(),
            visible: entry,
            partner,
            courses,
        });
    }
    Ok(result)
}

/// What the invitation page shows; anyone holding the link may see it.
pub struct InvitationPage {
    pub invitation: crate::models::invitations::Invitation,
    pub status: crate::domain::InvitationStatus,
    pub catalog: crate::models::catalogs::Catalog,
    pub partner: Partner,
    pub courses: Vec<Course>,
    pub account_exists: bool,
    /// Why accepting would fail now (the catalog is full, or not open), said before any
    /// form is filled in.
    pub cannot_join: Option<String>,
}

pub fn invitation_page(conn: &mut PgConnection, raw_token: &str) -> Result<InvitationPage> {
    let invitation = super::invitations::by_token(conn, raw_token)?;
    let catalog = catalogs::find(conn, invitation.catalog_id)?;
    let partner = partners::find(conn, catalog.partner_id)?;
    let courses = catalogs::courses_of(conn, catalog.id)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let account = crate::models::users::find_by_email(conn, &invitation.email)?;
    let status = invitation.status();
    let cannot_join = if status.can_accept() {
        why_not_now(conn, &catalog, account.as_ref().map(|u| u.id))?
    } else {
        None
    };
    Ok(InvitationPage {
        status,
        invitation,
        catalog,
        partner,
        courses,
        account_exists: account.is_some(),
        cannot_join,
    })
}

/// Why joining the catalog would be refused right now (rule 4), in words.
fn why_not_now(
    conn: &mut PgConnection,
    catalog: &crate::models::catalogs::Catalog,
    user_id: Option<i64>,
) -> Result<Option<String>> {
    let now = Utc::now();
    if let Err(e) = crate::policies::joining::require_active(catalog, now) {
        return Ok(Some(format!("{}.", e.public_message())));
    }
    let already_active = match user_id {
        Some(id) => {
            crate::models::learners::find(conn, catalog.id, id)?.is_some_and(|l| l.is_active)
        }
        None => false,
    };
    let active = crate::models::learners::count_active(conn, catalog.id)?;
    if !crate::policies::joining::user_limit_allows(catalog.user_limit, active, already_active) {
        return Ok(Some(format!(
            "{} has no place left right now, so the invitation cannot be accepted yet. It stays valid: open this link again once a place frees up.",
            catalog.name
        )));
    }
    Ok(None)
}

/// A course as a learner reads about it: through a catalog they are a learner of.
pub struct CoursePage {
    pub course: Course,
    pub catalog: crate::models::catalogs::Catalog,
    pub partner: Partner,
    pub state: CourseState,
    pub support_email: String,
}

/// The course behind a catalog's entry, for words about an enrolment: its title and
/// whom to ask. Only for a catalog the person sees.
pub fn course_in_catalog(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    course_id: i64,
) -> Result<CoursePage> {
    let user_id = actor.require_user()?;
    let catalog = catalogs::find(conn, catalog_id)?;
    if catalogs::catalog_course(conn, catalog.id, course_id)?.is_none()
        || !crate::models::learners::find(conn, catalog.id, user_id)?.is_some_and(|l| l.is_active)
    {
        return Err(crate::error::Error::NotFound("course"));
    }
    let course = crate::models::courses::find(conn, course_id)?;
    let partner = partners::find(conn, catalog.partner_id)?;
    let state = match enrollments::find_enrollment(conn, user_id, course.id)? {
        Some(e) if e.is_active && crate::domain::CourseMode::is_paid_mode(&e.mode) => {
            CourseState::Paid(e.mode)
        }
        Some(e) if e.is_active => CourseState::Open(e.mode),
        _ => CourseState::NotEnrolled,
    };
    let support_email = if catalog.support_email.is_empty() {
        partner.support_email.clone()
    } else {
        catalog.support_email.clone()
    };
    Ok(CoursePage {
        course,
        catalog,
        partner,
        state,
        support_email,
    })
}

/// The course page the "Go to course" link opens when no learning platform address is
/// set: the first catalog that gives the person the course.
pub fn my_course(conn: &mut PgConnection, actor: &Actor, course_id: i64) -> Result<CoursePage> {
    let user_id = actor.require_user()?;
    for catalog_id in crate::models::learners::active_catalog_ids(conn, user_id)? {
        if catalogs::catalog_course(conn, catalog_id, course_id)?.is_some() {
            return course_in_catalog(conn, actor, catalog_id, course_id);
        }
    }
    Err(crate::error::Error::NotFound("course"))
}
