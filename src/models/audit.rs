use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::schema::{audit_entries, users};
use super::{PageRequest, Paginate, Paginated};

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
}

pub fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    page: PageRequest,
) -> QueryResult<Paginated<AuditRow>> {
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
    query
        .order((audit_entries::occurred_at.desc(), audit_entries::id.desc()))
        .paginate(page)
        .load_page(conn)
}

/// The latest entries of a partner, newest first, without counting them all.
pub fn recent_for_partner(
    conn: &mut PgConnection,
    partner_id: i64,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    audit_entries::table
        .left_join(users::table.on(users::id.nullable().eq(audit_entries::actor_user_id)))
        .filter(audit_entries::partner_id.eq(partner_id))
        .select(AuditRow::as_select())
        .order((audit_entries::occurred_at.desc(), audit_entries::id.desc()))
        .limit(limit)
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
