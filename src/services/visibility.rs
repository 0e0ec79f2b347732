//! Rule 3: the catalogs a person sees, and why.

use std::collections::BTreeSet;

use chrono::Utc;
use diesel::PgConnection;

use crate::domain::EmailPatterns;
use crate::error::Result;
use crate::models::catalogs::{self, Catalog};
use crate::models::users::User;
use crate::models::{invitations, learners, users};
use crate::policies::Actor;
use crate::policies::visibility::{Viewer, can_see, may_join_now};
use crate::services::patterns::PatternCache;

#[derive(Debug, Clone)]
pub struct VisibleCatalog {
    pub catalog: Catalog,
    pub is_learner: bool,
    pub has_pending_invitation: bool,
    /// Self-enrolment is open to this person.
    pub may_join: bool,
}

/// Every catalog this person sees, by name.
pub fn visible_catalogs(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
) -> Result<Vec<VisibleCatalog>> {
    let user_id = actor.require_user()?;
    let user = users::find(conn, user_id)?;
    let now = Utc::now();
    let learner_of: BTreeSet<i64> = learners::active_catalog_ids(conn, user.id)?
        .into_iter()
        .collect();
    let invited_to = invited_catalogs(conn, &user, now)?;
    let patterns = cache.all(conn)?;
    let none = EmailPatterns::none();
    let mut candidates: BTreeSet<i64> = learner_of.union(&invited_to).copied().collect();
    if user.is_verified() {
        candidates.extend(
            patterns
                .iter()
                .filter(|(_, p)| p.matches(&user.email))
                .map(|(id, _)| *id),
        );
    }
    candidates.extend(
        catalogs::self_enrollment_catalogs(conn)?
            .iter()
            .map(|c| c.id),
    );
    let ids: Vec<i64> = candidates.into_iter().collect();
    let mut visible = Vec::new();
    for catalog in catalogs::by_ids(conn, &ids)? {
        let catalog_patterns = patterns.get(&catalog.id).map_or(&none, |p| p.as_ref());
        let viewer = Viewer {
            is_staff: false,
            email: &user.email,
            email_verified: user.is_verified(),
            is_active_learner: learner_of.contains(&catalog.id),
            has_pending_invitation: invited_to.contains(&catalog.id),
            now,
        };
        if can_see(&viewer, &catalog, catalog_patterns) {
            visible.push(VisibleCatalog {
                is_learner: viewer.is_active_learner,
                has_pending_invitation: viewer.has_pending_invitation,
                may_join: may_join_now(&viewer, &catalog, catalog_patterns),
                catalog,
            });
        }
    }
    Ok(visible)
}

/// Catalogs with a waiting invitation to the user's address. An address counts only once
/// it is verified: anyone can type any address at sign-up (the emailed link itself still
/// works, since it proves the address).
fn invited_catalogs(
    conn: &mut PgConnection,
    user: &User,
    now: chrono::DateTime<Utc>,
) -> Result<BTreeSet<i64>> {
    if !user.is_verified() {
        return Ok(BTreeSet::new());
    }
    Ok(invitations::pending_catalog_ids(conn, &user.email, now)?
        .into_iter()
        .collect())
}

/// Whether this person sees this catalog; staff see every one.
pub fn can_see_catalog(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    catalog_id: i64,
) -> Result<bool> {
    if actor.is_staff {
        return Ok(true);
    }
    let user = users::find(conn, actor.require_user()?)?;
    let catalog = match catalogs::find(conn, catalog_id) {
        Ok(catalog) => catalog,
        Err(diesel::result::Error::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let patterns = cache.of(conn, catalog.id)?;
    sees(conn, &user, &catalog, &patterns)
}

/// Rule 3 for one person and one catalog.
pub fn sees(
    conn: &mut PgConnection,
    user: &User,
    catalog: &Catalog,
    patterns: &EmailPatterns,
) -> Result<bool> {
    if user.is_staff {
        return Ok(true);
    }
    let now = Utc::now();
    let viewer = Viewer {
        is_staff: false,
        email: &user.email,
        email_verified: user.is_verified(),
        is_active_learner: learners::find(conn, catalog.id, user.id)?.is_some_and(|l| l.is_active),
        has_pending_invitation: invited_catalogs(conn, user, now)?.contains(&catalog.id),
        now,
    };
    Ok(can_see(&viewer, catalog, patterns))
}
