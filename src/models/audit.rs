use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::PrepareOnce;
use serde_json::Value;

use super::schema::{audit_entries, users};
use super::{PageRequest, Paginated};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_entries)]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_user_id: Option<i64>,
    pub actor_role: String,
    pub api_token_id: Option<i64>,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_entries)]
pub struct NewAuditEntry<'a> {
    pub actor_user_id: Option<i64>,
    pub actor_role: &'a str,
    pub api_token_id: Option<i64>,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<&'a str>,
}

pub fn insert(conn: &mut PgConnection, entry: &NewAuditEntry<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_entries::table)
        .values(entry)
        .execute(conn)
        .map(drop)
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub action: Option<String>,
    /// From this instant on (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Before this instant (exclusive).
    pub until: Option<DateTime<Utc>>,
}

/// An entry with the email of the person who made it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditRow {
    #[diesel(embed)]
    pub entry: AuditEntry,
    #[diesel(select_expression = users::email.nullable())]
    #[diesel(select_expression_type = diesel::dsl::Nullable<users::email>)]
    pub actor_email: Option<String>,
    #[diesel(select_expression = users::full_name.nullable())]
    #[diesel(select_expression_type = diesel::dsl::Nullable<users::full_name>)]
    pub actor_name: Option<String>,
}

type FilteredRows<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::Select<
        diesel::dsl::LeftJoinOn<
            audit_entries::table,
            users::table,
            diesel::dsl::Eq<diesel::dsl::Nullable<users::id>, audit_entries::actor_user_id>,
        >,
        diesel::dsl::AsSelect<AuditRow, diesel::pg::Pg>,
    >,
    diesel::pg::Pg,
>;

/// The entries a filter keeps, with their actors, unordered.
fn filtered(filter: &AuditFilter) -> FilteredRows<'static> {
    let mut query = audit_entries::table
        .left_join(users::table.on(users::id.nullable().eq(audit_entries::actor_user_id)))
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(partner_id) = filter.partner_id {
        query = query.filter(audit_entries::partner_id.eq(partner_id));
    }
    if let Some(catalog_id) = filter.catalog_id {
        query = query.filter(audit_entries::catalog_id.eq(catalog_id));
    }
    if let Some(actor) = filter.actor_user_id {
        query = query.filter(audit_entries::actor_user_id.eq(actor));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_entries::action.eq(action.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_entries::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_entries::occurred_at.lt(until));
    }
    query
}

pub fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    page: PageRequest,
) -> QueryResult<Paginated<AuditRow>> {
    super::keyset_page(conn, || filtered(filter), &LIST_ORDER, page)
}

/// Newest first.
const LIST_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("audit_entries.occurred_at", super::KeyKind::Time),
        ("audit_entries.id", super::KeyKind::Int),
    ],
    descending: true,
};

impl super::Keyed for AuditRow {
    fn key(&self) -> Vec<String> {
        vec![
            super::time_key(self.entry.occurred_at),
            self.entry.id.to_string(),
        ]
    }
}

/// The entries a filter keeps after the entry `after_id`, oldest first: exports read
/// them in such batches.
pub fn batch_after(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    filtered(filter)
        .filter(audit_entries::id.gt(after_id))
        .order(audit_entries::id)
        .limit(limit)
        .load(conn)
}

