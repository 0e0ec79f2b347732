//! "My catalogs": what a learner sees and can do.

use std::collections::HashMap;

use chrono::Utc;
use diesel::PgConnection;

use super::patterns::PatternCache;
use super::visibility::{VisibleCatalog, visible_catalogs};
use crate::domain::availability::CatalogPhase;
use crate::error::Result;
use crate::models::courses::Course;
use crate::models::partners::{self, Partner};
use crate::models::{catalogs, enrollments, invitations};
use crate::policies::Actor;

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
    pub fn label(&self) -> String {
        match self {
            CourseState::NotEnrolled => "not enrolled".into(),
            CourseState::Open(mode) => format!("enrolled ({mode})"),
            CourseState::Paid(mode) => format!("enrolled ({mode})"),
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
}

pub struct MyCatalog {
    pub visible: VisibleCatalog,
    pub partner: Partner,
    pub phase: CatalogPhase,
    pub courses: Vec<MyCourse>,
    /// A waiting invitation to this catalog, if any.
    pub pending_invitation_id: Option<i64>,
}

pub fn my_catalogs(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
) -> Result<Vec<MyCatalog>> {
    let user_id = actor.require_user()?;
    let now = Utc::now();
    let visible = visible_catalogs(conn, cache, actor)?;
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
                    course,
                    state,
                    has_licence,
                }
            })
            .collect();
        result.push(MyCatalog {
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
}

pub fn invitation_page(conn: &mut PgConnection, raw_token: &str) -> Result<InvitationPage> {
    let invitation = super::invitations::by_token(conn, raw_token)?;
    let catalog = catalogs::find(conn, invitation.catalog_id)?;
    let partner = partners::find(conn, catalog.partner_id)?;
    let courses = catalogs::courses_of(conn, catalog.id)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let account_exists = crate::models::users::find_by_email(conn, &invitation.email)?.is_some();
    Ok(InvitationPage {
        status: invitation.status(),
        invitation,
        catalog,
        partner,
        courses,
        account_exists,
    })
}
