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

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::*;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{BigInt, Bool};

pub const DEFAULT_PER_PAGE: i64 = 25;
pub const MAX_PER_PAGE: i64 = 100;
/// Page numbers beyond this are read as this one (and show as empty).
pub const MAX_PAGE: i64 = 1_000_000;

/// Where a requested page starts: keyset pagination, so that a page deep in a list costs
/// what the first one does. A page is found from the sort key of the entry next to it
/// (carried in the page links), never by skipping entries with `OFFSET`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Position {
    #[default]
    First,
    /// The entries after the one with this sort key.
    After(Vec<String>),
    /// The entries before the one with this sort key.
    Before(Vec<String>),
    Last,
}

/// A requested page: where it starts, its size, and its number as the links counted it
/// (shown only; the position finds the entries).
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub page: i64,
    /// The link said which page this is (a page reached from the last one may not know).
    pub numbered: bool,
    pub per_page: i64,
    pub position: Position,
    /// The list is narrowed by typed text: planned for each call, since a rare word
    /// and a common one want different plans.
    pub plan_each_call: bool,
}

impl PageRequest {
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Self {
        Self {
            page: page.unwrap_or(1).clamp(1, MAX_PAGE),
            numbered: page.is_some(),
            per_page: per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE),
            position: Position::First,
            plan_each_call: false,
        }
    }

    /// The same request, for a list that `search` narrows (when it holds text).
    pub fn searching(mut self, search: &str) -> Self {
        self.plan_each_call = !search.trim().is_empty();
        self
    }

    /// The same request starting at `position` (the first page is page 1 whatever the
    /// number said).
    pub fn at(mut self, position: Position) -> Self {
        if position == Position::First {
            self.page = 1;
        }
        self.position = position;
        self
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
    /// The page's number, when known (a last page reached without an exact total is not).
    pub page: Option<i64>,
    pub per_page: i64,
    pub total: i64,
    /// The list holds more than `total` entries: counting stopped there.
    pub total_is_lower_bound: bool,
    /// Sort keys of the first and last entries, for the previous and next pages' links.
    pub first_key: Option<Vec<String>>,
    pub last_key: Option<Vec<String>>,
    pub has_previous: bool,
    pub has_next: bool,
    /// A page past the end of the list was asked for (a stale link): it is empty.
    pub past_the_end: bool,
}

impl<T> Paginated<T> {
    pub fn empty(request: PageRequest) -> Self {
        Self {
            items: Vec::new(),
            page: Some(request.page),
            per_page: request.per_page,
            total: 0,
            total_is_lower_bound: false,
            first_key: None,
            last_key: None,
            has_previous: false,
            has_next: false,
            past_the_end: false,
        }
    }

    pub fn total_pages(&self) -> i64 {
        // Saturating: a page number far past the end must not overflow.
        (self.total.saturating_add(self.per_page - 1) / self.per_page.max(1)).max(1)
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paginated<U> {
        let Ok(page) = self.try_with_items(|items| {
            Ok::<_, std::convert::Infallible>(items.into_iter().map(f).collect())
        });
        page
    }

    /// The same page with its items replaced (the page links keep their keys).
    pub fn try_with_items<U, E>(
        self,
        f: impl FnOnce(Vec<T>) -> Result<Vec<U>, E>,
    ) -> Result<Paginated<U>, E> {
        Ok(Paginated {
            items: f(self.items)?,
            page: self.page,
            per_page: self.per_page,
            total: self.total,
            total_is_lower_bound: self.total_is_lower_bound,
            first_key: self.first_key,
            last_key: self.last_key,
            has_previous: self.has_previous,
            has_next: self.has_next,
            past_the_end: self.past_the_end,
        })
    }
}

/// The type of one column of a sort key, which its values in links are read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Int,
    Time,
    Text,
}

impl KeyKind {
    fn cast(self) -> &'static str {
        match self {
            KeyKind::Int => "bigint",
            KeyKind::Time => "timestamptz",
            KeyKind::Text => "text",
        }
    }

    /// A value from a link that this type can read (`-infinity` stands for a missing time).
    fn reads(self, value: &str) -> bool {
        match self {
            KeyKind::Int => value.parse::<i64>().is_ok(),
            KeyKind::Time => value == "-infinity" || DateTime::parse_from_rfc3339(value).is_ok(),
            KeyKind::Text => !value.contains('\0'),
        }
    }
}

/// How a list is sorted: SQL expressions (unique together, in one direction) and their
/// types. An index on them in this order serves every page.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    pub columns: &'static [(&'static str, KeyKind)],
    pub descending: bool,
}

impl SortKey {
    fn order(&self, reversed: bool, plan_each_call: bool) -> SortOrder {
        SortOrder {
            columns: self.columns,
            descending: self.descending != reversed,
            plan_each_call,
        }
    }

