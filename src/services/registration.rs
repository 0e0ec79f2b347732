//! Accounts people create themselves: from an invitation link, by open sign-up; and
//! the one-time links that verify an address or reset a password.

use chrono::{Duration, Utc};
use diesel::PgConnection;

use super::ServiceContext;
use super::accounts::{NewAccount, create_account};
use super::audit::{self, Subject};
use super::invitations;
use crate::domain::{EmailAddress, SecretToken, names};
use crate::error::{Error, FieldErrors, Result};
use crate::mail::{self, messages, messages::AccountLink};
use crate::models::invitations::Invitation;
use crate::models::users::{self, NewUserToken, User};
use crate::policies::Actor;

pub const VERIFY_TTL_HOURS: i64 = 48;
pub const RESET_TTL_HOURS: i64 = 2;

const PURPOSE_VERIFY: &str = "verify_email";
const PURPOSE_CHANGE: &str = "change_email";
const PURPOSE_RESET: &str = "reset_password";

fn issue_link(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    user: &User,
    kind: AccountLink,
    to: &str,
    new_email: Option<&str>,
) -> Result<()> {
    let (purpose, ttl) = match kind {
        AccountLink::VerifyEmail => (PURPOSE_VERIFY, Duration::hours(VERIFY_TTL_HOURS)),
        AccountLink::ChangeEmail => (PURPOSE_CHANGE, Duration::hours(VERIFY_TTL_HOURS)),
        AccountLink::ResetPassword => (PURPOSE_RESET, Duration::hours(RESET_TTL_HOURS)),
    };
    users::expire_tokens(conn, user.id, purpose)?;
    let token = SecretToken::generate();
    let expires_at = Utc::now() + ttl;
    users::insert_token(
        conn,
        &NewUserToken {
            user_id: user.id,
            purpose,
            token_hash: &token.hash(),
            new_email,
            expires_at,
        },
    )?;
    let email = messages::account_link(
        &ctx.base_url,
        kind,
        to,
        &user.full_name,
        token.as_str(),
        expires_at,
    )?;
    mail::queue(conn, &ctx.sealer, email)?;
    Ok(())
}

/// The person's details as typed on a registration form.
#[derive(Debug, Clone)]
pub struct Registration {
    pub full_name: String,
    pub password_hash: String,
}

/// Rule 4: a newcomer registers from the invitation link with the invited address,
/// which the link proves, and accepts, all in one transaction.
pub fn register_from_invitation(
    conn: &mut PgConnection,
    raw_token: &str,
    registration: &Registration,
) -> Result<(User, Invitation)> {
    let invitation = invitations::by_token(conn, raw_token)?;
    let status = invitation.status();
    if !status.can_accept() {
        return Err(Error::InvalidTransition(
            invitations::unusable_reason(status).into(),
        ));
    }
    if users::find_by_email(conn, &invitation.email)?.is_some() {
        return Err(Error::Conflict(format!(
            "An account with {} already exists: sign in to accept.",
            invitation.email
        )));
    }
    let full_name = names::optional_text(&registration.full_name, 200)
        .map_err(|e| Error::invalid("full_name", e))?;
    let email = EmailAddress::parse(&invitation.email)
        .map_err(|e| Error::invalid("email", e.to_string()))?;
    let user = create_account(
        conn,
        &NewAccount {
            email,
            full_name,
            password_hash: Some(registration.password_hash.clone()),
            email_verified: true,
            is_staff: false,
        },
    )?;
    let accepted =
        invitations::accept_as(conn, &Actor::for_user(&user, None), &user, invitation.id)?;
    Ok((user, accepted))
}

/// Open sign-up: the account starts unverified and a verification link is emailed.
pub fn sign_up(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    raw_email: &str,
    registration: &Registration,
) -> Result<User> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", EmailAddress::parse(raw_email));
    let full_name = errors.check(
        "full_name",
        names::optional_text(&registration.full_name, 200),
    );
    errors.into_result()?;
    let (Some(email), Some(full_name)) = (email, full_name) else {
        return Err(Error::invalid("email", "is required"));
    };
    let user = create_account(
        conn,
        &NewAccount {
            email,
            full_name,
            password_hash: Some(registration.password_hash.clone()),
            email_verified: false,
            is_staff: false,
        },
    )?;
    issue_link(
        conn,
        ctx,
        &user,
        AccountLink::VerifyEmail,
        &user.email.clone(),
        None,
    )?;
    Ok(user)
}

