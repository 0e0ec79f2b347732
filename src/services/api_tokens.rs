//! API tokens for the JSON API. A token acts as the user who made it (rule 10); only staff
//! and partner managers who have taken on their role may hold them. The secret is shown
//! once, when the token is made; only its SHA-256 is stored. Failed authentications are
//! throttled per client address, like sign-ins.

use chrono::{DateTime, Duration, Utc};
use diesel::{Connection, PgConnection};

use super::audit::{self, Subject};
use crate::domain::{EmailAddress, SecretToken};
use crate::error::{Error, Result};
use crate::models::api_tokens::{self, ApiToken, NewApiToken};
use crate::models::users::{self, User};
use crate::models::{partners, sign_in_attempts};
use crate::policies::Actor;

/// Every secret starts with this, so that a leaked one is easy to search for.
pub const PREFIX: &str = "pct_";
/// The longest name a token may have.
pub const MAX_NAME_CHARS: usize = 100;
/// Failed authentications one client address may make within the window.
pub const MAX_FAILURES_PER_IP: usize = 10;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
/// How stale `last_used_at` may get before a use writes it again: at most one write
/// per token in this many seconds, however many requests it makes.
pub const LAST_USED_PRECISION_SECONDS: i64 = 60;

const NOT_ALLOWED: &str =
    "Only staff and partner managers who have taken on their role may hold API tokens.";

/// A token's name, as typed: required, on one line, at most 100 characters.
pub fn parse_name(raw: &str) -> Result<String> {
    crate::domain::names::required_single_line(raw, MAX_NAME_CHARS)
        .map_err(|message| Error::invalid("name", message))
}

/// Someone who may hold API tokens now.
struct Holder {
    /// The partner they manage, if any: their tokens' audit entries belong to it too.
    partner_id: Option<i64>,
}

/// An active account that is staff or a manager who has taken on the role may hold
/// tokens; anyone else (deactivated, role removed, never had one) may not.
fn holder(conn: &mut PgConnection, user: &User) -> Result<Option<Holder>> {
    if !user.is_active {
        return Ok(None);
    }
    let partner_id = partners::managed_by(conn, user.id)?.map(|p| p.id);
    Ok((user.is_staff || partner_id.is_some()).then_some(Holder { partner_id }))
}

fn subject(token: &ApiToken, partner_id: Option<i64>) -> Subject<'static> {
    let subject = Subject::new("api_token", token.id);
    match partner_id {
        Some(partner_id) => subject.partner(partner_id),
        None => subject,
    }
}

/// Makes a token for the signed-in person; answers it with its secret, which is not kept
/// anywhere and cannot be shown again.
pub fn create(conn: &mut PgConnection, actor: &Actor, name: &str) -> Result<(ApiToken, String)> {
    if actor.api_token_id.is_some() {
        return Err(Error::Forbidden(
            "An API token cannot make API tokens: use the API tokens page.".into(),
        ));
    }
    let owner = users::find(conn, actor.require_user()?)?;
    issue(conn, actor, &owner, name)
}

/// Makes a token for the account with this address, on an operator's behalf (the
/// command line); the audit trail records the platform as the maker.
pub fn create_for_email(
    conn: &mut PgConnection,
    raw_email: &str,
    name: &str,
) -> Result<(ApiToken, String)> {
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("email", e.to_string()))?;
    let owner = users::find_by_email(conn, email.as_str())?
        .ok_or(Error::NotFound("an account with this email address"))?;
    issue(conn, &Actor::system(), &owner, name)
}

fn issue(
    conn: &mut PgConnection,
    actor: &Actor,
    owner: &User,
    raw_name: &str,
) -> Result<(ApiToken, String)> {
    let Some(Holder { partner_id }) = holder(conn, owner)? else {
        return Err(Error::Forbidden(NOT_ALLOWED.into()));
    };
    let name = parse_name(raw_name)?;
    let secret = format!("{PREFIX}{}", SecretToken::generate().into_string());
    let hash = SecretToken::from_received(&secret).hash();
    let token = api_tokens::insert(
        conn,
        &NewApiToken {
            user_id: owner.id,
            name: &name,
            token_hash: &hash,
            expires_at: None,
        },
    )?;
    audit::record(
        conn,
        actor,
        "api_token.create",
        subject(&token, partner_id),
        None,
        Some(audit::to_json(&token)?),
        None,
    )?;
    Ok((token, secret))
}

