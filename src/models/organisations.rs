use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::organisations;
use super::{PageRequest, Paginated, contains_pattern};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = organisations)]
pub struct Organisation {
    pub id: i64,
    pub short_name: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = organisations)]
pub struct OrganisationForm<'a> {
    pub short_name: &'a str,
    pub name: &'a str,
}

pub fn insert(conn: &mut PgConnection, form: &OrganisationForm<'_>) -> QueryResult<Organisation> {
    diesel::insert_into(organisations::table)
        .values(form)
        .returning(Organisation::as_returning())
        .get_result(conn)
}

pub fn update(
    conn: &mut PgConnection,
    id: i64,
    form: &OrganisationForm<'_>,
) -> QueryResult<Organisation> {
    diesel::update(organisations::table.find(id))
        .set((form, organisations::updated_at.eq(diesel::dsl::now)))
        .returning(Organisation::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Organisation> {
    organisations::table
        .find(id)
        .select(Organisation::as_select())
        .first(conn)
}

pub fn find_by_short_name(
    conn: &mut PgConnection,
    short_name: &str,
) -> QueryResult<Option<Organisation>> {
    organisations::table
        .filter(organisations::short_name.eq(short_name))
        .select(Organisation::as_select())
        .first(conn)
        .optional()
}

pub fn all(conn: &mut PgConnection) -> QueryResult<Vec<Organisation>> {
    organisations::table
        .select(Organisation::as_select())
        .order(organisations::short_name)
        .load(conn)
}

pub fn search(
    conn: &mut PgConnection,
    search: &str,
    page: PageRequest,
) -> QueryResult<Paginated<Organisation>> {
    let query = || {
        let mut query = organisations::table
            .select(Organisation::as_select())
            .into_boxed();
        if !search.trim().is_empty() {
            let pattern = contains_pattern(search);
            query = query.filter(
                organisations::short_name
                    .ilike(pattern.clone())
                    .or(organisations::name.ilike(pattern)),
            );
        }
        query
    };
    super::keyset_page(conn, query, &SEARCH_ORDER, page.searching(search))
}

/// By short name (with the id, should two ever read alike).
const SEARCH_ORDER: super::SortKey = super::SortKey {
    columns: &[
        ("organisations.short_name", super::KeyKind::Text),
        ("organisations.id", super::KeyKind::Int),
    ],
    descending: false,
};

impl super::Keyed for Organisation {
    fn key(&self) -> Vec<String> {
        vec![self.short_name.clone(), self.id.to_string()]
    }
}
