//! Spawns the real application on port 0 against a fresh database cloned from a
//! migrated template, and talks to it over HTTP like a browser would.

use std::path::PathBuf;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use partner_catalog::configuration::Settings;
use partner_catalog::db::{Db, MIGRATIONS};
use partner_catalog::domain::{EmailAddress, Password};
use partner_catalog::models::users::User;
use partner_catalog::services::accounts::{self, NewAccount};
use partner_catalog::startup::Application;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

/// The server the tests use; `TEST_DATABASE_ADMIN_URL` may point elsewhere.
/// Connections are local and plain: no TLS library is involved, so nothing can race its
/// clean-up when the test process exits.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("admin url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Named after the migrations' contents, so a changed migration gets a new template.
fn template_name() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("migrations dir")
        .flat_map(|d| std::fs::read_dir(d.expect("entry").path()).expect("migration dir"))
        .map(|f| f.expect("file").path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).expect("migration file"));
    }
    let digest = hasher.finalize();
    format!(
        "pc_tpl_{}",
        digest
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn admin() -> PgConnection {
    PgConnection::establish(&admin_url()).expect("the PostgreSQL server for tests must be running")
}

fn exists(conn: &mut PgConnection, name: &str) -> bool {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')"
    )))
    .get_result(conn)
    .expect("query pg_database")
}

fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = template_name();
        let mut conn = admin();
        // Other test processes may be creating the same template.
        conn.batch_execute("SELECT pg_advisory_lock(4242)")
            .expect("lock");
        if !exists(&mut conn, &name) {
            let building = format!("{name}_building");
            conn.batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .expect("drop");
            conn.batch_execute(&format!("CREATE DATABASE {building}"))
                .expect("create template");
            {
                let mut db =
                    PgConnection::establish(&database_url(&building)).expect("connect template");
                db.run_pending_migrations(MIGRATIONS)
                    .expect("migrate template");
            }
            conn.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .expect("rename template");
        }
        drop_stale_test_databases(&mut conn);
        conn.batch_execute("SELECT pg_advisory_unlock(4242)")
            .expect("unlock");
        name
    })
}

/// Test databases are named `pc_test_<unix seconds>_<random>`; those over an hour old are dropped.
fn drop_stale_test_databases(conn: &mut PgConnection) {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let names: Vec<Name> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'pc\\_test\\_%'")
            .load(conn)
            .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    for Name { datname } in names {
        let created = datname
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(now);
        if now - created > 3600 {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"));
        }
    }
}

/// A fresh, migrated, empty database.
pub fn fresh_database() -> String {
    let template = template();
    let name = format!(
        "pc_test_{}_{}",
        chrono::Utc::now().timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    admin()
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .expect("clone template");
    name
}

/// A fresh, migrated database of its own, dropped with this value.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    pub fn new() -> Self {
        Self {
            name: fresh_database(),
        }
    }

    pub fn url(&self) -> String {
        database_url(&self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&admin_url()) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// An empty database with no migrations applied.
pub fn empty_database() -> String {
    let name = format!(
        "pc_test_{}_{}",
        chrono::Utc::now().timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    admin()
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    name
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: Db,
    pub database_url: String,
    pub settings: Settings,
    /// Keeps cookies, does not follow redirects: like a browser, but observable.
    pub client: reqwest::Client,
    /// The browser's cookies.
    pub cookies: std::sync::Arc<reqwest::cookie::Jar>,
    /// Drops the test's database when the last browser on it goes.
    _database: std::sync::Arc<DatabaseGuard>,
}

/// Connections the tests of this process may hold at once on the shared server (whose
/// limit is 100 by default): each application takes its pool's worth before it starts,
/// so that however many tests run in parallel, the server never runs out.
const CONNECTION_BUDGET: u32 = 70;

fn connection_budget() -> std::sync::Arc<tokio::sync::Semaphore> {
    static BUDGET: OnceLock<std::sync::Arc<tokio::sync::Semaphore>> = OnceLock::new();
    BUDGET
        .get_or_init(|| {
            std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTION_BUDGET as usize))
        })
        .clone()
}

/// Waits until `connections` more may be opened; they count until the permit is dropped.
pub async fn reserve_connections(connections: u32) -> tokio::sync::OwnedSemaphorePermit {
    connection_budget()
        .acquire_many_owned(connections.min(CONNECTION_BUDGET))
        .await
        .expect("budget")
}

/// Owns a test database and its share of the connection budget; dropping it drops the
/// database, then returns the share.
struct DatabaseGuard {
    name: String,
    _connections: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&admin_url()) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    // Warnings and errors of the application show with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_test_writer()
        .try_init();
    let name = fresh_database();
    let url = database_url(&name);
    let var_dir = std::env::temp_dir().join(&name);
    let mut settings = Settings::for_database(&url, var_dir);
    configure(&mut settings);
    // The pool, and a couple for the test's own connections.
    let permit = reserve_connections(settings.database_pool_size + 2).await;
    let db = Db::connect(&settings).expect("pool");
    let app = Application::build(settings.clone(), db.clone()).expect("build app");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let (client, cookies) = new_browser(None);
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        database_url: url,
        settings,
        client,
        cookies,
        _database: std::sync::Arc::new(DatabaseGuard {
            name,
            _connections: permit,
        }),
    }
}

/// A client that keeps cookies in a jar of its own and does not follow redirects,
/// optionally connecting from another loopback address (another "network").
/// Building a TLS context takes tens of milliseconds: one for all the test clients, so
/// that hundreds of browsers can start at once (they only speak plain HTTP anyway).
fn shared_tls() -> native_tls::TlsConnector {
    static TLS: std::sync::OnceLock<native_tls::TlsConnector> = std::sync::OnceLock::new();
    TLS.get_or_init(|| native_tls::TlsConnector::new().expect("a TLS context"))
        .clone()
}

