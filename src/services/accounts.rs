//! Accounts: password hashing, sign-in with throttling, and the one place accounts are created.

use std::cell::RefCell;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use chrono::{Duration, Utc};
use diesel::PgConnection;

use super::ServiceContext;
use crate::db::Db;
use crate::domain::{EmailAddress, Password};
use crate::error::{Error, Result};
use crate::mail::messages::{self, AccountNotice};
use crate::models::sign_in_attempts;
use crate::models::users::{self, NewUser, User};

/// Failures allowed per (account, client address) within the window: guessing is
/// slowed where it comes from, and nobody can lock an owner out from elsewhere.
pub const MAX_FAILURES_PER_ACCOUNT_AND_IP: usize = 5;
/// Failures allowed per client address within the window, across all accounts.
pub const MAX_FAILURES_PER_IP: usize = 20;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;

thread_local! {
    /// Argon2's 19 MiB of working memory, allocated once per hashing thread and reused:
    /// allocated afresh for every hash, it would pile up in the allocator's arenas.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 into `out` with this thread's working memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    block_count: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.len() < block_count {
            blocks.resize(block_count, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..block_count])
    })
}

/// Argon2id with OWASP's recommended parameters (19 MiB, two passes, one lane), as a
/// PHC string.
pub fn hash_password(password: &Password) -> Result<String> {
    let failed = |e: String| Error::internal(anyhow::anyhow!("password hashing failed: {e}"));
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buffer)
        .map_err(|e| failed(e.to_string()))?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(argon2_into(
            &argon2,
            params.block_count(),
            password.expose().as_bytes(),
            salt_bytes,
            out,
        )?)
    })
    .map_err(|e| failed(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (compared in constant time).
pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let block_count = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    argon2_into(
        &argon2,
        block_count,
        password.as_bytes(),
        salt_bytes,
        &mut out,
    )
    .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Verifying against this when the account does not exist keeps timing the same.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0cR6W8fBmxIRHVbEPYWVvRmXTyGnLrhvQt7ku2CJcX4";

pub const BAD_CREDENTIALS: &str = "That email and password do not match an account.";

/// Signs a person in, or says why not. Each attempt is recorded as a failure *before*
/// the password is checked, under a lock per client address, so that parallel guesses
/// count at once; a right password then marks it a success.
pub async fn sign_in(
    db: &Db,
    ctx: &ServiceContext,
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
    let (attempt_id, user) = db
        .transaction(move |conn| {
            sign_in_attempts::lock_client(conn, &lookup_ip)?;
            check_throttle(conn, &lookup_email, &lookup_ip)?;
            let attempt_id = sign_in_attempts::record(conn, &lookup_email, &lookup_ip, false)?;
            Ok((attempt_id, users::find_by_email(conn, &lookup_email)?))
        })
        .await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let succeeded = ctx.hashing.verify(password, hash).await?;
    match user {
        Some(user) if succeeded => {
            let id = user.id;
            db.transaction(move |conn| {
                sign_in_attempts::mark_succeeded(conn, attempt_id)?;
                users::record_sign_in(conn, id)?;
                Ok(())
            })
            .await?;
            if user.is_active {
                Ok(user)
            } else {
                Err(Error::Forbidden(
                    "This account has been deactivated. Contact your administrator.".into(),
                ))
            }
        }
        user => {
            if let Some(user) = user {
                let ctx = ctx.clone();
                db.transaction(move |conn| warn_owner_if_throttled(conn, &ctx, &user, &client_ip))
                    .await?;
            }
            Err(Error::invalid("password", BAD_CREDENTIALS))
        }
    }
}

/// The owner hears of guessing once the guesser is throttled, at most once a window.
fn warn_owner_if_throttled(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    user: &User,
    client_ip: &str,
) -> Result<()> {
    // Under the client's lock, so that parallel failures send one notice, not several.
    sign_in_attempts::lock_client(conn, client_ip)?;
    let window = Duration::minutes(THROTTLE_WINDOW_MINUTES);
    let failures =
        sign_in_attempts::recent_failures(conn, Some(&user.email), client_ip, Utc::now() - window)?
            .len();
    if failures < MAX_FAILURES_PER_ACCOUNT_AND_IP
        || crate::models::outbox::sent_recently(
            conn,
            &user.email,
            "sign_in_warning",
            Utc::now() - window,
        )?
    {
        return Ok(());
    }
    let email = messages::account_notice(
        &ctx.base_url,
        &AccountNotice::SignInAttempts {
            client_ip: client_ip.to_string(),
            failures,
        },
        &user.email,
        &user.full_name,
    )?;
    crate::mail::queue(conn, &ctx.sealer, email)?;
    Ok(())
}

fn minutes_until(unlock: chrono::DateTime<Utc>) -> i64 {
    let seconds = (unlock - Utc::now()).num_seconds().max(1);
    (seconds + 59) / 60
}

fn check_throttle(conn: &mut PgConnection, email: &str, client_ip: &str) -> Result<()> {
    let window = Duration::minutes(THROTTLE_WINDOW_MINUTES);
    let since = Utc::now() - window;
    let refuse = |failures: &[chrono::DateTime<Utc>], limit: usize, what: &str| {
        let unlock = failures[failures.len() - limit] + window;
        let minutes = minutes_until(unlock);
        Error::TooManyRequests(format!(
            "Too many failed sign-ins {what}. Try again in {minutes} minute{}, or choose a new password.",
            if minutes == 1 { "" } else { "s" }
        ))
    };
    let by_account = sign_in_attempts::recent_failures(conn, Some(email), client_ip, since)?;
    if by_account.len() >= MAX_FAILURES_PER_ACCOUNT_AND_IP {
        return Err(refuse(
            &by_account,
            MAX_FAILURES_PER_ACCOUNT_AND_IP,
            "for this account from your network",
        ));
    }
    let by_ip = sign_in_attempts::recent_failures(conn, None, client_ip, since)?;
    if by_ip.len() >= MAX_FAILURES_PER_IP {
        return Err(refuse(&by_ip, MAX_FAILURES_PER_IP, "from your network"));
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
/// creation of an account happens in the same transaction. What is bound to the address
/// (invitations, and later pre-enrolments) follows only a verified one.
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
    if user.is_verified() {
        after_email_proven(conn, &user)?;
    }
    Ok(user)
}

/// What follows an account's address being proven (verified, or changed through a
/// confirmation link): invitations sent to it are linked, and pre-enrolments waiting for
/// it are fulfilled (rule 8).
pub fn after_email_proven(conn: &mut PgConnection, user: &User) -> Result<()> {
    crate::models::invitations::link_user_by_email(conn, &user.email, user.id)?;
    super::pre_enrollment::fulfil_for_user(conn, user)?;
    Ok(())
}

/// Marks the account's address as proven by an emailed link or token, if it was not yet.
pub fn prove_email(conn: &mut PgConnection, user: &User) -> Result<User> {
    if user.is_verified() {
        return Ok(user.clone());
    }
    let verified = users::mark_verified(conn, user.id)?;
    after_email_proven(conn, &verified)?;
    Ok(verified)
}

/// Ends every session of the user (logout, password change or reset, deactivation,
/// "sign out everywhere"); returns the generation a session issued now must carry.
pub fn end_sessions(conn: &mut PgConnection, user_id: i64) -> Result<i32> {
    Ok(users::end_sessions(conn, user_id)?)
}

/// Creates a staff account, or makes an existing account staff and sets its password
/// (ending the account's other sessions).
pub async fn create_staff(db: &Db, email: EmailAddress, password: Password) -> Result<User> {
    let hash = Db::cpu(move || hash_password(&password)).await?;
    db.transaction(
        move |conn| match users::find_by_email(conn, email.as_str())? {
            Some(existing) => {
                users::set_password_hash(conn, existing.id, &hash)?;
                users::set_active(conn, existing.id, true)?;
                end_sessions(conn, existing.id)?;
                prove_email(conn, &existing)?;
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

    #[test]
    fn hashes_made_the_usual_way_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::default()
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("an older password", &stored));
        assert!(!verify_password("another password", &stored));
        // And ours verify the usual way.
        use argon2::password_hash::PasswordVerifier;
        let ours = hash_password(&Password::parse("correct horse battery").unwrap()).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
    }
}
