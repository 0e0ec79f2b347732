//! A person's own account: name and password.

use diesel::PgConnection;

use super::audit::{self, Subject};
use super::{ServiceContext, accounts};
use crate::db::Db;
use crate::domain::{Password, names};
use crate::error::{Error, FieldErrors, Result};
use crate::models::users::{self, User};
use crate::policies::Actor;

pub fn rename(conn: &mut PgConnection, actor: &Actor, full_name: &str) -> Result<User> {
    let user_id = actor.require_user()?;
    let full_name =
        names::optional_text(full_name, 200).map_err(|e| Error::invalid("full_name", e))?;
    let before = users::lock(conn, user_id)?;
    users::set_full_name(conn, user_id, &full_name)?;
    audit::record(
        conn,
        actor,
        "user.rename",
        Subject::new("user", user_id),
        Some(serde_json::json!({ "full_name": before.full_name })),
        Some(serde_json::json!({ "full_name": full_name })),
        None,
    )?;
    Ok(users::find(conn, user_id)?)
}

/// Changes the password after checking the current one. Every session of the account
/// ends; returns the generation the current browser's new session carries.
pub async fn change_password(
    db: &Db,
    ctx: &ServiceContext,
    actor: &Actor,
    current: String,
    new: String,
    confirm: String,
) -> Result<i32> {
    let user_id = actor.require_user()?;
    let user = db.run(move |conn| Ok(users::find(conn, user_id)?)).await?;
    let mut errors = FieldErrors::new();
    let new_password = errors.check("new_password", Password::parse_for(&new, &user.email));
    if new != confirm {
        errors.add("confirm_password", "does not match the new password");
    }
    if current.is_empty() {
        errors.add("current_password", "is required");
    }
    errors.into_result()?;
    let Some(new_password) = new_password else {
        return Err(Error::invalid("new_password", "is required"));
    };
    if !ctx
        .hashing
        .verify(current, user.password_hash.clone())
        .await?
    {
        return Err(Error::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let new_hash = ctx.hashing.hash(new_password).await?;
    let actor = actor.clone();
    db.transaction(move |conn| {
        users::set_password_hash(conn, user_id, &new_hash)?;
        let generation = accounts::end_sessions(conn, user_id)?;
        audit::record(
            conn,
            &actor,
            "user.password_change",
            Subject::new("user", user_id),
            None,
            None,
            None,
        )?;
        Ok(generation)
    })
    .await
}

/// "Sign out everywhere": every session of the account ends, this one included.
pub fn sign_out_everywhere(conn: &mut PgConnection, actor: &Actor) -> Result<()> {
    let user_id = actor.require_user()?;
    accounts::end_sessions(conn, user_id)?;
    audit::record(
        conn,
        actor,
        "user.sign_out_everywhere",
        Subject::new("user", user_id),
        None,
        None,
        None,
    )
}

/// Signing out ends the account's sessions, so a copied cookie stops working too.
pub fn sign_out(conn: &mut PgConnection, user_id: i64) -> Result<()> {
    accounts::end_sessions(conn, user_id)?;
    Ok(())
}
