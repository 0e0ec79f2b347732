//! The connection pool, the one helper every unit of blocking work goes through,
//! and migrations.
//!
//! A request holds at most one connection: the first unit of work checks one out and
//! the others of the same request reuse it (see `with_request_connection`). Connections
//! are not pinged on checkout; one found closed is dropped and the work retried once on
//! a fresh one.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use crate::configuration::Settings;
use crate::error::{Error, Result};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Arbitrary constant naming the advisory lock migrations run under.
const MIGRATION_LOCK_KEY: i64 = 0x5043_4D49_4752; // "PCMIGR"

/// Longest wait between two attempts to reach the database at start-up.
const MAX_CONNECT_RETRY_DELAY: Duration = Duration::from_secs(30);

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PooledPg = PooledConnection<ConnectionManager<PgConnection>>;

tokio::task_local! {
    /// The connection of the request being served, once its first unit of work took one.
    static REQUEST_CONNECTION: RequestConnection;
}

#[derive(Clone, Default)]
struct RequestConnection(Arc<Mutex<Option<PooledPg>>>);

/// Runs a request with one connection for all its units of work, handed back to the
/// pool when the request is answered.
pub async fn with_request_connection<F: Future>(request: F) -> F::Output {
    REQUEST_CONNECTION
        .scope(RequestConnection::default(), request)
        .await
}

/// Hands the request's connection back to the pool before slow work that needs none
/// (password hashing), so that waiting requests are not short of connections.
pub fn release_request_connection() {
    let _ = REQUEST_CONNECTION.try_with(|held| {
        if let Ok(mut held) = held.0.try_lock() {
            held.take();
        }
    });
}

/// Whether work failed because its connection had closed (a database restart, an idle
/// connection dropped by the network).
fn connection_lost<T>(outcome: &Result<T>) -> bool {
    match outcome {
        Err(Error::Internal(e)) => matches!(
            e.downcast_ref::<diesel::result::Error>(),
            Some(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                _
            ))
        ),
        _ => false,
    }
}

/// Runs work on a connection; if the connection turns out closed, it is marked broken
/// (the pool then drops it instead of handing it out again) and the work runs once more,
/// on a connection checked to be alive: after a database restart every idle one is dead.
fn run_with_retry<T, F>(checkout: impl Fn(Acquire) -> Checkout, work: F) -> Result<T>
where
    F: FnOnce(&mut PgConnection) -> Result<T> + Clone,
{
    let outcome = checkout(Acquire::AsIs).run(work.clone());
    if connection_lost(&outcome) {
        tracing::warn!("a database connection had closed; retrying on a live one");
        return checkout(Acquire::Alive).run(work);
    }
    outcome
}

/// How to take a connection from the pool: as it comes, or tried first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acquire {
    AsIs,
    Alive,
}

/// Takes a connection; when it must be alive, dead ones are dropped until a live one (or
/// a new one) comes.
fn acquire(pool: &PgPool, how: Acquire) -> Result<PooledPg> {
    let mut conn = pool.get()?;
    if how == Acquire::Alive {
        for _ in 0..pool.max_size() {
            match conn.batch_execute("SELECT 1") {
                Ok(()) => break,
                Err(_) => {
                    mark_broken(&mut conn);
                    drop(conn);
                    conn = pool.get()?;
                }
            }
        }
    }
    Ok(conn)
}

/// A connection to run one unit of work on: the request's (kept for its next units of
/// work) or one of its own.
enum Checkout {
    Request(RequestConnection, PgPool, Acquire),
    Own(PgPool, Acquire),
}

impl Checkout {
    fn run<T>(self, work: impl FnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
        match self {
            Checkout::Own(pool, how) => {
                let mut conn = acquire(&pool, how)?;
                let outcome = work(&mut conn);
                if connection_lost(&outcome) {
                    mark_broken(&mut conn);
                }
                outcome
            }
            Checkout::Request(held, pool, how) => {
                let mut held = held.0.lock().unwrap_or_else(PoisonError::into_inner);
                if how == Acquire::Alive {
                    held.take();
                }
                let conn = match held.as_mut() {
                    Some(conn) => conn,
                    None => held.insert(acquire(&pool, how)?),
                };
                let outcome = work(conn);
                if connection_lost(&outcome) {
                    mark_broken(conn);
                    held.take();
                }
                outcome
            }
        }
    }
}

/// The pool drops a connection whose transaction manager is in error on its return.
fn mark_broken(conn: &mut PgConnection) {
    AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
}

/// A cloneable handle on the pool. Diesel is blocking, so all work runs on the
/// blocking thread pool, never on the async executor.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    checkouts: Arc<AtomicU64>,
    units_of_work: Arc<AtomicU64>,
}

/// Counts the connections taken from the pool, for tests and operators.
#[derive(Debug)]
struct CountCheckouts(Arc<AtomicU64>);

