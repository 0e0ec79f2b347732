//! Staff administration of users.

use diesel::PgConnection;

use super::audit::{self, Subject};
use crate::domain::ExternalKey;
use crate::error::{Error, Result};
use crate::models::partners::{self, Partner};
use crate::models::users::{self, ExternalIdentity, User};
use crate::models::{PageRequest, Paginated};
use crate::policies::Actor;
use crate::policies::access::require_staff;

/// A person in the staff list, with their roles.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub user: User,
    /// The partner they manage (name, code), and whether they took the role on yet.
    pub manages: Option<(String, String, bool)>,
    /// Catalogs they are an active learner of.
    pub learner_of: i64,
}

pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    search: &str,
    page: PageRequest,
) -> Result<Paginated<UserRow>> {
    require_staff(actor)?;
    let found = users::search(conn, search, page)?;
    let ids: Vec<i64> = found.items.iter().map(|u| u.id).collect();
    let mut manages: std::collections::HashMap<i64, (String, String, bool)> =
        partners::assignments_of(conn, &ids)?
            .into_iter()
            .map(|(user_id, name, code, claimed)| (user_id, (name, code, claimed)))
            .collect();
    let memberships: std::collections::HashMap<i64, i64> =
        crate::models::learners::membership_counts(conn, &ids)?
            .into_iter()
            .collect();
    Ok(found.map(|user| UserRow {
        manages: manages.remove(&user.id),
        learner_of: memberships.get(&user.id).copied().unwrap_or(0),
        user,
    }))
}

pub fn find(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<(User, Option<Partner>)> {
    require_staff(actor)?;
    let user = users::find(conn, id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("user"),
        other => other.into(),
    })?;
    let partner = partners::managed_by(conn, id)?;
    Ok((user, partner))
}

pub fn set_staff(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    is_staff: bool,
    reason: Option<&str>,
) -> Result<User> {
    require_staff(actor)?;
    if actor.user_id == Some(id) && !is_staff {
        return Err(Error::Conflict(
            "You cannot remove your own staff role.".into(),
        ));
    }
    let before = users::lock(conn, id)?;
    let after = users::set_staff(conn, id, is_staff)?;
    if before.is_staff != after.is_staff {
        audit::record(
            conn,
            actor,
            if is_staff {
                "user.make_staff"
            } else {
                "user.remove_staff"
            },
            Subject::new("user", id),
            Some(serde_json::json!({ "is_staff": before.is_staff })),
            Some(serde_json::json!({ "is_staff": after.is_staff })),
            reason,
        )?;
    }
    Ok(after)
}

pub fn set_active(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    is_active: bool,
    reason: Option<&str>,
) -> Result<User> {
    require_staff(actor)?;
    if actor.user_id == Some(id) && !is_active {
        return Err(Error::Conflict(
            "You cannot deactivate your own account.".into(),
        ));
    }
    let before = users::lock(conn, id)?;
    let after = users::set_active(conn, id, is_active)?;
    if !is_active {
        // Its sessions end now and stay ended if the account is reactivated.
        super::accounts::end_sessions(conn, id)?;
    }
    if before.is_active != after.is_active {
        audit::record(
            conn,
            actor,
            if is_active {
                "user.activate"
            } else {
                "user.deactivate"
            },
            Subject::new("user", id),
            Some(serde_json::json!({ "is_active": before.is_active })),
            Some(serde_json::json!({ "is_active": after.is_active })),
            reason,
        )?;
    }
    Ok(after)
}

/// Links an outside identity (`provider:remote_id`) to a user (staff): pre-enrolments
/// waiting for that identity are fulfilled at once (rule 8).
pub fn link_identity(
    conn: &mut PgConnection,
    actor: &Actor,
    user_id: i64,
    raw_key: &str,
) -> Result<ExternalIdentity> {
    require_staff(actor)?;
    let key = ExternalKey::parse(raw_key).map_err(|e| Error::invalid("identity", e.to_string()))?;
    let user = users::lock(conn, user_id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("user"),
        other => other.into(),
    })?;
    if let Some(existing) = users::find_identity(conn, key.provider(), key.remote_id())? {
        let owner = users::find(conn, existing.user_id)?;
        return Err(Error::invalid(
            "identity",
            if owner.id == user.id {
                format!("{key} is already linked to this account")
            } else {
                format!("{key} is already linked to {}", owner.email)
            },
        ));
    }
    let identity = users::link_identity(conn, user.id, key.provider(), key.remote_id())?;
    audit::record(
        conn,
        actor,
        "user.identity_link",
        Subject::new("user", user.id),
        None,
        Some(serde_json::json!({ "identity": key.to_string() })),
        None,
    )?;
    super::pre_enrollment::fulfil_for_user(conn, &user)?;
    Ok(identity)
}

/// Removes a linked identity from a user (staff).
pub fn unlink_identity(
    conn: &mut PgConnection,
    actor: &Actor,
    user_id: i64,
    identity_id: i64,
) -> Result<()> {
    require_staff(actor)?;
    let identity = users::find_identity_by_id(conn, identity_id)
        .ok()
        .filter(|i| i.user_id == user_id)
        .ok_or(Error::NotFound("identity"))?;
    users::unlink_identity(conn, identity.id)?;
    audit::record(
        conn,
        actor,
        "user.identity_unlink",
        Subject::new("user", user_id),
        Some(serde_json::json!({ "identity": identity.display() })),
        None,
        None,
    )
}

/// The identities linked to a user (staff).
pub fn identities(
    conn: &mut PgConnection,
    actor: &Actor,
    user_id: i64,
) -> Result<Vec<ExternalIdentity>> {
    require_staff(actor)?;
    Ok(users::identities_of(conn, user_id)?)
}
