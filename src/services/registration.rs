//! Accounts people create themselves: from an invitation link, by open sign-up; and
//! the one-time links that verify an address or reset a password.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use diesel::PgConnection;

use super::ServiceContext;
use super::accounts::{self, NewAccount, create_account};
use super::audit::{self, Subject};
use super::invitations;
use crate::db::Db;
use crate::domain::{EmailAddress, SecretToken, names};
use crate::error::{Error, FieldErrors, Result};
use crate::mail::messages::{AccountLink, AccountNotice};
use crate::mail::{self, messages};
use crate::models::invitations::Invitation;
use crate::models::users::{self, NewUserToken, User};
use crate::models::{outbox, partners};
use crate::policies::Actor;

pub const VERIFY_TTL_HOURS: i64 = 48;
pub const RESET_TTL_HOURS: i64 = 2;
pub const CLAIM_TTL_DAYS: i64 = 7;
/// Reset (or confirmation) emails one account may be sent in an hour; more reset emails
/// are silently not sent.
pub const MAX_RESET_EMAILS_PER_HOUR: i64 = 3;

const PURPOSE_VERIFY: &str = "verify_email";
const PURPOSE_CHANGE: &str = "change_email";
const PURPOSE_RESET: &str = "reset_password";
const PURPOSE_CLAIM: &str = "claim_manager";

pub(crate) fn issue_link(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    user: &User,
    kind: AccountLink,
    to: &str,
    new_email: Option<&str>,
) -> Result<()> {
    issue_link_returning_hash(conn, ctx, user, kind, to, new_email)?;
    Ok(())
}

/// Issues and emails a one-time link; returns the hash of its secret (the secret itself
/// goes only into the email).
fn issue_link_returning_hash(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    user: &User,
    kind: AccountLink,
    to: &str,
    new_email: Option<&str>,
) -> Result<Vec<u8>> {
    let (purpose, ttl) = match kind {
        AccountLink::VerifyEmail => (PURPOSE_VERIFY, Duration::hours(VERIFY_TTL_HOURS)),
        AccountLink::ChangeEmail => (PURPOSE_CHANGE, Duration::hours(VERIFY_TTL_HOURS)),
        AccountLink::ResetPassword => (PURPOSE_RESET, Duration::hours(RESET_TTL_HOURS)),
        AccountLink::ClaimManager { .. } => (PURPOSE_CLAIM, Duration::days(CLAIM_TTL_DAYS)),
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
        &kind,
        to,
        &user.full_name,
        token.as_str(),
        expires_at,
    )?;
    mail::queue(conn, &ctx.sealer, email)?;
    Ok(token.hash())
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
    let accepted = invitations::accept_as(
        conn,
        &Actor::for_user(&user, None),
        &user,
        invitation.id,
        invitations::Proof::EmailedLink,
    )?;
    Ok((user, accepted))
}

/// What open sign-up came to. The person is told the same either way, so that the
/// form does not reveal which addresses have accounts.
#[derive(Debug)]
pub enum SignUp {
    /// A new, unverified account; a confirmation link was emailed.
    Created(User),
    /// The address already had an account: its owner was emailed instead.
    AlreadyRegistered,
}

/// Open sign-up's outcome, and what the browser that signed up keeps in its session.
#[derive(Debug)]
pub struct SignedUp {
    pub outcome: SignUp,
    /// Lets this browser confirm the new account's address in one step (see
    /// `LinkFollower`). Of the same size whatever the outcome, so that the session
    /// cookie does not tell the outcome either.
    pub browser_proof: String,
}

