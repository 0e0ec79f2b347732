//! The JSON API: every endpoint for every kind of caller, its error codes, cursors, the
//! CSRF rule for browser sessions, and its OpenAPI description.

use partner_catalog::policies::Actor;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::analytics::other_partner_catalog;
use crate::hardening::signed_in_manager;
use crate::helpers::{TestApp, spawn_app};
use crate::journey::setup;

/// An API token of this account (staff or a manager).
async fn token_for(app: &TestApp, email: &str) -> String {
    let email = email.to_string();
    app.db
        .transaction(move |conn| {
            let user = partner_catalog::models::users::find_by_email(conn, &email)?.unwrap();
            let partner = partner_catalog::models::partners::managed_by(conn, user.id)?;
            let actor = Actor::for_user(&user, partner.map(|p| p.id));
            let (_, secret) = partner_catalog::services::api_tokens::create(conn, &actor, "tests")?;
            Ok(secret)
        })
        .await
        .unwrap()
}

/// A manager of the other partner, `beta`.
async fn beta_manager(app: &TestApp) {
    app.create_user("boss@beta.example", "beta password 1", false)
        .await;
    let ctx = app.ctx();
    app.db
        .transaction(move |conn| {
            let staff =
                partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap();
            let beta = partner_catalog::models::partners::find_by_code(conn, "beta")?.unwrap();
            partner_catalog::services::partners::assign_manager(
                conn,
                &ctx,
                &Actor::for_user(&staff, None),
                beta.id,
                "boss@beta.example",
            )
        })
        .await
        .unwrap();
}

async fn slug_of(app: &TestApp, catalog_id: i64) -> String {
    app.db
        .run(move |conn| Ok(partner_catalog::models::catalogs::find(conn, catalog_id)?.slug))
        .await
        .unwrap()
}

async fn course_key(app: &TestApp, course_id: i64) -> String {
    app.db
        .run(move |conn| Ok(partner_catalog::models::courses::find(conn, course_id)?.key))
        .await
        .unwrap()
}

/// A request with a bearer token (or none).
async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: JSON expected, got {text}"))
    };
    (status, body)
}

struct World {
    slug: String,
    beta_slug: String,
    paid: String,
    open: String,
    staff: String,
    manager: String,
    beta: String,
    revoked: String,
}

