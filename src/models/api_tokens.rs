//! API tokens: each acts as the user who made it. Only the SHA-256 of a token's secret is
//! stored; the struct below never carries even that.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{api_tokens, users};
use super::users::User;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Neither revoked nor expired (whether its user may still use it is another matter).
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        !self.is_revoked() && !self.is_expired(now)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a [u8],
    pub expires_at: Option<DateTime<Utc>>,
}

pub fn insert(conn: &mut PgConnection, new: &NewApiToken<'_>) -> QueryResult<ApiToken> {
    diesel::insert_into(api_tokens::table)
        .values(new)
        .returning(ApiToken::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<ApiToken>> {
    api_tokens::table
        .find(id)
        .select(ApiToken::as_select())
        .first(conn)
        .optional()
}

/// The token whose secret hashes to `hash`, with its user.
pub fn find_by_hash(conn: &mut PgConnection, hash: &[u8]) -> QueryResult<Option<(ApiToken, User)>> {
    api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(hash))
        .select((ApiToken::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

/// A user's tokens, newest first.
pub fn of_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .select(ApiToken::as_select())
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .load(conn)
}

/// Revokes a token that is not revoked yet; `None` when it already was.
pub fn revoke(conn: &mut PgConnection, id: i64) -> QueryResult<Option<ApiToken>> {
    diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(diesel::dsl::now))
    .returning(ApiToken::as_returning())
    .get_result(conn)
    .optional()
}

/// Notes that a token was used, unless that was already noted since `stale_before`;
/// answers the time written, if any.
pub fn touch(
    conn: &mut PgConnection,
    id: i64,
    stale_before: DateTime<Utc>,
) -> QueryResult<Option<DateTime<Utc>>> {
    diesel::update(
        api_tokens::table.find(id).filter(
            api_tokens::last_used_at
                .is_null()
                .or(api_tokens::last_used_at.lt(stale_before)),
        ),
    )
    .set(api_tokens::last_used_at.eq(diesel::dsl::now))
    .returning(api_tokens::last_used_at)
    .get_result::<Option<DateTime<Utc>>>(conn)
    .optional()
    .map(Option::flatten)
}