/// Open sign-up: the account starts unverified and a verification link is emailed. An
/// address that has an account gets a notice instead (at most one an hour).
pub fn sign_up(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    raw_email: &str,
    registration: &Registration,
) -> Result<SignedUp> {
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
    if let Some(existing) = users::find_by_email(conn, email.as_str())? {
        notify_owner_hourly(
            conn,
            ctx,
            &existing,
            &AccountNotice::SignUpWithExistingAddress,
        )?;
        return Ok(SignedUp {
            outcome: SignUp::AlreadyRegistered,
            // Matches no link.
            browser_proof: browser_proof(&SecretToken::generate().hash()),
        });
    }
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
    let link_hash = issue_link_returning_hash(
        conn,
        ctx,
        &user,
        AccountLink::VerifyEmail,
        &user.email.clone(),
        None,
    )?;
    Ok(SignedUp {
        outcome: SignUp::Created(user),
        browser_proof: browser_proof(&link_hash),
    })
}

/// The session's copy of a confirmation link's hash: never the secret itself.
fn browser_proof(link_hash: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(link_hash)
}

/// Tells the owner of an address that someone tried to use it, at most once an hour
/// for each kind of notice, so that nobody can flood their mailbox.
fn notify_owner_hourly(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    owner: &User,
    notice: &AccountNotice,
) -> Result<()> {
    let since = Utc::now() - Duration::hours(1);
    if outbox::sent_recently(conn, &owner.email, notice.kind(), since)? {
        return Ok(());
    }
    let email = messages::account_notice(&ctx.base_url, notice, &owner.email, &owner.full_name)?;
    mail::queue(conn, &ctx.sealer, email)?;
    Ok(())
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
    let since = Utc::now() - Duration::hours(1);
    if users::count_tokens_since(conn, user.id, PURPOSE_VERIFY, since)? >= MAX_RESET_EMAILS_PER_HOUR
    {
        return Err(Error::TooManyRequests(
            "We have sent several confirmation links in the last hour. Please use the newest one, or try again later.".into(),
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

/// Asks to move the account to another address, after checking the current password;
/// it changes once that address is confirmed. An address that has an account gets the
/// same answer, and its owner a notice instead of a link.
pub async fn request_email_change(
    db: &Db,
    ctx: &ServiceContext,
    actor: &Actor,
    raw_email: &str,
    current_password: String,
) -> Result<()> {
    let user_id = actor.require_user()?;
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("new_email", e.to_string()))?;
    if current_password.is_empty() {
        return Err(Error::invalid("current_password", "is required"));
    }
    let user = db.run(move |conn| Ok(users::find(conn, user_id)?)).await?;
    if !ctx
        .hashing
        .verify(current_password, user.password_hash.clone())
        .await?
    {
        return Err(Error::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let ctx = ctx.clone();
    db.transaction(move |conn| {
        if email.as_str() == user.email {
            return Err(Error::invalid("new_email", "is already your address"));
        }
        if let Some(owner) = users::find_by_email(conn, email.as_str())? {
            // Answered like a free address, so that nobody learns who has an account;
            // like a new request, it replaces any earlier one.
            users::expire_tokens(conn, user.id, PURPOSE_CHANGE)?;
            return notify_owner_hourly(
                conn,
                &ctx,
                &owner,
                &AccountNotice::EmailChangeToExistingAddress,
            );
        }
        issue_link(
            conn,
            &ctx,
            &user,
            AccountLink::ChangeEmail,
            email.as_str(),
            Some(email.as_str()),
        )
    })
    .await
}

/// The browser following a confirmation link, as far as the link's rule needs it.
#[derive(Debug, Clone)]
pub struct LinkFollower {
    /// The account the browser is signed in as.
    pub signed_in_as: Option<i64>,
    /// What the browser kept from a sign-up it made (`SignedUp::browser_proof`).
    pub sign_up_proof: Option<String>,
}

/// A confirmation link that can still be used, as its page shows it.
#[derive(Debug, Clone)]
pub struct ConfirmationLink {
    /// The address the link confirms.
    pub email: String,
    /// Whether it moves the account to that address, rather than confirming its own.
    pub changes_address: bool,
    /// Whether the follower must choose a new password to confirm.
    pub needs_new_password: bool,
}

/// Anyone can sign up, or ask for an address change, with somebody else's address and a
/// password of their own. So only the browser that signed up, or one signed in as the
/// account, confirms in one step; anyone else following the link proves only that they
/// read the mailbox, and must choose the password.
fn may_confirm_directly(
    token: &users::UserToken,
    link_hash: &[u8],
    follower: &LinkFollower,
) -> bool {
    follower.signed_in_as == Some(token.user_id)
        || follower
            .sign_up_proof
            .as_deref()
            .is_some_and(|proof| proof == browser_proof(link_hash))
}

/// A verification or address-change link that can be used, locked, with its hash.
fn usable_confirmation_token(
    conn: &mut PgConnection,
    raw_token: &str,
) -> Result<(users::UserToken, Vec<u8>)> {
    let link_hash = SecretToken::from_received(raw_token).hash();
    let found = users::find_token_for_update(conn, &link_hash)?
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
    if let Some(new_email) = &found.new_email {
        if users::find_by_email(conn, new_email)?.is_some() {
            return Err(Error::Conflict(format!(
                "{new_email} now belongs to another account."
            )));
        }
    }
    Ok((found, link_hash))
}

/// What a confirmation link's page shows, or why the link cannot be used. Changes nothing.
pub fn check_confirmation_link(
    conn: &mut PgConnection,
    raw_token: &str,
    follower: &LinkFollower,
) -> Result<ConfirmationLink> {
    let (found, link_hash) = usable_confirmation_token(conn, raw_token)?;
    let email = match &found.new_email {
        Some(new_email) => new_email.clone(),
        None => users::find(conn, found.user_id)?.email,
    };
    Ok(ConfirmationLink {
        email,
        changes_address: found.new_email.is_some(),
        needs_new_password: !may_confirm_directly(&found, &link_hash, follower),
    })
}

/// Uses a verification or address-change link. Single use, expiring. A follower who
/// may not confirm directly must bring a new password's hash, which replaces the
/// password. The owner of the address has spoken: every other session of the account
/// ends (the returned user carries the generation to sign in with).
pub fn confirm_email(
    conn: &mut PgConnection,
    raw_token: &str,
    follower: &LinkFollower,
    new_password_hash: Option<&str>,
) -> Result<User> {
    let (found, link_hash) = usable_confirmation_token(conn, raw_token)?;
    let new_password_hash = if may_confirm_directly(&found, &link_hash, follower) {
        None
    } else {
        Some(new_password_hash.ok_or_else(|| Error::invalid("password", "is required"))?)
    };
    users::use_token(conn, found.id)?;
    let before = users::find(conn, found.user_id)?;
    let actor = Actor::for_user(&before, None);
    if let Some(hash) = new_password_hash {
        users::set_password_hash(conn, before.id, hash)?;
    }
    let user = match &found.new_email {
        Some(new_email) => {
            let changed = users::change_email(conn, before.id, new_email)?;
            accounts::end_sessions(conn, changed.id)?;
            audit::record(
                conn,
                &actor,
                "user.email_change",
                Subject::new("user", before.id),
                Some(serde_json::json!({ "email": before.email })),
                Some(serde_json::json!({ "email": changed.email })),
                None,
            )?;
            accounts::after_email_proven(conn, &changed)?;
            users::find(conn, changed.id)?
        }
        None => {
            let verified = accounts::prove_email(conn, &before)?;
            accounts::end_sessions(conn, verified.id)?;
            audit::record(
                conn,
                &actor,
                "user.email_verify",
                Subject::new("user", before.id),
                None,
                None,
                None,
            )?;
            users::find(conn, verified.id)?
        }
    };
    if new_password_hash.is_some() {
        after_password_chosen_by_owner(conn, &user)?;
    }
    Ok(users::find(conn, user.id)?)
}

/// Sends a reset link when the address has an account; answers the same either way,
/// and sends at most a few an hour to one account.
pub fn request_password_reset(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    raw_email: &str,
) -> Result<()> {
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("email", e.to_string()))?;
    let Some(user) = users::find_by_email(conn, email.as_str())? else {
        return Ok(());
    };
    let since = Utc::now() - Duration::hours(1);
    if !user.is_active
        || users::count_tokens_since(conn, user.id, PURPOSE_RESET, since)?
            >= MAX_RESET_EMAILS_PER_HOUR
    {
        return Ok(());
    }
    issue_link(
        conn,
        ctx,
        &user,
        AccountLink::ResetPassword,
        &user.email.clone(),
        None,
    )
}

/// Which emailed link sets a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordLink {
    Reset,
    ClaimManager,
}

impl PasswordLink {
    fn purpose(self) -> &'static str {
        match self {
            PasswordLink::Reset => PURPOSE_RESET,
            PasswordLink::ClaimManager => PURPOSE_CLAIM,
        }
    }
}

fn usable_password_link(
    conn: &mut PgConnection,
    kind: PasswordLink,
    raw_token: &str,
) -> Result<users::UserToken> {
    let token = SecretToken::from_received(raw_token);
    let found = users::find_token_for_update(conn, &token.hash())?
        .filter(|t| t.purpose == kind.purpose())
        .ok_or(Error::NotFound("link"))?;
    if found.used_at.is_some() || found.expires_at <= Utc::now() {
        return Err(Error::InvalidTransition(match kind {
            PasswordLink::Reset => {
                "This link has expired or was already used. Ask for a new one.".into()
            }
            PasswordLink::ClaimManager => "This link has expired or was already used. Ask the platform's staff to send a new one, or choose a new password from the sign-in page.".into(),
        }));
    }
    Ok(found)
}

/// Whether a password link can still be used, for showing its form; and the account.
pub fn check_password_link(
    conn: &mut PgConnection,
    kind: PasswordLink,
    raw_token: &str,
) -> Result<User> {
    let found = usable_password_link(conn, kind, raw_token)?;
    Ok(users::find(conn, found.user_id)?)
}

/// Sets a new password through a reset or manager-claim link; the link then stops
/// working. The email proved the address, so the account is verified; every session of
/// it ends (whoever else knew the old password is out), and a manager role waiting for
/// this person takes effect.
pub fn set_password_with_link(
    conn: &mut PgConnection,
    kind: PasswordLink,
    raw_token: &str,
    password_hash: &str,
) -> Result<User> {
    let found = usable_password_link(conn, kind, raw_token)?;
    users::use_token(conn, found.id)?;
    users::set_password_hash(conn, found.user_id, password_hash)?;
    let user = users::find(conn, found.user_id)?;
    let user = accounts::prove_email(conn, &user)?;
    accounts::end_sessions(conn, user.id)?;
    after_password_chosen_by_owner(conn, &user)?;
    Ok(users::find(conn, user.id)?)
}

/// What follows a password chosen through a link emailed to the account's address:
/// no other link may set it again, and a manager role waiting for this person takes
/// effect.
fn after_password_chosen_by_owner(conn: &mut PgConnection, user: &User) -> Result<()> {
    // Each of these links proves the same thing; none may be used again.
    users::expire_tokens(conn, user.id, PURPOSE_RESET)?;
    users::expire_tokens(conn, user.id, PURPOSE_CLAIM)?;
    let actor = Actor::for_user(user, None);
    audit::record(
        conn,
        &actor,
        "user.password_reset",
        Subject::new("user", user.id),
        None,
        None,
        None,
    )?;
    if let Some(partner_id) = partners::claim_manager(conn, user.id)? {
        audit::record(
            conn,
            &actor,
            "partner.manager_claim",
            Subject::new("partner", partner_id).partner(partner_id),
            None,
            Some(serde_json::json!({ "user_id": user.id, "email": user.email })),
            None,
        )?;
    }
    Ok(())
}