/// What objects of one type are called, by id, for reading the audit log.
pub fn names_of(
    conn: &mut PgConnection,
    object_type: &str,
    ids: &[i64],
) -> QueryResult<Vec<(i64, String)>> {
    #[derive(QueryableByName)]
    struct Named {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let sql = match object_type {
        "invitation" => "SELECT id, email AS name FROM invitations WHERE id = ANY($1)",
        "user" => "SELECT id, email AS name FROM users WHERE id = ANY($1)",
        "course" => "SELECT id, title AS name FROM courses WHERE id = ANY($1)",
        "catalog" => "SELECT id, name FROM catalogs WHERE id = ANY($1)",
        "partner" => "SELECT id, name FROM partners WHERE id = ANY($1)",
        "organisation" => "SELECT id, name FROM organisations WHERE id = ANY($1)",
        "licence" => {
            "SELECT l.id, c.title || ' (' || u.email || ')' AS name FROM licences l \
             JOIN courses c ON c.id = l.course_id JOIN users u ON u.id = l.user_id \
             WHERE l.id = ANY($1)"
        }
        "catalog_learner" => {
            "SELECT l.id, u.email AS name FROM catalog_learners l JOIN users u ON u.id = l.user_id \
             WHERE l.id = ANY($1)"
        }
        "bulk_job" => {
            "SELECT id, 'bulk list #' || id || ' (' || source_name || ')' AS name FROM bulk_jobs \
             WHERE id = ANY($1)"
        }
        "pending_enrollment" => {
            "SELECT id, COALESCE(email, external_provider || ':' || external_remote_id) AS name \
             FROM pending_enrollments WHERE id = ANY($1)"
        }
        "api_token" => {
            "SELECT t.id, t.name || ' (' || u.email || ')' AS name FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.id = ANY($1)"
        }
        "outbound_email" => {
            "SELECT id, 'the email to ' || to_address AS name FROM outbound_emails WHERE id = ANY($1)"
        }
        _ => return Ok(Vec::new()),
    };
    let named: Vec<Named> = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(ids)
        .prepared()
        .load(conn)?;
    Ok(named.into_iter().map(|n| (n.id, n.name)).collect())
}

/// The latest entries of a partner, newest first, without counting them all.
pub fn recent_for_partner(
    conn: &mut PgConnection,
    partner_id: i64,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    super::limited(
        audit_entries::table
            .left_join(users::table.on(users::id.nullable().eq(audit_entries::actor_user_id)))
            .filter(audit_entries::partner_id.eq(partner_id))
            .select(AuditRow::as_select())
            .order((audit_entries::occurred_at.desc(), audit_entries::id.desc())),
        limit,
    )
    .load(conn)
}

/// Every entry about one object, oldest first.
pub fn for_object(
    conn: &mut PgConnection,
    object_type: &str,
    object_id: &str,
) -> QueryResult<Vec<AuditEntry>> {
    audit_entries::table
        .filter(audit_entries::object_type.eq(object_type))
        .filter(audit_entries::object_id.eq(object_id))
        .select(AuditEntry::as_select())
        .order(audit_entries::id)
        .load(conn)
}

pub fn count(conn: &mut PgConnection) -> QueryResult<i64> {
    audit_entries::table.count().get_result(conn)
}

/// One change of a membership, with who made it.
#[derive(Debug, Clone, QueryableByName)]
pub struct HistoryRow {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub action: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub actor_role: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub actor_email: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub from_status: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub to_status: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub reason: Option<String>,
}

/// The audit entries about one person's membership of a catalog (their invitations,
/// learner rows, paid seats and pre-enrolments there), oldest first, at most `limit`.
pub fn membership_history(
    conn: &mut PgConnection,
    catalog_id: i64,
    user_id: Option<i64>,
    email: &str,
    limit: i64,
) -> QueryResult<Vec<HistoryRow>> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    diesel::sql_query(
        "SELECT a.occurred_at, a.action, a.actor_role, u.email AS actor_email,
                a.before ->> 'status' AS from_status, a.after ->> 'status' AS to_status, a.reason
         FROM audit_entries a LEFT JOIN users u ON u.id = a.actor_user_id
         WHERE a.catalog_id = $1 AND (
             (a.object_type = 'invitation' AND a.object_id IN
                 (SELECT id::text FROM invitations WHERE catalog_id = $1 AND (user_id = $2 OR email = $3)))
          OR (a.object_type = 'catalog_learner' AND a.object_id IN
                 (SELECT id::text FROM catalog_learners WHERE catalog_id = $1 AND user_id = $2))
          OR (a.object_type = 'licence' AND a.object_id IN
                 (SELECT id::text FROM licences WHERE catalog_id = $1 AND user_id = $2))
          OR (a.object_type = 'pending_enrollment' AND a.object_id IN
                 (SELECT id::text FROM pending_enrollments WHERE catalog_id = $1
                   AND (email = $3 OR fulfilled_user_id = $2))))
         ORDER BY a.occurred_at, a.id
         LIMIT $4",
    )
    .bind::<BigInt, _>(catalog_id)
    .bind::<Nullable<BigInt>, _>(user_id)
    .bind::<Text, _>(email)
    .bind::<BigInt, _>(limit)
    .prepared()
    .load(conn)
}