/// Sends a new verification link to the signed-in person's address.
pub fn resend_verification(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
) -> Result<()> {
    let user = users::find(conn, actor.require_user()?)?;
    if user.is_verified() {
        return Err(Error::Conflict(
            "Your email address is already confirmed.".into(),
        ));
    }
    issue_link(
        conn,
        ctx,
        &user,
        AccountLink::VerifyEmail,
        &user.email.clone(),
        None,
    )
}

/// Asks to move the account to another address; it changes once that address is confirmed.
pub fn request_email_change(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    raw_email: &str,
) -> Result<()> {
    let user = users::find(conn, actor.require_user()?)?;
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("new_email", e.to_string()))?;
    if email.as_str() == user.email {
        return Err(Error::invalid("new_email", "is already your address"));
    }
    if users::find_by_email(conn, email.as_str())?.is_some() {
        return Err(Error::invalid("new_email", "belongs to another account"));
    }
    issue_link(
        conn,
        ctx,
        &user,
        AccountLink::ChangeEmail,
        email.as_str(),
        Some(email.as_str()),
    )
}

/// Uses a verification or address-change link. Single use, expiring.
pub fn confirm_email(conn: &mut PgConnection, raw_token: &str) -> Result<User> {
    let token = SecretToken::from_received(raw_token);
    let found = users::find_token_for_update(conn, &token.hash())?
        .filter(|t| t.purpose == PURPOSE_VERIFY || t.purpose == PURPOSE_CHANGE)
        .ok_or(Error::NotFound("link"))?;
    if found.used_at.is_some() {
        return Err(Error::InvalidTransition(
            "This link has already been used.".into(),
        ));
    }
    if found.expires_at <= Utc::now() {
        return Err(Error::InvalidTransition(
            "This link has expired. Ask for a new one from your account page.".into(),
        ));
    }
    users::use_token(conn, found.id)?;
    let before = users::find(conn, found.user_id)?;
    let actor = Actor::for_user(&before, None);
    let user = match &found.new_email {
        Some(new_email) => {
            if users::find_by_email(conn, new_email)?.is_some() {
                return Err(Error::Conflict(format!(
                    "{new_email} now belongs to another account."
                )));
            }
            let changed = users::change_email(conn, before.id, new_email)?;
            audit::record(
                conn,
                &actor,
                "user.email_change",
                Subject::new("user", before.id),
                Some(serde_json::json!({ "email": before.email })),
                Some(serde_json::json!({ "email": changed.email })),
                None,
            )?;
            super::accounts::after_email_proven(conn, &changed)?;
            changed
        }
        None => {
            let verified = users::mark_verified(conn, before.id)?;
            audit::record(
                conn,
                &actor,
                "user.email_verify",
                Subject::new("user", before.id),
                None,
                None,
                None,
            )?;
            verified
        }
    };
    Ok(user)
}

/// Sends a reset link when the address has an account; answers the same either way.
pub fn request_password_reset(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    raw_email: &str,
) -> Result<()> {
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("email", e.to_string()))?;
    if let Some(user) = users::find_by_email(conn, email.as_str())? {
        if user.is_active {
            issue_link(
                conn,
                ctx,
                &user,
                AccountLink::ResetPassword,
                &user.email.clone(),
                None,
            )?;
        }
    }
    Ok(())
}

/// Whether a reset link can still be used, for showing its form.
pub fn check_reset_link(conn: &mut PgConnection, raw_token: &str) -> Result<()> {
    let token = SecretToken::from_received(raw_token);
    let found = users::find_token_for_update(conn, &token.hash())?
        .filter(|t| t.purpose == PURPOSE_RESET)
        .ok_or(Error::NotFound("link"))?;
    if found.used_at.is_some() || found.expires_at <= Utc::now() {
        return Err(Error::InvalidTransition(
            "This link has expired or was already used. Ask for a new one.".into(),
        ));
    }
    Ok(())
}

/// Sets a new password through a reset link; the link then stops working.
pub fn reset_password(
    conn: &mut PgConnection,
    raw_token: &str,
    password_hash: &str,
) -> Result<User> {
    let token = SecretToken::from_received(raw_token);
    check_reset_link(conn, raw_token)?;
    let found =
        users::find_token_for_update(conn, &token.hash())?.ok_or(Error::NotFound("link"))?;
    users::use_token(conn, found.id)?;
    users::set_password_hash(conn, found.user_id, password_hash)?;
    let user = users::find(conn, found.user_id)?;
    // The email proved the address, so an account made by staff becomes verified too.
    let user = if user.is_verified() {
        user
    } else {
        users::mark_verified(conn, user.id)?
    };
    audit::record(
        conn,
        &Actor::for_user(&user, None),
        "user.password_reset",
        Subject::new("user", user.id),
        None,
        None,
        None,
    )?;
    Ok(user)
}
