use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{external_identities, user_tokens, users};
use super::{PageRequest, Paginated, contains_pattern};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub full_name: String,
    pub password_hash: Option<String>,
    pub is_staff: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Sessions issued under an older generation are no longer valid.
    pub session_generation: i32,
}

impl User {
    pub fn display_name(&self) -> &str {
        if self.full_name.trim().is_empty() {
            &self.email
        } else {
            &self.full_name
        }
    }

    pub fn is_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub full_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_staff: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
}

pub fn insert(conn: &mut PgConnection, new: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
    users::table.find(id).select(User::as_select()).first(conn)
}

/// A signed-in person in one round trip: the account, the partner they manage (a claimed
/// role) and, for staff, how many bulk lists wait for approval.
pub fn find_with_role(
    conn: &mut PgConnection,
    id: i64,
) -> QueryResult<Option<(User, Option<super::partners::Partner>, i64)>> {
    use super::schema::{bulk_jobs, partner_managers, partners};
    let waiting = bulk_jobs::table
        .filter(bulk_jobs::status.eq(super::bulk::PENDING_APPROVAL))
        .count()
        .single_value();
    let found: Option<(User, Option<super::partners::Partner>, Option<i64>)> = users::table
        .find(id)
        .left_join(
            partner_managers::table.on(partner_managers::user_id
                .eq(users::id)
                .and(partner_managers::claimed_at.is_not_null())),
        )
        .left_join(partners::table.on(partners::id.eq(partner_managers::partner_id)))
        .select((
            User::as_select(),
            Option::<super::partners::Partner>::as_select(),
            diesel::dsl::case_when(users::is_staff, waiting).otherwise(None::<i64>),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(user, partner, waiting)| (user, partner, waiting.unwrap_or(0))))
}

pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn lock(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
    users::table
        .find(id)
        .select(User::as_select())
        .for_update()
        .first(conn)
}

pub fn search(
    conn: &mut PgConnection,
    search: &str,
    page: PageRequest,
) -> QueryResult<Paginated<User>> {
    let query = || {
        let mut query = users::table.select(User::as_select()).into_boxed();
        if !search.trim().is_empty() {
            let pattern = contains_pattern(search);
            query = query.filter(
                users::email
                    .like(super::lower_text(pattern.clone()))
                    .or(users::full_name.ilike(pattern)),
            );
        }
        query
    };
    super::keyset_page(conn, query, &SEARCH_ORDER, page.searching(search))
}

/// Newest first.
const SEARCH_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("users.created_at", super::KeyKind::Time),
        ("users.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for User {
    fn key(&self) -> Vec<String> {
        vec![super::time_key(self.created_at), self.id.to_string()]
    }
}

pub fn set_staff(conn: &mut PgConnection, id: i64, is_staff: bool) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((
            users::is_staff.eq(is_staff),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
}

pub fn set_active(conn: &mut PgConnection, id: i64, is_active: bool) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((
            users::is_active.eq(is_active),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
}

pub fn set_password_hash(conn: &mut PgConnection, id: i64, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .map(drop)
}

pub fn set_full_name(conn: &mut PgConnection, id: i64, full_name: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::full_name.eq(full_name),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .map(drop)
}

pub fn mark_verified(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((
            users::email_verified_at.eq(Some(Utc::now())),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
}

pub fn change_email(conn: &mut PgConnection, id: i64, email: &str) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(email),
            users::email_verified_at.eq(Some(Utc::now())),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
}

/// Ends every session of the user; returns the new generation.
pub fn end_sessions(conn: &mut PgConnection, id: i64) -> QueryResult<i32> {
    diesel::update(users::table.find(id))
        .set(users::session_generation.eq(users::session_generation + 1))
        .returning(users::session_generation)
        .get_result(conn)
}

pub fn record_sign_in(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_sign_in_at.eq(Some(Utc::now())))
        .execute(conn)
        .map(drop)
}

pub fn count_staff(conn: &mut PgConnection) -> QueryResult<i64> {
    users::table
        .filter(users::is_staff.eq(true).and(users::is_active.eq(true)))
        .count()
        .get_result(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_tokens)]
pub struct UserToken {
    pub id: i64,
    pub user_id: i64,
    pub purpose: String,
    pub new_email: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = user_tokens)]
pub struct NewUserToken<'a> {
    pub user_id: i64,
    pub purpose: &'a str,
    pub token_hash: &'a [u8],
    pub new_email: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

pub fn insert_token(conn: &mut PgConnection, new: &NewUserToken<'_>) -> QueryResult<()> {
    diesel::insert_into(user_tokens::table)
        .values(new)
        .execute(conn)
        .map(drop)
}

pub fn find_token_for_update(
    conn: &mut PgConnection,
    hash: &[u8],
) -> QueryResult<Option<UserToken>> {
    user_tokens::table
        .filter(user_tokens::token_hash.eq(hash))
        .select(UserToken::as_select())
        .for_update()
        .first(conn)
        .optional()
}

pub fn use_token(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(user_tokens::table.find(id))
        .set(user_tokens::used_at.eq(Some(Utc::now())))
        .execute(conn)
        .map(drop)
}

/// How many links of this purpose the user was sent since `since`.
pub fn count_tokens_since(
    conn: &mut PgConnection,
    user_id: i64,
    purpose: &str,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    user_tokens::table
        .filter(user_tokens::user_id.eq(user_id))
        .filter(user_tokens::purpose.eq(purpose))
        .filter(user_tokens::created_at.ge(since))
        .count()
        .get_result(conn)
}

/// Older unused tokens of the same purpose stop working when a new one is issued.
pub fn expire_tokens(conn: &mut PgConnection, user_id: i64, purpose: &str) -> QueryResult<()> {
    diesel::update(
        user_tokens::table
            .filter(user_tokens::user_id.eq(user_id))
            .filter(user_tokens::purpose.eq(purpose))
            .filter(user_tokens::used_at.is_null()),
    )
    .set(user_tokens::expires_at.eq(diesel::dsl::now))
    .execute(conn)
    .map(drop)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = external_identities)]
