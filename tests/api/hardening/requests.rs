//! Requests: lock and statement timeouts, the session cookie's size, redirects after
//! sign-in, enrolment by outsiders, pattern caps, and headers on every answer.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use reqwest::StatusCode;

use super::signed_in_manager;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::journey::setup;

/// Holds the catalog's row lock from another connection for `hold`, the way a long
/// transaction of some other request would; returns once the lock is taken, with the
/// task to wait for before the test ends.
async fn hold_catalog_lock(
    app: &TestApp,
    catalog_id: i64,
    hold: Duration,
) -> tokio::task::JoinHandle<()> {
    let url = app.database_url.clone();
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let holder = tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).expect("connect");
        conn.batch_execute(&format!(
            "BEGIN; SELECT id FROM catalogs WHERE id = {catalog_id} FOR UPDATE"
        ))
        .expect("lock");
        let _ = locked.send(());
        std::thread::sleep(hold);
        conn.batch_execute("COMMIT").expect("commit");
    });
    is_locked.await.expect("locked");
    holder
}

/// Item 12: a row held by a long transaction costs other requests a short wait and a
/// clear "busy" answer, not every pool connection; unrelated pages keep working.
#[tokio::test]
async fn a_held_row_lock_answers_busy_quickly_and_other_pages_keep_working() {
    let app = spawn_app_with(|s| s.database_lock_timeout_ms = 300).await;
    let s = setup(&app, Some(r".*@example\.org")).await;
    app.signed_in_learner().await;
    let token = app.csrf_token().await;
    let holder = hold_catalog_lock(&app, s.catalog_id, Duration::from_secs(3)).await;

    let mut joins = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/my/catalogs/{}/join", s.catalog_id)),
            token.clone(),
        );
        joins.push(tokio::spawn(async move {
            client
                .post(url)
                .form(&[("csrf_token", token)])
                .send()
                .await
                .unwrap()
        }));
    }
    // Meanwhile an unrelated page and the health check answer.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
    for join in joins {
        let response = join.await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "5");
        let body = response.text().await.unwrap();
        assert!(body.contains("busy"), "{body}");
    }
    assert_eq!(app.count("catalog_learners").await, 0);

    // Pooled connections carry both timeouts.
    let (lock, statement) = app
        .db
        .run(|conn| {
            #[derive(QueryableByName)]
            struct Setting {
                #[diesel(sql_type = diesel::sql_types::Text)]
                setting: String,
            }
            let show = |conn: &mut PgConnection, name: &str| {
                diesel::sql_query(format!(
                    "SELECT setting FROM pg_settings WHERE name = '{name}'"
                ))
                .get_result::<Setting>(conn)
                .map(|s| s.setting)
            };
            Ok((
                show(conn, "lock_timeout")?,
                show(conn, "statement_timeout")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!((lock.as_str(), statement.as_str()), ("300", "30000"));
    holder.await.expect("the lock was held and released");
}

/// Item 14: messages for pages never read cannot outgrow the cookie, and a change that
/// committed is never answered with an error.
#[tokio::test]
async fn sixty_posts_without_reading_their_pages_keep_the_cookie_small() {
    let app = spawn_app().await;
    app.signed_in_learner().await;
    let token = app.csrf_token().await;
    for i in 0..60 {
        let name = format!("Name number {i} {}", "é".repeat(150));
        let response = app
            .post_raw(
                "/account",
                &[("csrf_token", token.as_str()), ("full_name", &name)],
            )
            .await;
        response.assert_redirect_to("/account");
    }
    use reqwest::cookie::CookieStore;
    let cookie = app.cookies.cookies(&app.address.parse().unwrap()).unwrap();
    assert!(cookie.len() < 4000, "cookie of {} bytes", cookie.len());
    let page = app.get("/account").await;
    assert_eq!(page.body.matches("Your name was saved.").count(), 3);
}

/// Item 15: only a path of this site is followed after signing in.
#[tokio::test]
async fn sign_in_follows_only_a_path_of_this_site() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "ada password 1", false)
        .await;
    for (next, expected) in [
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/%09/evil.example", "/%09/evil.example"),
        ("/account\r\nSet-Cookie: x=y", "/"),
        ("/my?tab=1", "/my?tab=1"),
    ] {
        let browser = app.another_browser();
        let form = browser
            .get(&format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(form.status, StatusCode::OK, "{next:?}");
        let token = browser.csrf_token().await;
        browser
            .post_raw(
                "/login",
                &[
                    ("csrf_token", token.as_str()),
                    ("email", "ada@example.org"),
                    ("password", "ada password 1"),
                    ("next", next),
                ],
            )
            .await
            .assert_redirect_to(expected);
    }
    // The raw request of the finding: a browser would land on evil.example.
    let browser = app.another_browser();
    browser
        .sign_in("ada@example.org", "ada password 1")
        .await
        .assert_redirect_to("/");
    let response = browser.get("/login?next=/%09/evil.example").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let location = response.location.unwrap();
    assert!(
        !location.starts_with("/\t") && !location.starts_with("//"),
        "{location}"
    );
    // Line breaks in `next` are not a server error.
    assert_eq!(
        browser.get("/login?next=/%0D%0Aevil").await.status,
        StatusCode::SEE_OTHER
    );
}

/// Item 16: unknown courses, and catalogs of other partners, are "not found" without a
/// trace in the partner's analytics or a glimpse of the catalog's name.
#[tokio::test]
async fn outsiders_cannot_enrol_write_events_or_read_names() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    app.signed_in_learner().await;
    let unknown = app
        .post(
            &format!("/my/catalogs/{}/courses/999999999/enrol", s.catalog_id),
            &[],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let outsider = app
        .post(
            &format!(
                "/my/catalogs/{}/courses/{}/enrol",
                s.catalog_id, s.paid_course
            ),
            &[],
        )
        .await;
    assert_eq!(outsider.status, StatusCode::NOT_FOUND);
    assert!(!outsider.body.contains("Sales Academy"));
    let join = app
        .post(&format!("/my/catalogs/{}/join", s.catalog_id), &[])
        .await;
    assert_eq!(join.status, StatusCode::NOT_FOUND);
    assert!(!join.body.contains("Sales Academy"), "{}", join.body);
    assert_eq!(app.count("tracking_events").await, 0);
    assert_eq!(app.count("platform_enrollments").await, 0);
}

/// Item 17: a catalog has at most a hundred patterns; a change shows at once.
#[tokio::test]
async fn patterns_are_capped_and_changes_take_effect_at_once() {
    let app = spawn_app().await;
    let s = setup(&app, Some(r".*@elsewhere\.org")).await;
    let manager = signed_in_manager(&app).await;
    let settings = format!("/partner/acme/catalogs/{}", s.catalog_id);
    let form = manager.get(&settings).await;
    assert_eq!(form.status, StatusCode::OK);
    let too_many: Vec<String> = (0..101).map(|i| format!(r"user{i}@example\.org")).collect();
    let fields = [
        ("name", "Sales Academy"),
        ("available_start", "2000-01-01T00:00"),
        ("available_end", "2999-01-01T00:00"),
        ("user_limit", "0"),
        ("course_enrollments_limit", "1"),
        ("is_self_enrollment", "on"),
    ];
    let mut refused: Vec<(&str, &str)> = fields.to_vec();
    let joined = too_many.join("\n");
    refused.push(("email_patterns", &joined));
    let response = manager.post(&settings, &refused).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("at most 100 patterns");

    // The learner does not see the catalog; once the patterns include them, they do.
    app.signed_in_learner().await;
    assert!(!app.get("/my").await.body.contains("Sales Academy"));
    let mut accepted: Vec<(&str, &str)> = fields.to_vec();
    accepted.push(("email_patterns", r".*@example\.org"));
    manager
        .post(&settings, &accepted)
        .await
        .assert_redirect_to(&settings);
    app.get("/my").await.assert_contains("Sales Academy");
}

/// Item 19: refusals carry the security headers; nothing personal is kept in caches.
#[tokio::test]
async fn refusals_carry_the_security_headers_and_nothing_is_cached() {
    let app = spawn_app().await;
    let check = |response: &reqwest::Response, what: &str| {
        let headers = response.headers();
        for name in [
            "x-frame-options",
            "x-content-type-options",
            "content-security-policy",
            "referrer-policy",
        ] {
            assert!(headers.contains_key(name), "{what}: no {name}");
        }
        assert_eq!(headers["cache-control"], "no-store", "{what}");
    };
    let csrf = app
        .client
        .post(app.url("/logout"))
        .form(&[("a", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(csrf.status(), StatusCode::FORBIDDEN);
    check(&csrf, "CSRF refusal");

    let huge = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 12 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    check(&huge, "payload too large");

    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let page = manager
        .client
        .get(manager.url("/partner/acme"))
        .send()
        .await
        .unwrap();
    check(&page, "signed-in page");
    let export = manager
        .client
        .get(manager.url(&format!(
            "/partner/acme/catalogs/{}/export/invitations.csv",
            s.catalog_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    check(&export, "CSV export");
    // The stylesheet may be cached.
    let style = app
        .client
        .get(app.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert!(
        style.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
}
