use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::sign_in_attempts;

/// The `email` of failed API token authentications: no address looks like it (it has no
/// `@`), so they are counted apart from password sign-ins.
pub const API_TOKEN: &str = "api-token";

/// Serialises sign-in attempts from one client address until the transaction ends, so
/// that counting and recording an attempt are one step.
pub fn lock_client(conn: &mut PgConnection, client_ip: &str) -> QueryResult<()> {
    super::advisory_xact_lock(conn, &format!("sign-in:{client_ip}"))
}

/// Serialises failed API token authentications from one client address until the
/// transaction ends, like `lock_client` for sign-ins.
pub fn lock_api_token_client(conn: &mut PgConnection, client_ip: &str) -> QueryResult<()> {
    super::advisory_xact_lock(conn, &format!("api-token:{client_ip}"))
}

/// Records an attempt; returns its id.
pub fn record(
    conn: &mut PgConnection,
    email: &str,
    client_ip: &str,
    succeeded: bool,
) -> QueryResult<i64> {
    diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::email.eq(email),
            sign_in_attempts::client_ip.eq(client_ip),
            sign_in_attempts::succeeded.eq(succeeded),
        ))
        .returning(sign_in_attempts::id)
        .get_result(conn)
}

pub fn mark_succeeded(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(sign_in_attempts::table.find(id))
        .set(sign_in_attempts::succeeded.eq(true))
        .execute(conn)
        .map(drop)
}

/// Failures from a client address (for one account, if given) since `since`, stopping
/// at the last success there, oldest first.
pub fn recent_failures(
    conn: &mut PgConnection,
    email: Option<&str>,
    client_ip: &str,
    since: DateTime<Utc>,
) -> QueryResult<Vec<DateTime<Utc>>> {
    let scoped = || {
        let query = sign_in_attempts::table
            .filter(sign_in_attempts::client_ip.eq(client_ip.to_string()))
            .filter(sign_in_attempts::attempted_at.ge(since))
            .into_boxed();
        match email {
            Some(email) => query.filter(sign_in_attempts::email.eq(email.to_string())),
            // A client's password sign-ins, not its API token failures.
            None => query.filter(sign_in_attempts::email.ne(API_TOKEN)),
        }
    };
    let last_success: Option<DateTime<Utc>> = scoped()
        .filter(sign_in_attempts::succeeded.eq(true))
        .select(diesel::dsl::max(sign_in_attempts::attempted_at))
        .first(conn)?;
    scoped()
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::attempted_at.ge(last_success.unwrap_or(since).max(since)))
        .select(sign_in_attempts::attempted_at)
        .order(sign_in_attempts::attempted_at.asc())
        .load(conn)
}

pub fn prune_older_than(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(sign_in_attempts::table.filter(sign_in_attempts::attempted_at.lt(before)))
        .execute(conn)
}
