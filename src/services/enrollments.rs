//! Rule 7: a learner enrols in a course through a catalog, using the catalog's paid
//! seats when the course is paid. Licences are deactivated here too.

use chrono::Utc;
use diesel::PgConnection;
use serde::Serialize;

use super::audit::{self, Subject};
use crate::domain::EmailPatterns;
use crate::domain::course::{AUDIT, CourseMode, VERIFIED};
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::models::catalogs::{self, Catalog};
use crate::models::courses::{self, Course};
use crate::models::enrollments::{self, Licence};
use crate::models::learners;
use crate::models::users;
use crate::policies::Actor;
use crate::policies::access::require_partner_access;
use crate::policies::quota::has_seat_left;

/// What a request for course access came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CourseAccess {
    /// Open course: enrolled (or already enrolled) at this mode; no licence.
    Open { mode: String },
    /// Paid course the learner already holds a paid enrolment in: nothing changed.
    AlreadyPaid { mode: String },
    /// An active licence, from whichever catalog, gives verified access; no seat used.
    ExistingLicence {
        licence_id: i64,
        owner_catalog_id: i64,
    },
    /// A seat of this catalog was used: licence created or re-granted.
    Granted { licence_id: i64 },
    /// No seat left; the learner keeps the open mode they had.
    KeptAtMode { mode: String },
    /// Refused; the error says why. A `blocked` event was recorded.
    Refused(RefusalReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    NotAllowed,
    CourseLimitReached,
}

impl CourseAccess {
    /// Warnings that go with a granted answer.
    pub fn warning(&self) -> Option<&'static str> {
        matches!(self, CourseAccess::KeptAtMode { .. }).then_some("course_limit_reached")
    }

    /// Refusals as errors, everything else as the answer.
    pub fn into_result(self) -> Result<CourseAccess> {
        match self {
            CourseAccess::Refused(RefusalReason::NotAllowed) => Err(Error::NotAllowedToEnroll),
            CourseAccess::Refused(RefusalReason::CourseLimitReached) => {
                Err(Error::CourseLimitReached)
            }
            other => Ok(other),
        }
    }
}

fn blocked(
    conn: &mut PgConnection,
    catalog: &Catalog,
    course_id: i64,
    user_id: i64,
    reason: &str,
) -> Result<()> {
    Event::new(events::ENROLLMENT_BLOCKED, catalog.partner_id, catalog.id)
        .course(course_id)
        .user(Some(user_id))
        .reason(reason)
        .record(conn)
}

fn activated(
    conn: &mut PgConnection,
    catalog: &Catalog,
    course: &Course,
    user_id: i64,
    mode: &str,
    licence: Option<i64>,
) -> Result<()> {
    Event::new(events::ENROLLMENT_ACTIVATED, catalog.partner_id, catalog.id)
        .course(course.id)
        .user(Some(user_id))
        .data(serde_json::json!({ "mode": mode, "licence_id": licence }))
        .record(conn)
}

