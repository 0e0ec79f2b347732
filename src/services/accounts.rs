//! Accounts: password hashing, sign-in with throttling, and the one place accounts are created.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{Duration, Utc};
use diesel::PgConnection;

use crate::db::Db;
use crate::domain::{EmailAddress, Password};
use crate::error::{Error, Result};
use crate::models::sign_in_attempts;
use crate::models::users::{self, NewUser, User};

/// Failures allowed per account within the window before it is locked for a while.
pub const MAX_FAILURES_PER_EMAIL: usize = 5;
/// Failures allowed per client address within the window.
pub const MAX_FAILURES_PER_IP: usize = 20;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;

pub fn hash_password(password: &Password) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("password hashing failed: {e}")))
}

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Verifying against this when the account does not exist keeps timing the same.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0cR6W8fBmxIRHVbEPYWVvRmXTyGnLrhvQt7ku2CJcX4";

pub const BAD_CREDENTIALS: &str = "That email and password do not match an account.";

/// Signs a person in, or says why not. Every attempt is recorded so that throttling
/// holds across processes.
pub async fn sign_in(
    db: &Db,
    raw_email: &str,
    password: String,
    client_ip: String,
) -> Result<User> {
    let email = raw_email.trim().to_lowercase();
    if email.is_empty() {
        return Err(Error::invalid("email", "is required"));
    }
    if password.is_empty() {
        return Err(Error::invalid("password", "is required"));
    }
    let (lookup_email, lookup_ip) = (email.clone(), client_ip.clone());
    let user = db
        .run(move |conn| {
            check_throttle(conn, &lookup_email, &lookup_ip)?;
            Ok(users::find_by_email(conn, &lookup_email)?)
        })
        .await?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let matches = Db::cpu(move || Ok(verify_password(&password, &hash))).await?;
    let succeeded = matches && user.as_ref().is_some_and(|u| u.password_hash.is_some());
    let signed_in_id = user.as_ref().filter(|_| succeeded).map(|u| u.id);
    db.run(move |conn| {
        sign_in_attempts::record(conn, &email, &client_ip, succeeded)?;
        if let Some(id) = signed_in_id {
            users::record_sign_in(conn, id)?;
        }
        Ok(())
    })
    .await?;
    match user {
        Some(user) if succeeded && user.is_active => Ok(user),
        Some(_) if succeeded => Err(Error::Forbidden(
            "This account has been deactivated. Contact your administrator.".into(),
        )),
        _ => Err(Error::invalid("password", BAD_CREDENTIALS)),
    }
}

fn minutes_until(unlock: chrono::DateTime<Utc>) -> i64 {
    let seconds = (unlock - Utc::now()).num_seconds().max(1);
    (seconds + 59) / 60
}

fn check_throttle(conn: &mut PgConnection, email: &str, client_ip: &str) -> Result<()> {
    let window = Duration::minutes(THROTTLE_WINDOW_MINUTES);
    let since = Utc::now() - window;
    let by_email = sign_in_attempts::recent_failures_for_email(conn, email, since)?;
    if by_email.len() >= MAX_FAILURES_PER_EMAIL {
        let unlock = by_email[by_email.len() - MAX_FAILURES_PER_EMAIL] + window;
        let minutes = minutes_until(unlock);
        return Err(Error::TooManyRequests(format!(
            "Too many failed sign-ins for this account. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    let by_ip = sign_in_attempts::recent_failures_for_ip(conn, client_ip, since)?;
    if by_ip.len() >= MAX_FAILURES_PER_IP {
        let unlock = by_ip[by_ip.len() - MAX_FAILURES_PER_IP] + window;
        let minutes = minutes_until(unlock);
        return Err(Error::TooManyRequests(format!(
            "Too many failed sign-ins from your network. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// What a new account starts with.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: EmailAddress,
    pub full_name: String,
    pub password_hash: Option<String>,
    /// Set when the email was proven, e.g. by an invitation link.
    pub email_verified: bool,
    pub is_staff: bool,
}

/// The one place accounts are created, so that everything that must follow the
/// creation of an account happens in the same transaction.
pub fn create_account(conn: &mut PgConnection, account: &NewAccount) -> Result<User> {
    if users::find_by_email(conn, account.email.as_str())?.is_some() {
        return Err(Error::invalid(
            "email",
            "an account with this email already exists",
        ));
    }
    let user = users::insert(
        conn,
        &NewUser {
            email: account.email.as_str(),
            full_name: account.full_name.trim(),
            password_hash: account.password_hash.as_deref(),
            is_staff: account.is_staff,
            email_verified_at: account.email_verified.then(Utc::now),
        },
    )
    .map_err(|e| {
        super::unique_violation(e, "email", "an account with this email already exists")
    })?;
    after_email_proven(conn, &user)?;
    Ok(user)
}

/// What follows an account getting an address: invitations sent to it are linked.
pub fn after_email_proven(conn: &mut PgConnection, user: &User) -> Result<()> {
    crate::models::invitations::link_user_by_email(conn, &user.email, user.id)?;
    Ok(())
}

/// Creates a staff account, or makes an existing account staff and sets its password.
pub async fn create_staff(db: &Db, email: EmailAddress, password: Password) -> Result<User> {
    let hash = Db::cpu(move || hash_password(&password)).await?;
    db.transaction(
        move |conn| match users::find_by_email(conn, email.as_str())? {
            Some(existing) => {
                users::set_password_hash(conn, existing.id, &hash)?;
                users::set_active(conn, existing.id, true)?;
                if !existing.is_verified() {
                    users::mark_verified(conn, existing.id)?;
                }
                Ok(users::set_staff(conn, existing.id, true)?)
            }
            None => create_account(
                conn,
                &NewAccount {
                    email,
                    full_name: String::new(),
                    password_hash: Some(hash),
                    email_verified: true,
                    is_staff: true,
                },
            ),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let password = Password::parse("correct horse battery").unwrap();
        let a = hash_password(&password).unwrap();
        let b = hash_password(&password).unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("wrong horse battery", &a));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