pub struct ExternalIdentity {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub remote_id: String,
}

impl ExternalIdentity {
    /// Shown as `provider:remote_id`.
    pub fn display(&self) -> String {
        format!("{}:{}", self.provider, self.remote_id)
    }
}

pub fn identities_of(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<ExternalIdentity>> {
    external_identities::table
        .filter(external_identities::user_id.eq(user_id))
        .select(ExternalIdentity::as_select())
        .order(external_identities::id)
        .load(conn)
}

/// The identity with this provider and remote id, if linked to someone.
pub fn find_identity(
    conn: &mut PgConnection,
    provider: &str,
    remote_id: &str,
) -> QueryResult<Option<ExternalIdentity>> {
    external_identities::table
        .filter(external_identities::provider.eq(provider))
        .filter(external_identities::remote_id.eq(remote_id))
        .select(ExternalIdentity::as_select())
        .first(conn)
        .optional()
}

pub fn link_identity(
    conn: &mut PgConnection,
    user_id: i64,
    provider: &str,
    remote_id: &str,
) -> QueryResult<ExternalIdentity> {
    diesel::insert_into(external_identities::table)
        .values((
            external_identities::user_id.eq(user_id),
            external_identities::provider.eq(provider),
            external_identities::remote_id.eq(remote_id),
        ))
        .returning(ExternalIdentity::as_returning())
        .get_result(conn)
}

pub fn find_identity_by_id(conn: &mut PgConnection, id: i64) -> QueryResult<ExternalIdentity> {
    external_identities::table
        .find(id)
        .select(ExternalIdentity::as_select())
        .first(conn)
}

pub fn unlink_identity(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(external_identities::table.find(id)).execute(conn)
}

/// Verified, active accounts with any of these addresses.
pub fn verified_by_emails(conn: &mut PgConnection, emails: &[String]) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::email.eq_any(emails))
        .filter(users::email_verified_at.is_not_null())
        .filter(users::is_active.eq(true))
        .select(User::as_select())
        .load(conn)
}

/// Active accounts linked to any of these identities, with the identity.
pub fn by_identities(
    conn: &mut PgConnection,
    keys: &[(String, String)],
) -> QueryResult<Vec<(ExternalIdentity, User)>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(500) {
        let mut query = external_identities::table
            .inner_join(users::table)
            .filter(users::is_active.eq(true))
            .select((ExternalIdentity::as_select(), User::as_select()))
            .into_boxed();
        let mut any = None::<
            Box<dyn BoxableExpression<_, diesel::pg::Pg, SqlType = diesel::sql_types::Bool>>,
        >;
        for (provider, remote_id) in chunk {
            let one = external_identities::provider
                .eq(provider.clone())
                .and(external_identities::remote_id.eq(remote_id.clone()));
            any = Some(match any {
                None => Box::new(one),
                Some(before) => Box::new(before.or(one)),
            });
        }
        if let Some(any) = any {
            query = query.filter(any);
            found.extend(query.load::<(ExternalIdentity, User)>(conn)?);
        }
    }
    Ok(found)
}