impl diesel::r2d2::HandleEvent for CountCheckouts {
    fn handle_checkout(&self, _: diesel::r2d2::event::CheckoutEvent) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every pooled connection gives up on a held lock or a runaway statement instead of
/// waiting with a pool connection for as long as another transaction likes.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    lock_ms: u64,
    statement_ms: u64,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for Timeouts {
    fn on_acquire(&self, conn: &mut PgConnection) -> std::result::Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            self.lock_ms, self.statement_ms
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Db {
    pub fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let manager = ConnectionManager::<PgConnection>::new(settings.database_url.expose_secret());
        let checkouts = Arc::new(AtomicU64::new(0));
        let pool = Pool::builder()
            .event_handler(Box::new(CountCheckouts(checkouts.clone())))
            .max_size(settings.database_pool_size)
            .connection_timeout(Duration::from_secs(10))
            // No `SELECT 1` per checkout: a closed connection shows by its error instead.
            .test_on_check_out(false)
            .connection_customizer(Box::new(Timeouts {
                lock_ms: settings.database_lock_timeout_ms,
                statement_ms: settings.database_statement_timeout_ms,
            }))
            .build(manager)
            .context("cannot open the database connection pool")?;
        Ok(Self {
            pool,
            checkouts,
            units_of_work: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Like `connect`, but waits for the database to come up, retrying with backoff and
    /// saying so in the log: a restart during a blip must not leave the process dead.
    pub async fn connect_with_retry(settings: &Settings) -> anyhow::Result<Self> {
        let url = settings.database_url.expose_secret().to_string();
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1u32;
        loop {
            let prepared = {
                let url = url.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    create_database_if_missing(&url)?;
                    run_migrations(&url)
                })
                .await
                .map_err(|e| anyhow::anyhow!("database preparation panicked: {e}"))?
            };
            match prepared.and_then(|()| Self::connect(settings)) {
                Ok(db) => {
                    if attempt > 1 {
                        tracing::info!(attempt, "the database is reachable again");
                    }
                    return Ok(db);
                }
                Err(e) => {
                    tracing::warn!(
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %format!("{e:#}"),
                        "the database is not reachable yet; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_CONNECT_RETRY_DELAY);
                    attempt += 1;
                }
            }
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Connections taken from the pool so far.
    pub fn checkouts(&self) -> u64 {
        self.checkouts.load(Ordering::Relaxed)
    }

    /// Units of work run so far: each is a trip to a blocking thread and back.
    pub fn units_of_work(&self) -> u64 {
        self.units_of_work.load(Ordering::Relaxed)
    }

    /// Runs `work` in one database transaction on the blocking pool.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| {
            let outcome = conn.transaction(work);
            if let Err(Error::UserLimitReached(Some(refused))) = &outcome {
                // The refusal outlives its rolled-back transaction: managers count them.
                if let Err(e) = crate::models::refused_joins::insert(conn, refused) {
                    tracing::warn!(error = %e, "a refused join could not be recorded");
                }
            }
            outcome
        })
        .await
    }

    /// Runs `work` with a connection on the blocking pool, without a transaction. Should
    /// the connection turn out closed, `work` runs again on a fresh one: work outside a
    /// transaction must not mind running twice.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.units_of_work.fetch_add(1, Ordering::Relaxed);
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let request = REQUEST_CONNECTION.try_with(Clone::clone).ok();
        actix_web::web::block(move || {
            let _entered = span.enter();
            run_with_retry(
                |how| match &request {
                    Some(held) => Checkout::Request(held.clone(), pool.clone(), how),
                    None => Checkout::Own(pool.clone(), how),
                },
                work,
            )
        })
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }

    /// Hands a connection to long-running blocking work (streamed exports) without
    /// waiting for it; failures to get a connection are logged.
    pub fn spawn_with_connection<F>(&self, work: F)
    where
        F: FnOnce(&mut PgConnection) + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        actix_web::rt::task::spawn_blocking(move || {
            let _entered = span.enter();
            match pool.get() {
                Ok(mut conn) => work(&mut conn),
                Err(e) => tracing::error!(error = %e, "no database connection for background work"),
            }
        });
    }

    /// Runs CPU-heavy work (password hashing) on the blocking pool.
    pub async fn cpu<T, F>(work: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        release_request_connection();
        actix_web::web::block(work)
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }
}

/// Creates the database named in the URL when it does not exist yet.
pub fn create_database_if_missing(database_url: &str) -> anyhow::Result<()> {
    if PgConnection::establish(database_url).is_ok() {
        return Ok(());
    }
    let mut url = url::Url::parse(database_url).context("DATABASE_URL is not a URL")?;
    let name = url.path().trim_start_matches('/').to_string();
    anyhow::ensure!(!name.is_empty(), "DATABASE_URL names no database");
    url.set_path("/postgres");
    let mut admin = PgConnection::establish(url.as_str())
        .with_context(|| format!("cannot reach the database server to create {name}"))?;
    let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{}')",
        name.replace('\'', "''")
    )))
    .get_result(&mut admin)?;
    if !exists {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\"",
                name.replace('"', "\"\"")
            ))
            .with_context(|| format!("cannot create database {name}"))?;
        tracing::info!(database = %name, "created database");
    }
    Ok(())
}

/// Runs pending migrations under an advisory lock, so that several processes
/// starting at once migrate exactly once.
pub fn run_migrations(database_url: &str) -> anyhow::Result<()> {
    let mut conn =
        PgConnection::establish(database_url).context("cannot connect to the database")?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    let outcome = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
    let applied = outcome?;
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    Ok(())
}