/// Rule 7, all branches, in one transaction. Refusals are answers, not errors, so
/// that the `blocked` event they record is kept: see `CourseAccess::into_result`.
pub fn request_course_access(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    course_id: i64,
) -> Result<CourseAccess> {
    let user_id = actor.require_user()?;
    // Quota checks are serialised per catalog, and one learner's requests per learner.
    let catalog = catalogs::lock(conn, catalog_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("catalog"),
        other => other.into(),
    })?;
    let user = users::lock(conn, user_id)?;
    let now = Utc::now();
    let course = courses::find(conn, course_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("course"),
        other => other.into(),
    })?;

    // 1. An active learner of an active catalog that holds the course. Someone who never
    // was a learner and does not even see the catalog (rule 3) gets "not found", and the
    // partner's analytics record nothing of them.
    let learner = learners::find(conn, catalog.id, user_id)?;
    let is_learner = learner.as_ref().is_some_and(|l| l.is_active);
    if learner.is_none() {
        let patterns = EmailPatterns::from_stored(
            catalogs::patterns_of(conn, catalog.id)?
                .iter()
                .map(String::as_str),
        );
        if !super::visibility::sees(conn, &user, &catalog, &patterns)? {
            return Err(Error::NotFound("catalog"));
        }
    }
    let holds_course = catalogs::catalog_course(conn, catalog.id, course_id)?.is_some();
    if !is_learner || !holds_course || !catalog.is_active_at(now) {
        let reason = if !is_learner {
            "not_a_learner"
        } else if !holds_course {
            "course_not_in_catalog"
        } else {
            "catalog_inactive"
        };
        blocked(conn, &catalog, course_id, user_id, reason)?;
        return Ok(CourseAccess::Refused(RefusalReason::NotAllowed));
    }
    let enrollment = enrollments::find_enrollment(conn, user_id, course.id)?;

    // 2. Open course: audit unless already enrolled; no licence.
    if !course.is_paid {
        return match enrollment {
            Some(e) if e.is_active => Ok(CourseAccess::Open { mode: e.mode }),
            existing => {
                let mode = existing
                    .map(|e| e.mode)
                    .unwrap_or_else(|| AUDIT.to_string());
                enrollments::upsert_enrollment(conn, user_id, course.id, &mode)?;
                activated(conn, &catalog, &course, user_id, &mode, None)?;
                audit::record(
                    conn,
                    actor,
                    "enrollment.create",
                    Subject::new("course", course.id).catalog(catalog.partner_id, catalog.id),
                    None,
                    Some(serde_json::json!({ "user_id": user_id, "mode": mode })),
                    None,
                )?;
                Ok(CourseAccess::Open { mode })
            }
        };
    }

    // 3. Already enrolled in a paid mode: nothing to do.
    if let Some(e) = &enrollment {
        if e.is_active && CourseMode::is_paid_mode(&e.mode) {
            return Ok(CourseAccess::AlreadyPaid {
                mode: e.mode.clone(),
            });
        }
    }

    // 4. An active licence from any catalog: make sure the enrolment is verified.
    let licence = enrollments::find_licence(conn, user_id, course.id)?;
    if let Some(l) = licence.as_ref().filter(|l| l.is_active) {
        enrollments::upsert_enrollment(conn, user_id, course.id, VERIFIED)?;
        activated(conn, &catalog, &course, user_id, VERIFIED, Some(l.id))?;
        audit::record(
            conn,
            actor,
            "enrollment.upgrade",
            Subject::new("licence", l.id).catalog(catalog.partner_id, catalog.id),
            Some(serde_json::json!({ "mode": enrollment.as_ref().map(|e| e.mode.clone()) })),
            Some(serde_json::json!({ "mode": VERIFIED })),
            None,
        )?;
        return Ok(CourseAccess::ExistingLicence {
            licence_id: l.id,
            owner_catalog_id: l.catalog_id,
        });
    }

    // 5. A seat left: grant (or re-grant, moving ownership here).
    let used = enrollments::count_active_owned(conn, catalog.id)?;
    if has_seat_left(catalog.course_enrollments_limit, used) {
        let (granted, before) = match licence {
            Some(inactive) => (
                enrollments::reactivate_licence(conn, inactive.id, catalog.id)?,
                Some(serde_json::json!({ "is_active": false, "catalog_id": inactive.catalog_id })),
            ),
            None => (
                enrollments::insert_licence(conn, user_id, course.id, catalog.id)?,
                None,
            ),
        };
        enrollments::upsert_enrollment(conn, user_id, course.id, VERIFIED)?;
        activated(conn, &catalog, &course, user_id, VERIFIED, Some(granted.id))?;
        audit::record(
            conn,
            actor,
            "licence.grant",
            Subject::new("licence", granted.id).catalog(catalog.partner_id, catalog.id),
            before,
            Some(
                serde_json::json!({ "is_active": true, "catalog_id": catalog.id, "user_id": user_id, "course_id": course.id }),
            ),
            None,
        )?;
        return Ok(CourseAccess::Granted {
            licence_id: granted.id,
        });
    }

    // 6. No seat, but an open enrolment: kept at that mode, with a warning.
    if let Some(e) = enrollment.filter(|e| e.is_active && !CourseMode::is_paid_mode(&e.mode)) {
        blocked(conn, &catalog, course.id, user_id, "course_limit_reached")?;
        return Ok(CourseAccess::KeptAtMode { mode: e.mode });
    }

    // 7. No seat and no enrolment.
    blocked(conn, &catalog, course.id, user_id, "course_limit_reached")?;
    Ok(CourseAccess::Refused(RefusalReason::CourseLimitReached))
}

/// Sets a licence inactive and downgrades its enrolment to audit (no audit entry:
/// the caller records the change it is part of).
fn deactivate(
    conn: &mut PgConnection,
    catalog: &Catalog,
    licence: &Licence,
    reason: &str,
) -> Result<()> {
    enrollments::deactivate_licence(conn, licence.id)?;
    enrollments::upsert_enrollment(conn, licence.user_id, licence.course_id, AUDIT)?;
    Event::new(
        events::ENROLLMENT_DEACTIVATED,
        catalog.partner_id,
        catalog.id,
    )
    .course(licence.course_id)
    .user(Some(licence.user_id))
    .reason(reason)
    .data(serde_json::json!({ "licence_id": licence.id }))
    .record(conn)
}

/// Deactivates every active licence this catalog owns for the user; returns their ids.
pub fn deactivate_owned_by_catalog(
    conn: &mut PgConnection,
    catalog: &Catalog,
    user_id: i64,
    reason: &str,
) -> Result<Vec<i64>> {
    // The learner first, as course access does: licence and enrolment rows are then
    // always locked in the same order.
    users::lock(conn, user_id)?;
    let owned = enrollments::active_owned_by_catalog_for_user(conn, catalog.id, user_id)?;
    for licence in &owned {
        deactivate(conn, catalog, licence, reason)?;
    }
    Ok(owned.iter().map(|l| l.id).collect())
}

#[derive(Serialize)]
struct LicenceState {
    is_active: bool,
    catalog_id: i64,
}

/// Staff or a manager of the owning catalog's partner deactivates one licence.
pub fn deactivate_licence(
    conn: &mut PgConnection,
    actor: &Actor,
    licence_id: i64,
    reason: Option<&str>,
) -> Result<Licence> {
    let found = enrollments::find_licence_by_id(conn, licence_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("paid seat"),
        other => other.into(),
    })?;
    // The learner first, as course access does, so that the two never deadlock.
    users::lock(conn, found.user_id)?;
    let licence = enrollments::lock_licence(conn, licence_id)?;
    let catalog = catalogs::find(conn, licence.catalog_id)?;
    require_partner_access(actor, catalog.partner_id, "paid seat")?;
    if !licence.is_active {
        return Err(Error::InvalidTransition(
            "This paid seat is already released.".into(),
        ));
    }
    deactivate(conn, &catalog, &licence, "deactivated_by_manager")?;
    audit::record(
        conn,
        actor,
        "licence.deactivate",
        Subject::new("licence", licence.id).catalog(catalog.partner_id, catalog.id),
        Some(audit::to_json(&LicenceState {
            is_active: true,
            catalog_id: catalog.id,
        })?),
        Some(audit::to_json(&LicenceState {
            is_active: false,
            catalog_id: catalog.id,
        })?),
        reason.map(str::trim).filter(|r| !r.is_empty()),
    )?;
    Ok(enrollments::lock_licence(conn, licence.id)?)
}