    /// `(a, b) < ($1::t, $2::u)`: the entries after `key` in the given direction.
    fn beyond(&self, key: &[String], reversed: bool) -> Beyond {
        Beyond {
            columns: self.columns,
            values: key.to_vec(),
            op: if self.descending != reversed {
                " < "
            } else {
                " > "
            },
        }
    }

    /// Whether a key from a link fits this sort key.
    fn reads(&self, key: &[String]) -> bool {
        key.len() == self.columns.len()
            && self
                .columns
                .iter()
                .zip(key)
                .all(|((_, kind), value)| kind.reads(value))
    }
}

/// The condition that keeps the entries beyond a sort key, its values bound as text and
/// cast to their columns' types.
#[derive(Debug, Clone)]
pub struct Beyond {
    columns: &'static [(&'static str, KeyKind)],
    values: Vec<String>,
    op: &'static str,
}

/// What diesel asks of a hand-written SQL fragment usable on any table: an expression
/// of `$sql_type`, cached by its SQL text (no static query id).
macro_rules! sql_fragment {
    ($fragment:ty, $sql_type:ty) => {
        impl diesel::expression::Expression for $fragment {
            type SqlType = $sql_type;
        }

        impl<QS> diesel::expression::AppearsOnTable<QS> for $fragment {}

        impl<QS> diesel::expression::SelectableExpression<QS> for $fragment {}

        impl diesel::expression::ValidGrouping<()> for $fragment {
            type IsAggregate = diesel::expression::is_aggregate::Never;
        }

        impl QueryId for $fragment {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
    };
}

sql_fragment!(Beyond, Bool);

impl QueryFragment<Pg> for Beyond {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(");
        for (i, (sql, _)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(sql);
        }
        out.push_sql(")");
        out.push_sql(self.op);
        out.push_sql("(");
        for (i, ((_, kind), value)) in self.columns.iter().zip(&self.values).enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_bind_param::<diesel::sql_types::Text, _>(value)?;
            out.push_sql("::");
            out.push_sql(kind.cast());
        }
        out.push_sql(")");
        Ok(())
    }
}

/// `ORDER BY a DESC, b DESC`: written by the code, so a list's statement is prepared
/// once per connection (diesel re-plans any statement holding raw SQL text), unless it
/// is to be planned for each call.
#[derive(Debug, Clone, Copy)]
pub struct SortOrder {
    columns: &'static [(&'static str, KeyKind)],
    descending: bool,
    plan_each_call: bool,
}

sql_fragment!(SortOrder, diesel::sql_types::Untyped);

impl QueryFragment<Pg> for SortOrder {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.plan_each_call {
            out.unsafe_to_cache_prepared();
        }
        for (i, (sql, _)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(sql);
            out.push_sql(if self.descending { " DESC" } else { " ASC" });
        }
        Ok(())
    }
}

/// A hand-written statement whose text the code fixes, prepared once per connection and
/// reused like the query builder's own; diesel otherwise parses and plans raw SQL anew
/// on every call. Only for text that does not vary with input (values are bound).
#[derive(Debug, Clone)]
pub struct Prepared<Q>(pub Q);

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Prepared<Q> {}

/// `.prepared()` on a hand-written statement: see `Prepared`.
pub trait PrepareOnce: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> PrepareOnce for Q {}

/// A row of a list, with its sort key as it goes into links.
pub trait Keyed {
    fn key(&self) -> Vec<String>;
}

/// A time as a sort-key value: to the microsecond, as PostgreSQL keeps it.
pub fn time_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Reads one page of the list that `query` builds (filtered, unsorted), sorted by `key`,
/// and counts the list up to `COUNT_CAP`.
pub fn keyset_page<'a, Q, U>(
    conn: &mut PgConnection,
    query: impl Fn() -> Q,
    key: &SortKey,
    request: PageRequest,
) -> QueryResult<Paginated<U>>
where
    U: Keyed,
    Q: diesel::query_dsl::methods::FilterDsl<Beyond, Output = Q>
        + diesel::query_dsl::methods::OrderDsl<SortOrder, Output = Q>
        + Query
        + QueryFragment<Pg>,
    Limited<Q>: LoadQuery<'a, PgConnection, U>,
{
    keyset_page_counted_by(conn, &query, &query, key, request)
}

