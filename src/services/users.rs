//! Staff administration of users.

use diesel::PgConnection;

use super::audit::{self, Subject};
use crate::error::{Error, Result};
use crate::models::partners::{self, Partner};
use crate::models::users::{self, User};
use crate::models::{PageRequest, Paginated};
use crate::policies::Actor;
use crate::policies::access::require_staff;

pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    search: &str,
    page: PageRequest,
) -> Result<Paginated<User>> {
    require_staff(actor)?;
    Ok(users::search(conn, search, page)?)
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
