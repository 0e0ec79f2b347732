use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::sign_in_attempts;

pub fn record(
    conn: &mut PgConnection,
    email: &str,
    client_ip: &str,
    succeeded: bool,
) -> QueryResult<()> {
    diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::email.eq(email),
            sign_in_attempts::client_ip.eq(client_ip),
            sign_in_attempts::succeeded.eq(succeeded),
        ))
        .execute(conn)
        .map(drop)
}

/// Failures for an email since `since`, stopping at the last success, oldest first.
pub fn recent_failures_for_email(
    conn: &mut PgConnection,
    email: &str,
    since: DateTime<Utc>,
) -> QueryResult<Vec<DateTime<Utc>>> {
    let last_success: Option<DateTime<Utc>> = sign_in_attempts::table
        .filter(sign_in_attempts::email.eq(email))
        .filter(sign_in_attempts::succeeded.eq(true))
        .filter(sign_in_attempts::attempted_at.ge(since))
        .select(diesel::dsl::max(sign_in_attempts::attempted_at))
        .first(conn)?;
    sign_in_attempts::table
        .filter(sign_in_attempts::email.eq(email))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::attempted_at.ge(last_success.unwrap_or(since).max(since)))
        .select(sign_in_attempts::attempted_at)
        .order(sign_in_attempts::attempted_at.asc())
        .load(conn)
}

pub fn recent_failures_for_ip(
    conn: &mut PgConnection,
    client_ip: &str,
    since: DateTime<Utc>,
) -> QueryResult<Vec<DateTime<Utc>>> {
    sign_in_attempts::table
        .filter(sign_in_attempts::client_ip.eq(client_ip))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::attempted_at.ge(since))
        .select(sign_in_attempts::attempted_at)
        .order(sign_in_attempts::attempted_at.asc())
        .load(conn)
}

pub fn prune_older_than(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(sign_in_attempts::table.filter(sign_in_attempts::attempted_at.lt(before)))
        .execute(conn)
}