/// A client without cookies, for API calls.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(shared_tls())
        .build()
        .expect("client")
}

pub fn new_browser(
    from: Option<std::net::IpAddr>,
) -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let cookies = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(cookies.clone())
        .local_address(from)
        .use_preconfigured_tls(shared_tls())
        .build()
        .expect("client");
    (client, cookies)
}

pub struct Html {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Html {
    pub fn assert_redirect_to(&self, location: &str) {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect, got {}: {}",
            self.status,
            self.body
        );
        assert_eq!(self.location.as_deref(), Some(location));
    }

    pub fn assert_contains(&self, needle: &str) {
        assert!(
            self.body.contains(needle),
            "expected {needle:?} in the page:\n{}",
            self.body
        );
    }
}

async fn to_html(response: reqwest::Response) -> Html {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.expect("body");
    Html {
        status,
        location,
        body,
    }
}

/// The CSRF token a page carries in its forms.
pub fn csrf_in(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Html {
        to_html(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    /// A POST exactly as given: no token added.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Html {
        to_html(
            self.client
                .post(self.url(path))
                .form(fields)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// The session's CSRF token, read from the sign-in page or any page.
    pub async fn csrf_token(&self) -> String {
        let page = self.get("/login").await;
        if let Some(token) = csrf_in(&page.body) {
            return token;
        }
        let page = self.get("/account").await;
        csrf_in(&page.body).expect("a page with a CSRF token")
    }

    /// A POST from a form: carries the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Html {
        let token = self.csrf_token().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Html {
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn sign_out(&self) -> Html {
        self.post("/logout", &[]).await
    }

    /// Another browser against the same application.
    pub fn another_browser(&self) -> TestApp {
        self.browser_with(new_browser(None))
    }

    /// Another browser, connecting from another address of the loopback network.
    pub fn browser_from(&self, ip: &str) -> TestApp {
        self.browser_with(new_browser(Some(ip.parse().expect("an IP address"))))
    }

    /// Another browser holding a copy of this one's cookies: a stolen session.
    pub fn copy_of_this_browser(&self) -> TestApp {
        let copy = self.browser_with(new_browser(None));
        let url: url::Url = self.address.parse().expect("url");
        use reqwest::cookie::CookieStore;
        if let Some(header) = self.cookies.cookies(&url) {
            for cookie in header.to_str().expect("cookie header").split("; ") {
                copy.cookies.add_cookie_str(cookie, &url);
            }
        }
        copy
    }

    fn browser_with(
        &self,
        (client, cookies): (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>),
    ) -> TestApp {
        TestApp {
            address: self.address.clone(),
            port: self.port,
            db: self.db.clone(),
            database_url: self.database_url.clone(),
            settings: self.settings.clone(),
            client,
            cookies,
            _database: self._database.clone(),
        }
    }

    pub async fn create_user(&self, email: &str, password: &str, is_staff: bool) -> User {
        let password = Password::parse(password).expect("test password");
        let hash = accounts::hash_password(&password).expect("hash");
        let email = EmailAddress::parse(email).expect("test email");
        self.db
            .transaction(move |conn| {
                accounts::create_account(
                    conn,
                    &NewAccount {
                        email,
                        full_name: String::new(),
                        password_hash: Some(hash),
                        email_verified: true,
                        is_staff,
                    },
                )
            })
            .await
            .expect("create user")
    }

    /// A staff member, signed in in this browser.
    pub async fn signed_in_staff(&self) -> User {
        let user = self
            .create_user("admin@example.org", "staff password 1", true)
            .await;
        self.sign_in("admin@example.org", "staff password 1")
            .await
            .assert_redirect_to("/");
        user
    }

    /// A user without any role, signed in in this browser.
    pub async fn signed_in_learner(&self) -> User {
        let user = self
            .create_user("learner@example.org", "learner password 1", false)
            .await;
        self.sign_in("learner@example.org", "learner password 1")
            .await
            .assert_redirect_to("/");
        user
    }

    /// What the services need, as the application builds it.
    pub fn ctx(&self) -> partner_catalog::services::ServiceContext {
        partner_catalog::services::ServiceContext::from_settings(&self.settings)
    }

    /// Runs a query against the app's database.
    pub async fn count(&self, table: &'static str) -> i64 {
        self.db
            .run(move |conn| {
                #[derive(QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let row: Count = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                    .get_result(conn)?;
                Ok(row.n)
            })
            .await
            .expect("count")
    }
}

/// The ACME organisation and its partner with full branding (logo, colour, sender name,
/// support address), created as `actor` (staff).
pub fn acme_branded_partner(
    conn: &mut PgConnection,
    actor: &partner_catalog::policies::Actor,
) -> partner_catalog::error::Result<(
    partner_catalog::models::organisations::Organisation,
    partner_catalog::models::partners::Partner,
)> {
    use partner_catalog::services;
    let org = services::organisations::create(
        conn,
        actor,
        &services::organisations::OrganisationInput {
            short_name: "ACMEx".into(),
            name: "ACME".into(),
        },
    )?;
    let partner = services::partners::create(
        conn,
        actor,
        &services::partners::PartnerInput {
            organisation_id: org.id.to_string(),
            code: "acme".into(),
            name: "ACME Corporation".into(),
            accent_colour: "#b3261e".into(),
            email_sender_name: "ACME Academy".into(),
            support_email: "academy@acme.example".into(),
            logo_url: "https://acme.example/logo.png".into(),
            time_zone: "UTC".into(),
            ..Default::default()
        },
    )?;
    Ok((org, partner))
}
