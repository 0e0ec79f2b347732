//! What every benchmark needs: a database of its own on the server the tests use, and
//! readings of the process's memory.

#![allow(dead_code)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The server; `TEST_DATABASE_ADMIN_URL` may point elsewhere.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

pub fn with_database(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("admin url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Creates a migrated database named `pc_bench_<what>_<time>`; returns its name and URL.
pub fn fresh_database(what: &str) -> (String, String) {
    let name = format!("pc_bench_{what}_{}", chrono::Utc::now().timestamp());
    let mut admin = PgConnection::establish(&admin_url()).expect("PostgreSQL must be running");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let url = with_database(&name);
    partner_catalog::db::run_migrations(&url).expect("migrate");
    (name, url)
}

pub fn drop_database(name: &str) {
    if let Ok(mut admin) = PgConnection::establish(&admin_url()) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// A line of `/proc/self/status`, in KiB: `VmRSS:` now, `VmHWM:` the peak.
pub fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `run` on a two-thread runtime, then stops the server's tasks before the process
/// tears down its libraries.
pub fn block_on<F: std::future::Future<Output = ()>>(run: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run);
    runtime.shutdown_timeout(Duration::from_secs(2));
}

/// The value at fraction `p` of sorted timings.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A client with its own cookies, signed in as `email`.
pub async fn signed_in(base: &str, email: &str, password: &str) -> reqwest::Client {
    signed_in_with_cookie(base, email, password).await.0
}

/// A client signed in as `email`, and its `Cookie` header for other load generators.
pub async fn signed_in_with_cookie(
    base: &str,
    email: &str,
    password: &str,
) -> (reqwest::Client, String) {
    use reqwest::cookie::CookieStore;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = login.find(marker).unwrap() + marker.len();
    let token = &login[start..start + login[start..].find('"').unwrap()];
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", token),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "sign-in of {email} failed");
    let cookie = jar
        .cookies(&base.parse().unwrap())
        .and_then(|header| header.to_str().ok().map(str::to_string))
        .unwrap_or_default();
    (client, cookie)
}

pub async fn set_password(db: &partner_catalog::db::Db, user_id: i64, password: &str) {
    let password = partner_catalog::domain::Password::parse(password).unwrap();
    let hash = partner_catalog::services::accounts::hash_password(&password).unwrap();
    db.run(move |conn| {
        Ok(partner_catalog::models::users::set_password_hash(
            conn, user_id, &hash,
        )?)
    })
    .await
    .unwrap();
}

/// One catalog (`bench-big`, id 1, partner `bench`) with `invitations` invitations
/// (the first `learners` accepted, the rest sent, expired, declined or removed),
/// `learners` active learners with licences, and as many audit entries as invitations;
/// user 1 is staff, user 2 the partner's manager (no password yet). Ends with `VACUUM
/// ANALYZE`, the state autovacuum keeps a busy table in.
pub fn seed_big_catalog(url: &str, invitations: i64, learners: i64) {
    let seed = BIG_CATALOG_SEED
        .replace("{learners}", &learners.to_string())
        .replace("{invitations}", &invitations.to_string());
    let mut seeding = PgConnection::establish(url).expect("bench database");
    seeding.batch_execute(&seed).expect("seed");
    seeding.batch_execute("VACUUM ANALYZE").expect("vacuum");
}

const BIG_CATALOG_SEED: &str = r#"
INSERT INTO users (id, email, is_staff, email_verified_at, password_hash)
    VALUES (1, 'bench-staff@example.org', true, now(), NULL), (2, 'bench-manager@example.org', false, now(), NULL);
INSERT INTO organisations (id, short_name, name) VALUES (1, 'BENCHx', 'Bench');
INSERT INTO partners (id, organisation_id, code, name) VALUES (1, 1, 'bench', 'Bench Partner');
INSERT INTO partner_managers (user_id, partner_id, claimed_at) VALUES (2, 1, now());
INSERT INTO courses (id, key, organisation_id, title, modes)
    SELECT n, 'course-v1:BENCHx+C' || n || '+1', 1, 'Course ' || n, CASE WHEN n % 2 = 0 THEN '{audit,verified}'::text[] ELSE '{audit}'::text[] END
    FROM generate_series(1, 10) n;
INSERT INTO catalogs (id, partner_id, slug, name, available_start, available_end, user_limit, course_enrollments_limit)
    VALUES (1, 1, 'bench-big', 'Big catalog', now() - interval '30 days', now() + interval '300 days', 0, 0);
INSERT INTO catalog_courses (catalog_id, course_id, position) SELECT 1, n, n - 1 FROM generate_series(1, 10) n;
INSERT INTO users (id, email, full_name, email_verified_at)
    SELECT 100 + n, 'learner' || n || '@corp' || (n % 50) || '.example', 'Learner ' || n, now() FROM generate_series(1, {learners}) n;
INSERT INTO invitations (id, catalog_id, email, user_id, token_hash, channel, invited_at, expires_at, accepted_at, declined_at, removed_at, send_count, last_sent_at)
    SELECT n, 1,
        CASE WHEN n <= {learners} THEN 'learner' || n || '@corp' || (n % 50) || '.example' ELSE 'person' || n || '@corp' || (n % 50) || '.example' END,
        CASE WHEN n <= {learners} THEN 100 + n END,
        sha256(('bench' || n)::bytea), 'manual',
        now() - (n || ' minutes')::interval,
        CASE WHEN n % 7 = 0 THEN now() - (n || ' minutes')::interval + interval '30 seconds' ELSE now() + interval '20 days' END,
        CASE WHEN n <= {learners} THEN now() - (n || ' seconds')::interval END,
        CASE WHEN n > {learners} AND n % 11 = 0 THEN now() END,
        CASE WHEN n > {learners} AND n % 13 = 0 THEN now() END,
        1, now() - (n || ' minutes')::interval
    FROM generate_series(1, {invitations}) n;
SELECT setval('invitations_id_seq', {invitations});
INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active, joined_at)
    SELECT 1, 100 + n, n, true, now() - (n || ' seconds')::interval FROM generate_series(1, {learners}) n;
INSERT INTO licences (user_id, course_id, catalog_id, is_active)
    SELECT 100 + n, 2 * (1 + n % 5), 1, n % 3 <> 0 FROM generate_series(1, {learners}) n;
INSERT INTO audit_entries (actor_user_id, actor_role, action, object_type, object_id, partner_id, catalog_id)
    SELECT 2, 'partner_manager', 'invitation.create', 'invitation', n::text, 1, 1 FROM generate_series(1, {invitations}) n;
"#;

/// The invitations list of the big catalog at page 2,000, as its link reaches it: after
/// the sort key of the 49,975th invitation (25 a page).
pub fn invitations_page_2000(url: &str) -> String {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Text)]
        key: String,
    }
    let mut conn = PgConnection::establish(url).expect("database");
    let key: Key = diesel::sql_query(
        "SELECT json_build_array(to_char(invited_at AT TIME ZONE 'UTC',
                    'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), id::text)::text AS key
         FROM invitations WHERE catalog_id = 1
         ORDER BY invited_at DESC, id DESC OFFSET 49974 LIMIT 1",
    )
    .get_result(&mut conn)
    .expect("the 49,975th invitation");
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("after", &key.key)
        .append_pair("page", "2000")
        .finish();
    format!("/partner/bench/catalogs/1/invitations?{query}")
}
