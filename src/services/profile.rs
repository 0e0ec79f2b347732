//! A person's own account: name and password.

use diesel::PgConnection;

use super::audit::{self, Subject};
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

/// Changes the password after checking the current one.
pub async fn change_password(
    db: &Db,
    actor: &Actor,
    current: String,
    new: String,
    confirm: String,
) -> Result<()> {
    let user_id = actor.require_user()?;
    let mut errors = FieldErrors::new();
    let new_password = errors.check("new_password", Password::parse(&new));
    if new != confirm {
        errors.add("confirm_password", "does not match the new password");
    }
    errors.into_result()?;
    let Some(new_password) = new_password else {
        return Err(Error::invalid("new_password", "is required"));
    };
    let user = db.run(move |conn| Ok(users::find(conn, user_id)?)).await?;
    let hash = user.password_hash.clone();
    let current_ok =
        Db::cpu(move || Ok(hash.is_some_and(|h| super::accounts::verify_password(&current, &h))))
            .await?;
    if !current_ok {
        return Err(Error::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let new_hash = Db::cpu(move || super::accounts::hash_password(&new_password)).await?;
    let actor = actor.clone();
    db.transaction(move |conn| {
        users::set_password_hash(conn, user_id, &new_hash)?;
        audit::record(
            conn,
            &actor,
            "user.password_change",
            Subject::new("user", user_id),
            None,
            None,
            None,
        )
    })
    .await
}
