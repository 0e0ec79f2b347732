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
    let client = crate::helpers::plain_client();
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

#[tokio::test]
async fn a_method_an_address_does_not_answer_is_refused_naming_those_it_does() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::PATCH, "/api/v1/catalogs", "GET, HEAD"),
        (
            Method::DELETE,
            "/api/v1/catalogs/any-slug/invitations",
            "GET, HEAD, POST",
        ),
        (
            Method::PUT,
            "/api/v1/catalogs/any-slug/enrollment",
            "GET, HEAD, POST, DELETE",
        ),
        (Method::GET, "/api/v1/invitations/7/resend", "POST"),
        (Method::POST, "/api/v1/openapi.json", "GET, HEAD"),
    ] {
        let response = crate::helpers::plain_client()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
        assert!(body["detail"].as_str().unwrap().contains(allow), "{body}");
    }
    // No such address with any method.
    let (status, body) = call(&app, None, Method::POST, "/api/v1/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    // The methods an address answers still want a caller.
    let (status, _) = call(&app, None, Method::GET, "/api/v1/catalogs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn send_json(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = crate::helpers::plain_client()
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

/// The matrix: each of the 19 operations of the description, for each kind of
/// caller, with the status the description documents for it; every refusal is a JSON
/// error, and the refusals together carry every error code callers have to handle.
#[tokio::test]
async fn every_operation_for_every_role_answers_its_documented_status() {
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};

    /// Who calls.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Caller {
        /// Staff's API token.
        Staff,
        /// The API token of a manager of the catalog's partner (acme).
        Manager,
        /// The API token of a manager of another partner (beta).
        OtherManager,
        /// A learner of the catalog, signed in in a browser; writes carry X-CSRF-Token.
        Learner,
        /// The same session, a write without X-CSRF-Token.
        LearnerWithoutCsrf,
        /// No token and no session.
        Anonymous,
        /// A revoked API token (of the acme manager).
        Revoked,
    }
    use Caller::*;

    /// An operation as the description names it (`POST /api/v1/…/{slug}/…`), with the
    /// values of its placeholders, its query and its JSON body.
    #[derive(Clone)]
    struct Op {
        name: &'static str,
        path: String,
        query: Option<String>,
        body: Option<Value>,
    }
    impl Op {
        fn at(mut self, placeholder: &str, value: impl std::fmt::Display) -> Self {
            self.path = self
                .path
                .replace(&format!("{{{placeholder}}}"), &value.to_string());
            self
        }
        fn query(mut self, query: &str) -> Self {
            self.query = Some(query.to_string());
            self
        }
        fn json(mut self, body: Value) -> Self {
            self.body = Some(body);
            self
        }
        fn method(&self) -> Method {
            self.name.split(' ').next().unwrap().parse().unwrap()
        }
        fn template(&self) -> &'static str {
            self.name.split(' ').nth(1).unwrap()
        }
        fn target(&self) -> String {
            match &self.query {
                Some(query) => format!("{}?{query}", self.path),
                None => self.path.clone(),
            }
        }
    }

    let app = spawn_app().await;
    let w = world(&app).await;
    let slug = w.slug.clone();
    let op = |name: &'static str| {
        Op {
            name,
            path: name.split(' ').nth(1).unwrap().to_string(),
            query: None,
            body: None,
        }
        .at("slug", &slug)
    };
    let catalog = format!("/api/v1/catalogs/{slug}");

    // The data each request is about. lee is the learner who calls; max and ann hold the
    // catalog's two paid seats (so the next paid request meets the limit); sam and kim
    // have accounts and are enrolled, then removed, by the requests below.
    for (email, password) in [
        ("ann@example.org", "ann password 12"),
        ("sam@example.org", "sam password 12"),
        ("kim@example.org", "kim password 12"),
    ] {
        app.create_user(email, password, false).await;
    }
    let limited = slug.clone();
    app.db
        .transaction(move |conn| {
            use diesel::prelude::*;
            diesel::sql_query("UPDATE catalogs SET course_enrollments_limit = 2 WHERE slug = $1")
                .bind::<diesel::sql_types::Text, _>(limited)
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    for email in ["lee@example.org", "max@example.org", "ann@example.org"] {
        let (status, body) = call(
            &app,
            Some(&w.manager),
            Method::POST,
            &format!("{catalog}/enrollment?email={email}"),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{email}: {body}");
    }
    let mut seats = Vec::new();
    for (email, password) in [
        ("max@example.org", "max password 12"),
        ("ann@example.org", "ann password 12"),
    ] {
        let browser = app.another_browser();
        browser.sign_in(email, password).await;
        let (status, body) = session_call(
            &browser,
            Method::POST,
            &format!("{catalog}/courses/{}/enroll", w.paid),
            true,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
        seats.push(body["licence"]["id"].as_i64().unwrap());
    }
    let (max_seat, ann_seat) = (seats[0], seats[1]);
    let (status, body) = send_json(
        &app,
        &w.manager,
        Method::POST,
        &format!("{catalog}/invitations"),
        json!({"emails": ["resend-me@corp.example", "remove-a@corp.example", "remove-b@corp.example"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, sent) = call(
        &app,
        Some(&w.manager),
        Method::GET,
        &format!("{catalog}/invitations?status=sent&limit=200"),
    )
    .await;
    let invitation = |email: &str| {
        sent["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["email"] == email)
            .unwrap_or_else(|| panic!("{email} invited: {sent}"))["id"]
            .as_i64()
            .unwrap()
    };
    let (to_resend, remove_a, remove_b) = (
        invitation("resend-me@corp.example"),
        invitation("remove-a@corp.example"),
        invitation("remove-b@corp.example"),
    );
    let mut waiting = Vec::new();
    for email in ["wait-a@corp.example", "wait-b@corp.example"] {
        let (status, body) = send_json(
            &app,
            &w.manager,
            Method::POST,
            &format!("{catalog}/pending-enrollments"),
            json!({ "email": email }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{email}: {body}");
        waiting.push(body["id"].as_i64().unwrap());
    }
    let (wait_a, wait_b) = (waiting[0], waiting[1]);
    let lee = app.another_browser();
    lee.sign_in("lee@example.org", "lee password 12").await;
    let csrf = lee.csrf_token().await;

    let bulk = |emails: &str| json!({ "catalogs": slug, "emails": emails });
    let too_many: Vec<String> = (0..1001).map(|i| format!("p{i}@corp.example")).collect();
    let invite = |email: &str| json!({ "emails": [email] });
    let pre_enrol = |email: &str| json!({ "email": email });

    // In order: where a request changes something, the later rows expect its result.
    let rows: Vec<(Op, Caller, u16)> = vec![
        // Catalogs: anyone signed in lists those they may see; another partner's is not found.
        (op("GET /api/v1/catalogs"), Staff, 200),
        (op("GET /api/v1/catalogs"), Manager, 200),
        (op("GET /api/v1/catalogs"), OtherManager, 200),
        (op("GET /api/v1/catalogs"), Learner, 200),
        (op("GET /api/v1/catalogs"), Anonymous, 401),
        (op("GET /api/v1/catalogs"), Revoked, 401),
        (op("GET /api/v1/catalogs").query("limit=0"), Staff, 400),
        (op("GET /api/v1/catalogs/{slug}"), Staff, 200),
        (op("GET /api/v1/catalogs/{slug}"), Manager, 200),
        (op("GET /api/v1/catalogs/{slug}"), OtherManager, 404),
        (op("GET /api/v1/catalogs/{slug}"), Learner, 200),
        (op("GET /api/v1/catalogs/{slug}"), Anonymous, 401),
        (op("GET /api/v1/catalogs/{slug}"), Revoked, 401),
        (op("GET /api/v1/catalogs/{slug}/courses"), Staff, 200),
        (op("GET /api/v1/catalogs/{slug}/courses"), Manager, 200),
        (op("GET /api/v1/catalogs/{slug}/courses"), OtherManager, 404),
        (op("GET /api/v1/catalogs/{slug}/courses"), Learner, 200),
        (op("GET /api/v1/catalogs/{slug}/courses"), Anonymous, 401),
        (op("GET /api/v1/catalogs/{slug}/courses"), Revoked, 401),
        // Memberships: every one for those who manage, a learner's own for the learner.
        (op("GET /api/v1/catalogs/{slug}/enrollment"), Staff, 200),
        (op("GET /api/v1/catalogs/{slug}/enrollment"), Manager, 200),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment"),
            OtherManager,
            404,
        ),
        (op("GET /api/v1/catalogs/{slug}/enrollment"), Learner, 200),
        (op("GET /api/v1/catalogs/{slug}/enrollment"), Anonymous, 401),
        (op("GET /api/v1/catalogs/{slug}/enrollment"), Revoked, 401),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment").query("email=max@example.org"),
            Learner,
            403,
        ),
        // Joining: staff and managers enrol an account; the learner already is one.
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=sam@example.org"),
            Staff,
            201,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=kim@example.org"),
            Manager,
            201,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=kim@example.org"),
            OtherManager,
            404,
        ),
        (op("POST /api/v1/catalogs/{slug}/enrollment"), Learner, 409),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment"),
            LearnerWithoutCsrf,
            403,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=sam@example.org"),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=sam@example.org"),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=not-an-address"),
            Manager,
            400,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/enrollment").query("email=nobody@example.org"),
            Manager,
            404,
        ),
        // Leaving: staff and managers remove anyone; this catalog keeps its learners.
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment").query("email=kim@example.org"),
            Staff,
            204,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment").query("email=sam@example.org"),
            Manager,
            204,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment").query("email=lee@example.org"),
            OtherManager,
            404,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment"),
            Learner,
            403,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment").query("email=lee@example.org"),
            Anonymous,
            401,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment").query("email=lee@example.org"),
            Revoked,
            401,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/enrollment").query("email=sam@example.org"),
            Manager,
            404,
        ),
        // A membership's history: for those who manage the catalog.
        (
            op("GET /api/v1/catalogs/{slug}/enrollment/history").query("email=lee@example.org"),
            Staff,
            200,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment/history").query("email=lee@example.org"),
            Manager,
            200,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment/history").query("email=lee@example.org"),
            OtherManager,
            404,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment/history").query("email=lee@example.org"),
            Learner,
            403,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment/history").query("email=lee@example.org"),
            Anonymous,
            401,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/enrollment/history").query("email=lee@example.org"),
            Revoked,
            401,
        ),
        // Memberships across catalogs: each caller's scope (another partner's: none).
        (op("GET /api/v1/enrollments"), Staff, 200),
        (op("GET /api/v1/enrollments"), Manager, 200),
        (op("GET /api/v1/enrollments"), OtherManager, 200),
        (op("GET /api/v1/enrollments"), Learner, 200),
        (op("GET /api/v1/enrollments"), Anonymous, 401),
        (op("GET /api/v1/enrollments"), Revoked, 401),
        // Bulk: a catalog out of reach is an outcome per pair, not a refusal.
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("bulk-staff@corp.example")),
            Staff,
            200,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("bulk-manager@corp.example")),
            Manager,
            200,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("bulk-beta@corp.example")),
            OtherManager,
            200,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("bulk-lee@corp.example")),
            Learner,
            403,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("bulk-anon@corp.example")),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("bulk-revoked@corp.example")),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk(&too_many.join(","))),
            Staff,
            413,
        ),
        (
            op("POST /api/v1/enrollments/bulk_enroll").json(bulk("")),
            Manager,
            400,
        ),
        // Course access is the learner's (rule 7); the seats are both taken.
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.open),
            Staff,
            403,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.open),
            Manager,
            404,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.open),
            OtherManager,
            404,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.open),
            Learner,
            200,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.paid),
            Learner,
            409,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.open),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/courses/{course_key}/enroll")
                .at("course_key", &w.open),
            Revoked,
            401,
        ),
        // Paid seats are released by those who manage the catalog, once.
        (
            op("DELETE /api/v1/licences/{id}").at("id", max_seat),
            OtherManager,
            404,
        ),
        (
            op("DELETE /api/v1/licences/{id}").at("id", max_seat),
            Learner,
            404,
        ),
        (
            op("DELETE /api/v1/licences/{id}").at("id", max_seat),
            Anonymous,
            401,
        ),
        (
            op("DELETE /api/v1/licences/{id}").at("id", max_seat),
            Revoked,
            401,
        ),
        (
            op("DELETE /api/v1/licences/{id}").at("id", max_seat),
            Manager,
            200,
        ),
        (
            op("DELETE /api/v1/licences/{id}").at("id", ann_seat),
            Staff,
            200,
        ),
        (
            op("DELETE /api/v1/licences/{id}").at("id", ann_seat),
            Staff,
            409,
        ),
        // Invitations: for those who manage the catalog.
        (op("GET /api/v1/catalogs/{slug}/invitations"), Staff, 200),
        (op("GET /api/v1/catalogs/{slug}/invitations"), Manager, 200),
        (
            op("GET /api/v1/catalogs/{slug}/invitations"),
            OtherManager,
            404,
        ),
        (op("GET /api/v1/catalogs/{slug}/invitations"), Learner, 403),
        (
            op("GET /api/v1/catalogs/{slug}/invitations"),
            Anonymous,
            401,
        ),
        (op("GET /api/v1/catalogs/{slug}/invitations"), Revoked, 401),
        (
            op("GET /api/v1/catalogs/{slug}/invitations").query("status=pending"),
            Manager,
            400,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/invitations").json(invite("by-staff@corp.example")),
            Staff,
            201,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/invitations").json(invite("by-acme@corp.example")),
            Manager,
            201,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/invitations").json(invite("by-beta@corp.example")),
            OtherManager,
            404,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/invitations").json(invite("by-lee@corp.example")),
            Learner,
            403,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/invitations").json(invite("by-anon@corp.example")),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/invitations").json(invite("by-revoked@corp.example")),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/invitations/{id}/resend").at("id", to_resend),
            Staff,
            200,
        ),
        (
            op("POST /api/v1/invitations/{id}/resend").at("id", to_resend),
            Manager,
            200,
        ),
        (
            op("POST /api/v1/invitations/{id}/resend").at("id", to_resend),
            OtherManager,
            404,
        ),
        (
            op("POST /api/v1/invitations/{id}/resend").at("id", to_resend),
            Learner,
            404,
        ),
        (
            op("POST /api/v1/invitations/{id}/resend").at("id", to_resend),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/invitations/{id}/resend").at("id", to_resend),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_a),
            OtherManager,
            404,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_a),
            Learner,
            404,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_a),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_a),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_a),
            Manager,
            200,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_b),
            Staff,
            200,
        ),
        (
            op("POST /api/v1/invitations/{id}/remove").at("id", remove_b),
            Staff,
            409,
        ),
        // Pre-enrolments: for those who manage the catalog.
        (
            op("GET /api/v1/catalogs/{slug}/pending-enrollments"),
            Staff,
            200,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/pending-enrollments"),
            Manager,
            200,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/pending-enrollments"),
            OtherManager,
            404,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/pending-enrollments"),
            Learner,
            403,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/pending-enrollments"),
            Anonymous,
            401,
        ),
        (
            op("GET /api/v1/catalogs/{slug}/pending-enrollments"),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-staff@corp.example")),
            Staff,
            201,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-acme@corp.example")),
            Manager,
            201,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-beta@corp.example")),
            OtherManager,
            404,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-lee@corp.example")),
            Learner,
            403,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-anon@corp.example")),
            Anonymous,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-revoked@corp.example")),
            Revoked,
            401,
        ),
        (
            op("POST /api/v1/catalogs/{slug}/pending-enrollments")
                .json(pre_enrol("pre-acme@corp.example")),
            Manager,
            409,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_a),
            OtherManager,
            404,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_a),
            Learner,
            403,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_a),
            Anonymous,
            401,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_a),
            Revoked,
            401,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_a),
            Manager,
            200,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_b),
            Staff,
            200,
        ),
        (
            op("DELETE /api/v1/catalogs/{slug}/pending-enrollments/{id}").at("id", wait_b),
            Staff,
            409,
        ),
        // xAPI statements: staff every partner's, managers their own partner's.
        (op("GET /api/v1/xapi/statements"), Staff, 200),
        (op("GET /api/v1/xapi/statements"), Manager, 200),
        (op("GET /api/v1/xapi/statements"), OtherManager, 200),
        (op("GET /api/v1/xapi/statements"), Learner, 403),
        (op("GET /api/v1/xapi/statements"), Anonymous, 401),
        (op("GET /api/v1/xapi/statements"), Revoked, 401),
    ];

    // The table covers the description: every operation it documents, for each caller,
    // and each expected status is one the operation documents.
    let (_, api) = call(&app, None, Method::GET, "/api/v1/openapi.json").await;
    let mut described = BTreeSet::new();
    for (path, item) in api["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                described.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let tabled: BTreeSet<String> = rows.iter().map(|(op, _, _)| op.name.to_string()).collect();
    assert_eq!(
        tabled, described,
        "the table's operations are the description's"
    );
    assert_eq!(tabled.len(), 19);
    let mut callers: BTreeMap<&str, BTreeSet<Caller>> = BTreeMap::new();
    for (op, caller, expected) in &rows {
        callers.entry(op.name).or_default().insert(*caller);
        let documented = &api["paths"][op.template()][op.method().as_str().to_lowercase()]["responses"]
            [expected.to_string()];
        assert!(
            documented.is_object(),
            "{} does not document {expected}",
            op.name
        );
    }
    for (name, seen) in &callers {
        for caller in [Staff, Manager, OtherManager, Learner, Anonymous, Revoked] {
            assert!(seen.contains(&caller), "{name}: no row for {caller:?}");
        }
    }

    // Each failed token attempt counts against the client's address, and ten in 15
    // minutes block every token from it: the revoked token calls from addresses of its
    // own, so that its refusals do not throttle the other rows.
    let mut revoked_from = 0;
    let mut codes = BTreeSet::new();
    let mut differences = Vec::new();
    for (op, caller, expected) in &rows {
        let (client, token, with_csrf) = match caller {
            Staff => (crate::helpers::plain_client(), Some(&w.staff), false),
            Manager => (crate::helpers::plain_client(), Some(&w.manager), false),
            OtherManager => (crate::helpers::plain_client(), Some(&w.beta), false),
            Learner => (lee.client.clone(), None, true),
            LearnerWithoutCsrf => (lee.client.clone(), None, false),
            Anonymous => (crate::helpers::plain_client(), None, false),
            Revoked => {
                revoked_from += 1;
                let from = app.browser_from(&format!("127.0.9.{revoked_from}"));
                (from.client, Some(&w.revoked), false)
            }
        };
        let mut request = client.request(op.method(), app.url(&op.target()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if with_csrf {
            request = request.header("X-CSRF-Token", &csrf);
        }
        if let Some(body) = &op.body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let row = format!(
            "{} {} as {caller:?}",
            op.method(),
            op.target().chars().take(120).collect::<String>()
        );
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{row}: JSON expected, got {text}"))
        };
        if status.as_u16() != *expected {
            differences.push(format!("{row}: expected {expected}, got {status}: {body}"));
        }
        if !status.is_success() {
            assert!(
                body["error"].is_string() && body["detail"].is_string(),
                "{row}: an error is {{error, detail}}: {body}"
            );
            codes.insert(body["error"].as_str().unwrap().to_string());
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    for code in [
        "unauthenticated",
        "invalid_token",
        "forbidden",
        "not_found",
        "invalid_input",
        "conflict",
        "course_limit_reached",
        "csrf_failed",
        "too_many_emails",
    ] {
        assert!(codes.contains(code), "{code} not seen among {codes:?}");
    }
}
