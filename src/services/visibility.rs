//! Rule 3: the catalogs a person sees, and why.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use diesel::PgConnection;

use crate::domain::EmailPatterns;
use crate::error::Result;
use crate::models::catalogs::{self, Catalog};
use crate::models::{invitations, learners, users};
use crate::policies::Actor;
use crate::policies::visibility::{Viewer, can_see, may_join_now};

#[derive(Debug, Clone)]
pub struct VisibleCatalog {
    pub catalog: Catalog,
    pub is_learner: bool,
    pub has_pending_invitation: bool,
    /// Self-enrolment is open to this person.
    pub may_join: bool,
}

fn patterns_by_catalog(conn: &mut PgConnection) -> Result<BTreeMap<i64, EmailPatterns>> {
    let mut grouped: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (catalog_id, pattern) in catalogs::all_patterns(conn)? {
        grouped.entry(catalog_id).or_default().push(pattern);
    }
    Ok(grouped
        .into_iter()
        .map(|(id, list)| {
            (
                id,
                EmailPatterns::from_stored(list.iter().map(String::as_str)),
            )
        })
        .collect())
}

/// Every catalog this person sees, by name.
pub fn visible_catalogs(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<VisibleCatalog>> {
    let user_id = actor.require_user()?;
    let user = users::find(conn, user_id)?;
    let now = Utc::now();
    let learner_of: BTreeSet<i64> = learners::active_catalog_ids(conn, user.id)?
        .into_iter()
        .collect();
    let invited_to: BTreeSet<i64> = invitations::pending_catalog_ids(conn, &user.email, now)?
        .into_iter()
        .collect();
    let patterns = patterns_by_catalog(conn)?;
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
        let catalog_patterns = patterns.get(&catalog.id).unwrap_or(&none);
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

/// Whether this person sees this catalog; staff see every one.
pub fn can_see_catalog(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<bool> {
    if actor.is_staff {
        return Ok(true);
    }
    Ok(visible_catalogs(conn, actor)?
        .iter()
        .any(|v| v.catalog.id == catalog_id))
}
