//! Diesel structs and query functions, one file per aggregate. Query functions take
//! `&mut PgConnection` and return `QueryResult`; services compose them in transactions.

pub mod analytics;
pub mod api_tokens;
pub mod audit;
pub mod bulk;
pub mod catalog_counts;
pub mod catalogs;
pub mod courses;
pub mod enrollments;
pub mod events;
pub mod invitations;
pub mod learners;
pub mod organisations;
pub mod outbox;
pub mod partners;
pub mod pending_enrollments;
pub mod refused_joins;
pub mod schema;
pub mod sign_in_attempts;
pub mod users;
pub mod xapi;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::*;
use diesel::sql_types::BigInt;

pub const DEFAULT_PER_PAGE: i64 = 25;
pub const MAX_PER_PAGE: i64 = 100;
/// Page numbers beyond this are read as this one (and show as empty).
pub const MAX_PAGE: i64 = 1_000_000;

/// A requested page: 1-based, with a bounded size.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub per_page: i64,
}

impl PageRequest {
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Self {
        Self {
            page: page.unwrap_or(1).clamp(1, MAX_PAGE),
            per_page: per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE),
        }
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// One page of results and the total across all pages.
#[derive(Debug, Clone)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    /// The list holds more than `total` entries: counting stopped there.
    pub total_is_lower_bound: bool,
}

impl<T> Paginated<T> {
    pub fn empty(request: PageRequest) -> Self {
        Self {
            items: Vec::new(),
            page: request.page,
            per_page: request.per_page,
            total: 0,
            total_is_lower_bound: false,
        }
    }

    pub fn total_pages(&self) -> i64 {
        // Saturating: a page number far past the end must not overflow.
        (self.total.saturating_add(self.per_page - 1) / self.per_page.max(1)).max(1)
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paginated<U> {
        Paginated {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            per_page: self.per_page,
            total: self.total,
            total_is_lower_bound: self.total_is_lower_bound,
        }
    }
}

/// A query to be read one page at a time. The page is one `LIMIT … OFFSET` query that
/// can walk an index in order; the total is a separate `COUNT(*)`, run only when the page
/// does not already tell it (a short page is the last one).
#[derive(Debug, Clone, Copy)]
pub struct PaginatedQuery<T> {
    query: T,
    page: i64,
    per_page: i64,
    offset: i64,
}

pub trait Paginate: Sized {
    fn paginate(self, request: PageRequest) -> PaginatedQuery<Self>;
}

impl<T> Paginate for T {
    fn paginate(self, request: PageRequest) -> PaginatedQuery<Self> {
        PaginatedQuery {
            query: self,
            page: request.page,
            per_page: request.per_page,
            offset: request.offset(),
        }
    }
}

/// `query LIMIT n OFFSET m`, borrowing the query so it can also be counted.
pub struct PageOf<'q, T> {
    query: &'q T,
    limit: i64,
    offset: i64,
}

impl<T: Query> Query for PageOf<'_, T> {
    type SqlType = T::SqlType;
}

impl<T> QueryId for PageOf<'_, T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T> RunQueryDsl<PgConnection> for PageOf<'_, T> {}

impl<T: QueryFragment<Pg>> QueryFragment<Pg> for PageOf<'_, T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(" OFFSET ");
        out.push_bind_param::<BigInt, _>(&self.offset)?;
        Ok(())
    }
}

/// Lists count their entries exactly up to this many; beyond it the pager says "more
/// than", which keeps a list of 100,000 as fast as one of 100. Totals that matter (seats
/// used, pending invitations) are counted exactly where they are shown.
pub const COUNT_CAP: i64 = 1_000;

/// `SELECT COUNT(*) FROM (query LIMIT cap) t`.
pub struct CountOf<'q, T> {
    query: &'q T,
    cap: i64,
}

impl<T> Query for CountOf<'_, T> {
    type SqlType = BigInt;
}

impl<T> QueryId for CountOf<'_, T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T> RunQueryDsl<PgConnection> for CountOf<'_, T> {}

impl<T: QueryFragment<Pg>> QueryFragment<Pg> for CountOf<'_, T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM (");
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.cap)?;
        out.push_sql(") t");
        Ok(())
    }
}

impl<T: Query + QueryFragment<Pg>> PaginatedQuery<T> {
    pub fn load_page<U>(self, conn: &mut PgConnection) -> QueryResult<Paginated<U>>
    where
        for<'q> PageOf<'q, T>: diesel::query_dsl::LoadQuery<'q, PgConnection, U>,
    {
        let (page, per_page, offset) = (self.page, self.per_page, self.offset);
        let items: Vec<U> = PageOf {
            query: &self.query,
            limit: per_page,
            offset,
        }
        .load(conn)?;
        let count = items.len() as i64;
        let seen = offset.saturating_add(count);
        let (total, total_is_lower_bound) = if (count > 0 || offset == 0) && count < per_page {
            (seen, false)
        } else if count == per_page && seen >= COUNT_CAP {
            (seen, true)
        } else {
            let counted: i64 = CountOf {
                query: &self.query,
                cap: COUNT_CAP + 1,
            }
            .get_result(conn)?;
            (counted.min(COUNT_CAP), counted > COUNT_CAP)
        };
        Ok(Paginated {
            items,
            page,
            per_page,
            total,
            total_is_lower_bound,
        })
    }
}

/// `ILIKE` pattern for a search box: the text anywhere, wildcards escaped.
pub fn contains_pattern(search: &str) -> String {
    let escaped = search
        .trim()
        .replace('\0', "")
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Answers when the database does.
pub fn ping(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
        .get_result::<i32>(conn)
        .map(drop)
}

/// Row counts for the staff overview.
pub fn table_counts(conn: &mut PgConnection) -> QueryResult<[i64; 5]> {
    use schema::*;
    Ok([
        organisations::table.count().get_result(conn)?,
        partners::table.count().get_result(conn)?,
        courses::table.count().get_result(conn)?,
        shared_pool_courses::table.count().get_result(conn)?,
        users::table.count().get_result(conn)?,
    ])
}

/// Takes the lock on a name until the transaction ends, if nobody holds it; never waits.
pub fn try_advisory_xact_lock(conn: &mut PgConnection, name: &str) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    diesel::sql_query("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS taken")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Taken>(conn)
        .map(|t| t.taken)
}

/// Serialises work on one name until the transaction ends.
pub fn advisory_xact_lock(conn: &mut PgConnection, name: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(name)
        .execute(conn)
        .map(drop)
}
