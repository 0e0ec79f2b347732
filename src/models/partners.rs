use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{organisations, partner_managers, partners, users};
use super::users::User;
use super::{PageRequest, Paginated, contains_pattern};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = partners)]
pub struct Partner {
    pub id: i64,
    pub organisation_id: i64,
    pub code: String,
    pub name: String,
    pub homepage_url: String,
    pub logo_url: String,
    pub accent_colour: String,
    pub email_sender_name: String,
    pub support_email: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Partner {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[derive(Debug, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = partners)]
pub struct PartnerForm<'a> {
    pub organisation_id: i64,
    pub code: &'a str,
    pub name: &'a str,
    pub homepage_url: &'a str,
    pub logo_url: &'a str,
    pub accent_colour: &'a str,
    pub email_sender_name: &'a str,
    pub support_email: &'a str,
    pub time_zone: &'a str,
}

pub fn insert(conn: &mut PgConnection, form: &PartnerForm<'_>) -> QueryResult<Partner> {
    diesel::insert_into(partners::table)
        .values(form)
        .returning(Partner::as_returning())
        .get_result(conn)
}

pub fn update(conn: &mut PgConnection, id: i64, form: &PartnerForm<'_>) -> QueryResult<Partner> {
    diesel::update(partners::table.find(id))
        .set((form, partners::updated_at.eq(diesel::dsl::now)))
        .returning(Partner::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Partner> {
    partners::table
        .find(id)
        .select(Partner::as_select())
        .first(conn)
}

pub fn find_by_code(conn: &mut PgConnection, code: &str) -> QueryResult<Option<Partner>> {
    partners::table
        .filter(partners::code.eq(code))
        .select(Partner::as_select())
        .first(conn)
        .optional()
}

/// The partner with this code and its catalog with this id, if the catalog is the
/// partner's: one statement for the console's pages about a catalog.
pub fn find_by_code_with_catalog(
    conn: &mut PgConnection,
    code: &str,
    catalog_id: i64,
) -> QueryResult<Option<(Partner, Option<super::catalogs::Catalog>)>> {
    use super::schema::catalogs;
    partners::table
        .left_join(
            catalogs::table.on(catalogs::partner_id
                .eq(partners::id)
                .and(catalogs::id.eq(catalog_id))),
        )
        .filter(partners::code.eq(code))
        .select((
            Partner::as_select(),
            Option::<super::catalogs::Catalog>::as_select(),
        ))
        .first(conn)
        .optional()
}

/// A partner listed with its organisation's short name.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PartnerRow {
    #[diesel(embed)]
    pub partner: Partner,
    #[diesel(select_expression = organisations::short_name)]
    pub organisation: String,
}

pub fn search(
    conn: &mut PgConnection,
    search: &str,
    page: PageRequest,
) -> QueryResult<Paginated<PartnerRow>> {
    let query = || {
        let mut query = partners::table
            .inner_join(organisations::table)
            .select(PartnerRow::as_select())
            .into_boxed();
        if !search.trim().is_empty() {
            let pattern = contains_pattern(search);
            query = query.filter(
                partners::code
                    .ilike(pattern.clone())
                    .or(partners::name.ilike(pattern.clone()))
                    .or(organisations::short_name.ilike(pattern)),
            );
        }
        query
    };
    super::keyset_page(conn, query, &SEARCH_ORDER, page.searching(search))
}

/// By name (the id parts equal names).
const SEARCH_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("partners.name", super::KeyKind::Text),
        ("partners.id", super::KeyKind::Int),
    ],
    descending: false,
};

impl super::Keyed for PartnerRow {
    fn key(&self) -> Vec<String> {
        vec![self.partner.name.clone(), self.partner.id.to_string()]
    }
}

/// Serialises the counting of a partner's recent invitation emails with sending more.
pub fn lock_for_invitation_cap(conn: &mut PgConnection, partner_id: i64) -> QueryResult<()> {
    super::advisory_xact_lock(conn, &format!("invitation-cap:{partner_id}"))
}

/// The partner a user manages, if any: only a claimed role takes effect.
pub fn managed_by(conn: &mut PgConnection, user_id: i64) -> QueryResult<Option<Partner>> {
    partner_managers::table
        .inner_join(partners::table)
        .filter(partner_managers::user_id.eq(user_id))
        .filter(partner_managers::claimed_at.is_not_null())
        .select(Partner::as_select())
        .first(conn)
        .optional()
}

/// For each of these users assigned as a manager: the partner's name and code, and
/// whether the role is claimed.
pub fn assignments_of(
    conn: &mut PgConnection,
    user_ids: &[i64],
) -> QueryResult<Vec<(i64, String, String, bool)>> {
    partner_managers::table
        .inner_join(partners::table)
        .filter(partner_managers::user_id.eq_any(user_ids))
        .select((
            partner_managers::user_id,
            partners::name,
            partners::code,
            partner_managers::claimed_at.is_not_null(),
        ))
        .load(conn)
}

/// The partner a user is assigned to, claimed or not, and whether it is claimed.
pub fn assignment_of(
    conn: &mut PgConnection,
    user_id: i64,
) -> QueryResult<Option<(Partner, bool)>> {
    partner_managers::table
        .inner_join(partners::table)
        .filter(partner_managers::user_id.eq(user_id))
        .select((
            Partner::as_select(),
            partner_managers::claimed_at.is_not_null(),
        ))
        .first(conn)
        .optional()
}

/// A partner's managers, with whether each has claimed the role.
pub fn managers_of(conn: &mut PgConnection, partner_id: i64) -> QueryResult<Vec<(User, bool)>> {
    partner_managers::table
        .inner_join(users::table.on(users::id.eq(partner_managers::user_id)))
        .filter(partner_managers::partner_id.eq(partner_id))
        .select((
            User::as_select(),
            partner_managers::claimed_at.is_not_null(),
        ))
        .order(users::email)
        .load(conn)
}

/// The role takes effect.
pub fn claim_manager(conn: &mut PgConnection, user_id: i64) -> QueryResult<Option<i64>> {
    diesel::update(
        partner_managers::table
            .filter(partner_managers::user_id.eq(user_id))
            .filter(partner_managers::claimed_at.is_null()),
    )
    .set(partner_managers::claimed_at.eq(diesel::dsl::now))
    .returning(partner_managers::partner_id)
    .get_result(conn)
    .optional()
}

pub fn assign_manager(
    conn: &mut PgConnection,
    partner_id: i64,
    user_id: i64,
    assigned_by: i64,
    claimed: bool,
) -> QueryResult<()> {
    diesel::insert_into(partner_managers::table)
        .values((
            partner_managers::partner_id.eq(partner_id),
            partner_managers::user_id.eq(user_id),
            partner_managers::assigned_by.eq(assigned_by),
            partner_managers::claimed_at.eq(claimed.then(chrono::Utc::now)),
        ))
        .execute(conn)
        .map(drop)
}

pub fn unassign_manager(
    conn: &mut PgConnection,
    partner_id: i64,
    user_id: i64,
) -> QueryResult<usize> {
    diesel::delete(
        partner_managers::table
            .filter(partner_managers::partner_id.eq(partner_id))
            .filter(partner_managers::user_id.eq(user_id)),
    )
    .execute(conn)
}
