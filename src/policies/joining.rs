//! Rule 4: who may join a catalog, and when.

use chrono::{DateTime, Utc};

use crate::domain::EmailPatterns;
use crate::domain::availability::CatalogPhase;
use crate::error::Error;
use crate::models::catalogs::Catalog;

/// The catalog must be active to join.
pub fn require_active(catalog: &Catalog, now: DateTime<Utc>) -> Result<(), Error> {
    match catalog.phase_at(now) {
        CatalogPhase::Active => Ok(()),
        CatalogPhase::Upcoming => Err(Error::CatalogUnavailable(format!(
            "{} opens on {}; it cannot be joined before then",
            catalog.name,
            catalog.available_start.format("%Y-%m-%d %H:%M UTC")
        ))),
        CatalogPhase::Ended => Err(Error::CatalogUnavailable(format!(
            "{} ended on {}",
            catalog.name,
            catalog.available_end.format("%Y-%m-%d %H:%M UTC")
        ))),
        CatalogPhase::Archived => Err(Error::CatalogUnavailable(format!(
            "{} is closed",
            catalog.name
        ))),
    }
}

/// `user_limit` (0 = unlimited) caps active learners, except for one already active.
pub fn user_limit_allows(user_limit: i32, active_learners: i64, already_active: bool) -> bool {
    already_active || user_limit == 0 || active_learners < i64::from(user_limit)
}

/// An email counts for patterns only once it is verified.
pub fn email_counts_for_patterns(verified: bool) -> bool {
    verified
}

/// Self-enrolment: allowed when the catalog offers it and has no patterns, or the
/// person's verified email matches one.
pub fn may_self_enroll(
    catalog: &Catalog,
    patterns: &EmailPatterns,
    email: &str,
    verified: bool,
) -> bool {
    catalog.is_self_enrollment
        && (patterns.is_empty() || (email_counts_for_patterns(verified) && patterns.matches(email)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_4_user_limit() {
        assert!(user_limit_allows(0, 1_000_000, false), "0 is unlimited");
        assert!(user_limit_allows(10, 9, false));
        assert!(!user_limit_allows(10, 10, false));
        assert!(
            user_limit_allows(10, 10, true),
            "an active learner is never refused"
        );
    }
}
