//! The connection pool, the one helper every unit of blocking work goes through,
//! and migrations.

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
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

/// A cloneable handle on the pool. Diesel is blocking, so all work runs on the
/// blocking thread pool, never on the async executor.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
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
        let pool = Pool::builder()
            .max_size(settings.database_pool_size)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(Timeouts {
                lock_ms: settings.database_lock_timeout_ms,
                statement_ms: settings.database_statement_timeout_ms,
            }))
            .build(manager)
            .context("cannot open the database connection pool")?;
        Ok(Self { pool })
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

    /// Runs `work` in one database transaction on the blocking pool.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
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

    /// Runs `work` with a connection on the blocking pool, without a transaction.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        actix_web::web::block(move || {
            let _entered = span.enter();
            let mut conn = pool.get()?;
            work(&mut conn)
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