/// The signed-in person's tokens, newest first, revoked ones included.
pub fn list_own(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<ApiToken>> {
    Ok(api_tokens::of_user(conn, actor.require_user()?)?)
}

/// One token its owner (or staff) may see; anyone else's does not exist (rule 10).
pub fn find_own(conn: &mut PgConnection, actor: &Actor, token_id: i64) -> Result<ApiToken> {
    let user_id = actor.require_user()?;
    api_tokens::find(conn, token_id)?
        .filter(|token| token.user_id == user_id || actor.is_staff)
        .ok_or(Error::NotFound("API token"))
}

/// Revokes one of the person's own tokens (staff: anyone's); at once, for good. Revoking a
/// revoked token changes nothing.
pub fn revoke(
    conn: &mut PgConnection,
    actor: &Actor,
    token_id: i64,
    reason: Option<&str>,
) -> Result<()> {
    let before = find_own(conn, actor, token_id)?;
    let Some(after) = api_tokens::revoke(conn, before.id)? else {
        return Ok(());
    };
    let partner_id = partners::managed_by(conn, before.user_id)?.map(|p| p.id);
    audit::record(
        conn,
        actor,
        "api_token.revoke",
        subject(&after, partner_id),
        Some(audit::to_json(&before)?),
        Some(audit::to_json(&after)?),
        reason,
    )
}

/// Who a presented token acts for: `Ok(None)` when it is not a valid token (unknown,
/// revoked, expired, its user deactivated or no longer staff nor a manager), which is
/// recorded as a failure of `client_ip`. After `MAX_FAILURES_PER_IP` failures from one
/// address within `THROTTLE_WINDOW_MINUTES`, every token from there, valid or not, is
/// answered `Error::TooManyRequests` until the oldest of them leaves the window.
///
/// Runs in a transaction of its own (a savepoint inside the caller's). Commit the
/// caller's transaction on `Ok(None)` too, or the failure is not counted: run this in
/// its own `Db::transaction` and turn `None` into a 401 outside it.
pub fn authenticate(
    conn: &mut PgConnection,
    presented: &str,
    client_ip: &str,
) -> Result<Option<(User, ApiToken)>> {
    conn.transaction(|conn| {
        let now = Utc::now();
        // A valid token is never held up: a neighbour on the same network address
        // sending bad tokens must not lock its owner out. Only failures queue and count.
        if let Some(found) = valid_token(conn, presented, now)? {
            return Ok(Some(found));
        }
        sign_in_attempts::lock_api_token_client(conn, client_ip)?;
        check_throttle(conn, client_ip, now)?;
        sign_in_attempts::record(conn, sign_in_attempts::API_TOKEN, client_ip, false)?;
        Ok(None)
    })
}

fn check_throttle(conn: &mut PgConnection, client_ip: &str, now: DateTime<Utc>) -> Result<()> {
    let window = Duration::minutes(THROTTLE_WINDOW_MINUTES);
    let failures = sign_in_attempts::recent_failures(
        conn,
        Some(sign_in_attempts::API_TOKEN),
        client_ip,
        now - window,
    )?;
    if failures.len() < MAX_FAILURES_PER_IP {
        return Ok(());
    }
    let unlock = failures[failures.len() - MAX_FAILURES_PER_IP] + window;
    let minutes = ((unlock - now).num_seconds().max(1) + 59) / 60;
    Err(Error::TooManyRequests(format!(
        "Too many failed API token attempts from your network. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )))
}

fn valid_token(
    conn: &mut PgConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Option<(User, ApiToken)>> {
    let presented = SecretToken::from_received(presented);
    if !presented.as_str().starts_with(PREFIX) {
        return Ok(None);
    }
    let Some((mut token, user)) = api_tokens::find_by_hash(conn, &presented.hash())? else {
        return Ok(None);
    };
    if !token.is_usable(now) || holder(conn, &user)?.is_none() {
        return Ok(None);
    }
    let stale_before = now - Duration::seconds(LAST_USED_PRECISION_SECONDS);
    if token.last_used_at.is_none_or(|at| at < stale_before)
        && let Some(at) = api_tokens::touch(conn, token.id, stale_before)?
    {
        token.last_used_at = Some(at);
    }
    Ok(Some((user, token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_required_on_one_line_and_short() {
        assert_eq!(parse_name("  CI sync ").unwrap(), "CI sync");
        for bad in [
            "",
            "   ",
            "two\nlines",
            "tab\there",
            "x".repeat(101).as_str(),
        ] {
            let error = parse_name(bad).unwrap_err();
            assert!(
                error.field_errors().unwrap().get("name").is_some(),
                "{bad:?}"
            );
        }
        assert!(parse_name(&"é".repeat(100)).is_ok());
    }
}