/// `keyset_page`, counting with `count`: the same entries read more cheaply (without
/// joins that only add columns).
pub fn keyset_page_counted_by<'a, Q, U, C>(
    conn: &mut PgConnection,
    query: impl Fn() -> Q,
    count: impl Fn() -> C,
    key: &SortKey,
    request: PageRequest,
) -> QueryResult<Paginated<U>>
where
    U: Keyed,
    Q: diesel::query_dsl::methods::FilterDsl<Beyond, Output = Q>
        + diesel::query_dsl::methods::OrderDsl<SortOrder, Output = Q>
        + Query
        + QueryFragment<Pg>,
    Limited<Q>: LoadQuery<'a, PgConnection, U>,
    C: QueryFragment<Pg>,
{
    let per_page = request.per_page;
    // A key that does not fit (an edited link) starts from the first page.
    let position = match request.position {
        Position::After(k) | Position::Before(k) if !key.reads(&k) => Position::First,
        other => other,
    };
    let reversed = matches!(position, Position::Before(_) | Position::Last);
    use diesel::query_dsl::methods::{FilterDsl, OrderDsl};
    let mut page = query();
    match &position {
        Position::After(k) => page = FilterDsl::filter(page, key.beyond(k, false)),
        Position::Before(k) => page = FilterDsl::filter(page, key.beyond(k, true)),
        Position::First | Position::Last => {}
    }
    let page = OrderDsl::order(page, key.order(reversed, request.plan_each_call));
    let mut items: Vec<U> = Limited {
        query: page,
        limit: per_page + 1,
        plan_each_call: request.plan_each_call,
    }
    .load(conn)?;
    let more = items.len() as i64 > per_page;
    items.truncate(per_page as usize);
    if reversed {
        items.reverse();
    }
    // A list that fits on one page is counted by reading it.
    let whole_list = !more && matches!(position, Position::First | Position::Last);
    let counted: i64 = if whole_list {
        items.len() as i64
    } else {
        CountOf {
            query: &count(),
            cap: COUNT_CAP + 1,
            plan_each_call: request.plan_each_call,
        }
        .get_result::<i64>(conn)?
    };
    let (total, total_is_lower_bound) = (counted.min(COUNT_CAP), counted > COUNT_CAP);
    let (has_previous, has_next) = match position {
        Position::First => (false, more),
        Position::After(_) => (true, more),
        Position::Before(_) => (more, true),
        Position::Last => (more, false),
    };
    let past_the_end = items.is_empty() && position != Position::First;
    let exact_pages = (!total_is_lower_bound)
        .then(|| (total.saturating_add(per_page - 1) / per_page.max(1)).max(1));
    let page_number = match position {
        Position::First => Some(1),
        // Nothing before it: whatever the link said, this is the first page.
        Position::Before(_) if !has_previous => Some(1),
        Position::Last => exact_pages,
        _ => request.numbered.then_some(request.page),
    };
    Ok(Paginated {
        first_key: items.first().map(Keyed::key),
        last_key: items.last().map(Keyed::key),
        items,
        page: page_number,
        per_page,
        total,
        total_is_lower_bound,
        has_previous: has_previous && !past_the_end,
        has_next: has_next && !past_the_end,
        past_the_end,
    })
}

/// Lists count their entries exactly up to this many; beyond it the pager says "more
/// than", which keeps a list of 100,000 as fast as one of 100. Totals that matter (seats
/// used, pending invitations) are counted exactly where they are shown.
pub const COUNT_CAP: i64 = 1_000;

/// `query LIMIT n`, the number written into the statement: a bound limit keeps
/// PostgreSQL from settling on one plan for a prepared statement, so it would plan the
/// statement anew on every call.
pub struct Limited<T> {
    query: T,
    limit: i64,
    plan_each_call: bool,
}

/// `query LIMIT n`, `n` written in (see `Limited`).
pub fn limited<T>(query: T, limit: i64) -> Limited<T> {
    Limited {
        query,
        limit,
        plan_each_call: false,
    }
}

impl<T: Query> Query for Limited<T> {
    type SqlType = T::SqlType;
}

impl<T> QueryId for Limited<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T> RunQueryDsl<PgConnection> for Limited<T> {}

impl<T: QueryFragment<Pg>> QueryFragment<Pg> for Limited<T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.plan_each_call {
            out.unsafe_to_cache_prepared();
        }
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}", self.limit));
        Ok(())
    }
}

/// `SELECT COUNT(*) FROM (query LIMIT cap) t`, the cap written in (see `Limited`).
pub struct CountOf<'q, T> {
    query: &'q T,
    cap: i64,
    plan_each_call: bool,
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
        if self.plan_each_call {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql("SELECT COUNT(*) FROM (");
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}) t", self.cap));
        Ok(())
    }
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// PostgreSQL's `lower(text)`. Addresses are stored in lower case (a check on each
    /// table), so `address LIKE lower(pattern)` finds what `ILIKE` would, without
    /// folding every candidate's case again.
    #[sql_name = "lower"]
    fn lower_text(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `LIKE`/`ILIKE` pattern for a search box: the text anywhere, wildcards escaped.
pub fn contains_pattern(search: &str) -> String {
    let escaped = search
        .trim()
        .replace('\0', "")
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Runs one of the SQL functions that fold counter deltas (`analytics_fold`,
/// `catalog_counts_fold`); answers how many rows it folded.
fn fold_with(conn: &mut PgConnection, function: &'static str) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Folded {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let folded: Folded = diesel::sql_query(format!("SELECT {function}() AS n")).get_result(conn)?;
    Ok(folded.n)
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
