//! Rule 3: which catalogs a person sees.

use crate::domain::EmailPatterns;
use crate::models::catalogs::Catalog;

/// What is known about one person and one catalog.
pub struct Viewer<'a> {
    pub is_staff: bool,
    pub email: &'a str,
    pub email_verified: bool,
    pub is_active_learner: bool,
    pub has_pending_invitation: bool,
    pub now: chrono::DateTime<chrono::Utc>,
}

pub fn can_see(viewer: &Viewer<'_>, catalog: &Catalog, patterns: &EmailPatterns) -> bool {
    if viewer.is_staff {
        return true;
    }
    // An archived catalog is hidden from everyone but staff, members included.
    !catalog.is_archived()
        && (viewer.is_active_learner
            || viewer.has_pending_invitation
            || (viewer.email_verified && patterns.matches(viewer.email))
            || may_join_now(viewer, catalog, patterns))
}

/// Self-enrolment that would succeed now: rule 4 also wants the catalog active.
pub fn may_join_now(viewer: &Viewer<'_>, catalog: &Catalog, patterns: &EmailPatterns) -> bool {
    !viewer.is_active_learner
        && catalog.is_active_at(viewer.now)
        && super::joining::may_self_enroll(catalog, patterns, viewer.email, viewer.email_verified)
}