async fn world(app: &TestApp) -> World {
    let s = setup(app, None).await;
    let (_, beta_catalog) = other_partner_catalog(app).await;
    signed_in_manager(app).await;
    beta_manager(app).await;
    app.create_user("lee@example.org", "lee password 12", false)
        .await;
    app.create_user("max@example.org", "max password 12", false)
        .await;
    let revoked = token_for(app, "manager@acme.example").await;
    app.db
        .transaction(|conn| {
            use diesel::prelude::*;
            diesel::sql_query("UPDATE api_tokens SET revoked_at = now()").execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    World {
        slug: slug_of(app, s.catalog_id).await,
        beta_slug: slug_of(app, beta_catalog).await,
        paid: course_key(app, s.paid_course).await,
        open: course_key(app, s.open_course).await,
        staff: token_for(app, "staff@example.org").await,
        manager: token_for(app, "manager@acme.example").await,
        beta: token_for(app, "boss@beta.example").await,
        revoked,
    }
}

#[tokio::test]
async fn every_endpoint_answers_each_kind_of_caller_as_documented() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let s = &w.slug;
    // Learners have no tokens: a signed-in browser session stands for them.
    let lee = app.another_browser();
    lee.sign_in("lee@example.org", "lee password 12").await;

    use Method as M;
    let matrix: Vec<(M, String, Option<&str>, StatusCode)> = vec![
        (
            M::GET,
            "/api/v1/catalogs".into(),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            M::GET,
            "/api/v1/catalogs".into(),
            Some(&w.revoked),
            StatusCode::UNAUTHORIZED,
        ),
        (
            M::GET,
            "/api/v1/catalogs".into(),
            Some("pct_not-a-token"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            M::GET,
            "/api/v1/catalogs".into(),
            Some(&w.staff),
            StatusCode::OK,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}"),
            Some(&w.manager),
            StatusCode::OK,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}"),
            Some(&w.beta),
            StatusCode::NOT_FOUND,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{}", w.beta_slug),
            Some(&w.manager),
            StatusCode::NOT_FOUND,
        ),
        (
            M::GET,
            "/api/v1/catalogs/no-such-catalog".into(),
            Some(&w.staff),
            StatusCode::NOT_FOUND,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}/courses"),
            Some(&w.manager),
            StatusCode::OK,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}/courses"),
            Some(&w.beta),
            StatusCode::NOT_FOUND,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}/enrollment"),
            Some(&w.manager),
            StatusCode::OK,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}/enrollment"),
            Some(&w.beta),
            StatusCode::NOT_FOUND,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.manager),
            StatusCode::NOT_FOUND,
        ),
        (
            M::POST,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.beta),
            StatusCode::NOT_FOUND,
        ),
        (
            M::POST,
            format!("/api/v1/catalogs/{s}/enrollment?email=nobody@example.org"),
            Some(&w.manager),
            StatusCode::NOT_FOUND,
        ),
        (
            M::POST,
            format!("/api/v1/catalogs/{s}/enrollment?email=not-an-address"),
            Some(&w.manager),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::POST,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.revoked),
            StatusCode::UNAUTHORIZED,
        ),
        (
            M::POST,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.manager),
            StatusCode::CREATED,
        ),
        (
            M::POST,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.staff),
            StatusCode::CONFLICT,
        ),
        (
            M::GET,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.staff),
            StatusCode::OK,
        ),
        (
            M::DELETE,
            format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org"),
            Some(&w.beta),
            StatusCode::NOT_FOUND,
        ),
        (
            M::DELETE,
            format!("/api/v1/catalogs/{s}/enrollment?email=max@example.org"),
            Some(&w.manager),
            StatusCode::NOT_FOUND,
        ),
        (
            M::DELETE,
            "/api/v1/licences/999999".into(),
            Some(&w.staff),
            StatusCode::NOT_FOUND,
        ),
        (
            M::GET,
            "/api/v1/xapi/statements".into(),
            Some(&w.manager),
            StatusCode::OK,
        ),
        (
            M::GET,
            "/api/v1/no-such-endpoint".into(),
            Some(&w.staff),
            StatusCode::NOT_FOUND,
        ),
        (M::GET, "/api/v1/openapi.json".into(), None, StatusCode::OK),
    ];
    for (method, path, token, expected) in matrix {
        let (status, body) = call(&app, token, method.clone(), &path).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        if !status.is_success() {
            assert!(
                body["error"].is_string() && body["detail"].is_string(),
                "{method} {path}: {body}"
            );
        }
    }

    // The learner, through the browser session: their own membership only.
    let (status, body) = session_call(
        &lee,
        Method::GET,
        &format!("/api/v1/catalogs/{s}/enrollment"),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["memberships"][0]["email"], "lee@example.org");
    assert_eq!(body["memberships"][0]["channel"], "api");
    let (status, body) = session_call(
        &lee,
        Method::GET,
        &format!("/api/v1/catalogs/{s}/enrollment?email=max@example.org"),
        true,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // Their view of the catalog holds no limits.
    let (_, catalog) =
        session_call(&lee, Method::GET, &format!("/api/v1/catalogs/{s}"), true).await;
    assert!(catalog["user_limit"].is_null(), "{catalog}");
    let (_, catalog) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        &format!("/api/v1/catalogs/{s}"),
    )
    .await;
    assert_eq!(catalog["course_enrollments_limit"], 1);
    // Leaving is not allowed in this catalog.
    let (status, body) = session_call(
        &lee,
        Method::DELETE,
        &format!("/api/v1/catalogs/{s}/enrollment"),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Staff cannot be reached by a learner.
    let (status, _) = session_call(&lee, Method::GET, "/api/v1/xapi/statements", true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = session_call(&lee, Method::DELETE, "/api/v1/licences/1", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Rule 7: the one paid seat goes to the first; the second is refused with 409; the
    // open course enrols at its open mode.
    let (status, body) = session_call(
        &lee,
        Method::POST,
        &format!("/api/v1/catalogs/{s}/courses/{}/enroll", w.paid),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_granted"], true);
    assert_eq!(body["mode"], "verified");
    assert_eq!(body["licence"]["created"], true);
    assert!(body["warning"].is_null());
    let licence = body["licence"]["id"].as_i64().unwrap();
    let (status, body) = session_call(
        &lee,
        Method::POST,
        &format!("/api/v1/catalogs/{s}/courses/{}/enroll", w.open),
        true,
    )
    .await;
    assert_eq!(
        (status, body["mode"].as_str()),
        (StatusCode::OK, Some("audit")),
        "{body}"
    );
    let (status, _) = call(
        &app,
        Some(&w.manager),
        Method::POST,
        &format!("/api/v1/catalogs/{s}/enrollment?email=max@example.org"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let max = app.another_browser();
    max.sign_in("max@example.org", "max password 12").await;
    let (status, body) = session_call(
        &max,
        Method::POST,
        &format!("/api/v1/catalogs/{s}/courses/{}/enroll", w.paid),
        true,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("course_limit_reached")),
        "{body}"
    );
    let (status, body) = session_call(
        &max,
        Method::POST,
        &format!("/api/v1/catalogs/{s}/courses/no-such-course/enroll"),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Not a learner: the course of a catalog they may not see does not exist for them.
    let (status, _) = session_call(
        &max,
        Method::POST,
        &format!("/api/v1/catalogs/{}/courses/{}/enroll", w.beta_slug, w.paid),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Managers give the seat back; the other partner's manager cannot.
    let (status, _) = call(
        &app,
        Some(&w.beta),
        Method::DELETE,
        &format!("/api/v1/licences/{licence}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &app,
        Some(&w.manager),
        Method::DELETE,
        &format!("/api/v1/licences/{licence}"),
    )
    .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{body}"
    );

    // Rule 6: removed by a manager, then not a learner any more.
    let path = format!("/api/v1/catalogs/{s}/enrollment?email=lee@example.org");
    assert_eq!(
        call(&app, Some(&w.manager), Method::DELETE, &path).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Some(&w.manager), Method::DELETE, &path).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Some(&w.manager), Method::GET, &path).await.0,
        StatusCode::NOT_FOUND
    );
}

/// A request from a signed-in browser, with or without the session's CSRF token.
async fn session_call(
    browser: &TestApp,
    method: Method,
    path: &str,
    with_csrf: bool,
) -> (StatusCode, Value) {
    let mut request = browser.client.request(method, browser.url(path));
    if with_csrf {
        request = request.header("X-CSRF-Token", browser.csrf_token().await);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"))
    };
    (status, body)
}

#[tokio::test]
async fn a_browser_sessions_writes_need_its_csrf_token_and_tokens_act_as_their_user() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let manager = app.another_browser();
    manager
        .sign_in("manager@acme.example", "manager password 1")
        .await;
    let path = format!(
        "/api/v1/catalogs/{}/enrollment?email=lee@example.org",
        w.slug
    );
    let (status, body) = session_call(&manager, Method::POST, &path, false).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );
    assert_eq!(app.count("catalog_learners").await, 0, "nothing changed");
    let (status, body) = session_call(&manager, Method::POST, &path, true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The audit trail names the token's user and that a token did it.
    let (status, _) = call(&app, Some(&w.staff), Method::DELETE, &path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let by_token = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use partner_catalog::models::schema::audit_entries::dsl::*;
            Ok(audit_entries
                .filter(
                    action
                        .eq("invitation.revoke")
                        .or(action.eq("learner.remove")),
                )
                .select(api_token_id)
                .load::<Option<i64>>(conn)?)
        })
        .await
        .unwrap();
    assert!(by_token.iter().any(Option::is_some), "{by_token:?}");
}

#[tokio::test]
async fn lists_are_paged_by_cursor_and_the_description_covers_every_endpoint() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // Staff see both partners' catalogs, one a page.
    let (mut next, mut seen) = (Some("/api/v1/catalogs?limit=1".to_string()), Vec::new());
    while let Some(path) = next {
        let (status, page) = call(&app, Some(&w.staff), Method::GET, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["catalogs"].as_array().unwrap().len() <= 1);
        seen.extend(
            page["catalogs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["slug"].as_str().unwrap().to_string()),
        );
        next = page["next"].as_str().map(str::to_string);
    }
    let mut expected = vec![w.slug.clone(), w.beta_slug.clone()];
    expected.sort();
    assert_eq!(seen, expected);
    // A manager sees their partner's only.
    let (_, page) = call(&app, Some(&w.manager), Method::GET, "/api/v1/catalogs").await;
    assert_eq!(page["catalogs"].as_array().unwrap().len(), 1);
    for bad in ["limit=0", "limit=201", "limit=x"] {
        let (status, body) = call(
            &app,
            Some(&w.staff),
            Method::GET,
            &format!("/api/v1/catalogs?{bad}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_input");
    }

    let (_, api) = call(&app, None, Method::GET, "/api/v1/openapi.json").await;
    assert!(api["openapi"].as_str().unwrap().starts_with("3."));
    let paths = api["paths"].as_object().unwrap();
    for path in [
        "/api/v1/catalogs",
        "/api/v1/catalogs/{slug}",
        "/api/v1/catalogs/{slug}/courses",
        "/api/v1/catalogs/{slug}/enrollment",
        "/api/v1/catalogs/{slug}/courses/{course_key}/enroll",
        "/api/v1/licences/{id}",
        "/api/v1/xapi/statements",
    ] {
        assert!(paths.contains_key(path), "{path} described");
    }
    let docs = app.get("/api/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    docs.assert_contains("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll");
}

async fn send_json(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}")),
    )
}

#[tokio::test]
async fn invitations_are_listed_sent_resent_and_removed_with_an_outcome_per_address() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/v1/catalogs/{}/invitations", w.slug);

    // Every address sent: 201; one of them not: 207 with each outcome.
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"emails": ["a@corp.example", "b@corp.example"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    let (status, body) = send_json(&app, &w.manager, Method::POST, &path, serde_json::json!({"emails": ["a@corp.example", "not an address", "c@corp.example", "c@corp.example"]})).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    let outcomes: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "already_invited",
            "invalid_email",
            "sent",
            "duplicate_in_request"
        ]
    );
    // Bad bodies name what is wrong; too many addresses point to bulk lists.
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"emails": "a@corp.example"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input")),
        "{body}"
    );
    let many: Vec<String> = (0..101).map(|i| format!("p{i}@corp.example")).collect();
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({ "emails": many }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["fields"]["emails"]
            .as_str()
            .unwrap()
            .contains("bulk list"),
        "{body}"
    );
    // Another partner's manager: no such catalog.
    let (status, _) = send_json(
        &app,
        &w.beta,
        Method::POST,
        &path,
        serde_json::json!({"emails": ["x@corp.example"]}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listed by status, a page at a time.
    let (status, page) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        &format!("{path}?status=sent&limit=2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["invitations"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = call(&app, Some(&w.manager), Method::GET, &next).await;
    assert_eq!(rest["invitations"].as_array().unwrap().len(), 1);
    assert!(rest["next"].is_null());
    let (status, body) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        &format!("{path}?status=pending"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );

    // Resent, then removed; the other partner cannot touch it.
    let id = page["invitations"][0]["id"].as_i64().unwrap();
    let (status, _) = call(
        &app,
        Some(&w.beta),
        Method::POST,
        &format!("/api/v1/invitations/{id}/resend"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &app,
        Some(&w.manager),
        Method::POST,
        &format!("/api/v1/invitations/{id}/resend"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["send_count"], 2);
    let (status, body) = call(
        &app,
        Some(&w.staff),
        Method::POST,
        &format!("/api/v1/invitations/{id}/remove"),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("removed")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        Some(&w.staff),
        Method::POST,
        &format!("/api/v1/invitations/{id}/remove"),
    )
    .await;
    assert!(status.is_client_error(), "{status} {body}");
}

#[tokio::test]
async fn pre_enrolments_by_address_or_outside_identity_wait_join_and_can_be_cancelled() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/v1/catalogs/{}/pending-enrollments", w.slug);
    let (status, pending) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"email": "future@corp.example", "courses": [w.open]}),
    )
    .await;
    assert_eq!(
        (status, pending["status"].as_str()),
        (StatusCode::CREATED, Some("pending")),
        "{pending}"
    );
    let (status, keyed) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"external_user_key": "hr:4711"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{keyed}");
    assert_eq!(keyed["external_user_key"], "hr:4711");
    // An existing account joins at once.
    let (status, joined) = send_json(
        &app,
        &w.staff,
        Method::POST,
        &path,
        serde_json::json!({"email": "max@example.org"}),
    )
    .await;
    assert_eq!(
        (status, joined["status"].as_str()),
        (StatusCode::CREATED, Some("fulfilled")),
        "{joined}"
    );
    let (status, _) = call(
        &app,
        Some(&w.staff),
        Method::GET,
        &format!(
            "/api/v1/catalogs/{}/enrollment?email=max@example.org",
            w.slug
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Again: a conflict; both keys, or neither: named; a course from elsewhere: named.
    let (status, _) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"email": "future@corp.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"email": "a@corp.example", "external_user_key": "hr:1"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &path,
        serde_json::json!({"email": "a@corp.example", "courses": ["course-v1:Nope+X+1"]}),
    )
    .await;
    assert!(body["fields"]["courses"].is_string(), "{status} {body}");
    let (status, _) = send_json(
        &app,
        &w.beta,
        Method::POST,
        &path,
        serde_json::json!({"email": "b@corp.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, page) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        &format!("{path}?status=pending"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pending_enrollments"].as_array().unwrap().len(), 2);
    let id = pending["id"].as_i64().unwrap();
    let (status, body) = call(&app, Some(&w.beta), Method::DELETE, &format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(
        &app,
        Some(&w.manager),
        Method::DELETE,
        &format!("{path}/{id}"),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{body}"
    );
    let (status, _) = call(
        &app,
        Some(&w.manager),
        Method::DELETE,
        &format!("{path}/{id}"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn memberships_across_catalogs_their_history_and_bulk_enrolment() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let enrol = format!(
        "/api/v1/catalogs/{}/enrollment?email=lee@example.org",
        w.slug
    );
    assert_eq!(
        call(&app, Some(&w.manager), Method::POST, &enrol).await.0,
        StatusCode::CREATED
    );

    // Bulk: an existing account joins, an unknown address waits, a bad one and a catalog
    // out of reach are reported; one result per pair.
    let bulk = serde_json::json!({
        "catalogs": format!("{},{}", w.slug, w.beta_slug),
        "emails": "max@example.org, new@corp.example, not-an-address, lee@example.org",
        "courses": w.open,
    });
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        "/api/v1/enrollments/bulk_enroll",
        bulk,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes: Vec<(String, String, String)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["catalog"].as_str().unwrap().to_string(),
                r["email"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let of = |catalog: &str, email: &str| {
        outcomes
            .iter()
            .find(|(c, e, _)| c == catalog && e == email)
            .map(|(_, _, o)| o.as_str())
    };
    assert_eq!(outcomes.len(), 8);
    assert_eq!(of(&w.slug, "max@example.org"), Some("enrolled"));
    assert_eq!(of(&w.slug, "new@corp.example"), Some("pending"));
    assert_eq!(of(&w.slug, "not-an-address"), Some("invalid_email"));
    assert_eq!(of(&w.slug, "lee@example.org"), Some("already_learner"));
    assert_eq!(
        of(&w.beta_slug, "max@example.org"),
        Some("catalog_not_found")
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("p{i}@corp.example")).collect();
    let (status, body) = send_json(
        &app,
        &w.staff,
        Method::POST,
        "/api/v1/enrollments/bulk_enroll",
        serde_json::json!({"catalogs": w.slug, "emails": too_many.join(",")}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_many_emails"))
    );
    assert!(body["detail"].as_str().unwrap().contains("bulk list"));

    // Every membership in the manager's scope; a filter by address; learners see their own.
    let (status, page) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        "/api/v1/enrollments?limit=1",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["enrollments"].as_array().unwrap().len(), 1);
    let (_, rest) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        page["next"].as_str().unwrap(),
    )
    .await;
    assert_eq!(rest["enrollments"].as_array().unwrap().len(), 1);
    assert!(rest["next"].is_null());
    let (_, max) = call(
        &app,
        Some(&w.staff),
        Method::GET,
        "/api/v1/enrollments?email=max@example.org",
    )
    .await;
    assert_eq!(max["enrollments"][0]["catalog"], w.slug.as_str());
    let (_, none) = call(&app, Some(&w.beta), Method::GET, "/api/v1/enrollments").await;
    assert_eq!(none["enrollments"].as_array().unwrap().len(), 0);
    let lee = app.another_browser();
    lee.sign_in("lee@example.org", "lee password 12").await;
    let (status, own) = session_call(&lee, Method::GET, "/api/v1/enrollments", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["enrollments"].as_array().unwrap().len(), 1);
    let (status, _) = session_call(
        &lee,
        Method::GET,
        "/api/v1/enrollments?email=max@example.org",
        true,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The history: enrolled through the API by the manager's token, then removed by staff.
    assert_eq!(
        call(&app, Some(&w.staff), Method::DELETE, &enrol).await.0,
        StatusCode::NO_CONTENT
    );
    let history = format!(
        "/api/v1/catalogs/{}/enrollment/history?email=lee@example.org",
        w.slug
    );
    let (status, body) = call(&app, Some(&w.manager), Method::GET, &history).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body["history"].as_array().unwrap();
    assert!(entries.len() >= 2, "{body}");
    assert_eq!(entries[0]["actor"], "manager@acme.example");
    assert_eq!(entries[0]["role"], "api_token");
    assert!(
        entries.iter().any(|e| e["actor"] == "staff@example.org"),
        "{body}"
    );
    assert_eq!(
        call(&app, Some(&w.beta), Method::GET, &history).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = session_call(&lee, Method::GET, &history, true).await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
}
