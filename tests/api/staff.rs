use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app};

const STAFF_PAGES: &[&str] = &[
    "/staff",
    "/staff/organisations",
    "/staff/organisations/new",
    "/staff/partners",
    "/staff/partners/new",
    "/staff/courses",
    "/staff/courses?shared=1",
    "/staff/courses/new",
    "/staff/courses/import",
    "/staff/users",
    "/staff/audit",
    "/staff/audit.csv",
];

const STAFF_ACTIONS: &[&str] = &[
    "/staff/organisations",
    "/staff/partners",
    "/staff/courses",
    "/staff/courses/import",
];

async fn organisation(app: &TestApp, short_name: &str) -> i64 {
    let response = app
        .post(
            "/staff/organisations",
            &[("short_name", short_name), ("name", "Org name")],
        )
        .await;
    response.assert_redirect_to("/staff/organisations");
    app.db
        .run({
            let short_name = short_name.to_string();
            move |conn| {
                Ok(
                    partner_catalog::models::organisations::find_by_short_name(conn, &short_name)?
                        .unwrap()
                        .id,
                )
            }
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn every_staff_page_refuses_a_non_staff_user() {
    let app = spawn_app().await;
    let learner = app.signed_in_learner().await;
    let pages: Vec<String> = STAFF_PAGES
        .iter()
        .map(|p| p.to_string())
        .chain([format!("/staff/users/{}", learner.id)])
        .collect();
    for page in &pages {
        let response = app.get(page).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{page}");
        response.assert_contains("This page is for staff only.");
    }
    for action in STAFF_ACTIONS {
        let response = app
            .post(
                action,
                &[
                    ("short_name", "X"),
                    ("name", "Y"),
                    ("code", "x"),
                    ("key", "k"),
                ],
            )
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{action}");
    }
    let make_me_staff = format!("/staff/users/{}/staff", learner.id);
    assert_eq!(
        app.post(&make_me_staff, &[("is_staff", "1")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.count("organisations").await, 0);
    assert_eq!(app.count("partners").await, 0);
    assert_eq!(app.count("courses").await, 0);
    assert_eq!(app.count("audit_entries").await, 0);
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in() {
    let app = spawn_app().await;
    for page in STAFF_PAGES {
        let response = app.get(page).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{page}");
        assert!(response.location.unwrap().starts_with("/login?next="));
    }
}

#[tokio::test]
async fn staff_see_every_list() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    for page in STAFF_PAGES {
        let response = app.get(page).await;
        assert_eq!(response.status, StatusCode::OK, "{page}: {}", response.body);
    }
}

#[tokio::test]
async fn organisation_form_validation_names_fields_keeps_input_writes_nothing() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let response = app
        .post(
            "/staff/organisations",
            &[("short_name", "bad name!"), ("name", "  ")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("<a href=\"#f-short_name\">Short name</a>");
    response.assert_contains("may contain only letters");
    response.assert_contains("value=\"bad name!\"");
    response.assert_contains("is required");
    assert_eq!(app.count("organisations").await, 0);
    assert_eq!(app.count("audit_entries").await, 0);
}

#[tokio::test]
async fn organisation_short_names_are_unique() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    organisation(&app, "ACMEx").await;
    let response = app
        .post(
            "/staff/organisations",
            &[("short_name", "ACMEx"), ("name", "Again")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("is already used by another organisation");
    assert_eq!(app.count("organisations").await, 1);
}

#[tokio::test]
async fn creating_and_editing_an_organisation_is_audited() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let id = organisation(&app, "ACMEx").await;
    let list = app.get("/staff/organisations?q=acme").await;
    list.assert_contains("ACMEx");
    let response = app
        .post(
            &format!("/staff/organisations/{id}"),
            &[("short_name", "ACMEx"), ("name", "Renamed")],
        )
        .await;
    response.assert_redirect_to("/staff/organisations");
    app.get("/staff/organisations")
        .await
        .assert_contains("Renamed");
    assert_eq!(app.count("audit_entries").await, 2);
}

#[tokio::test]
async fn partner_form_validation_names_fields_keeps_input_writes_nothing() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let response = app
        .post(
            "/staff/partners",
            &[
                ("organisation_id", ""),
                ("code", "Not A Code"),
                ("name", "ACME <b>Corp</b>"),
                ("homepage_url", "javascript:alert(1)"),
                ("accent_colour", "red"),
                ("support_email", "nope"),
                ("time_zone", "Mars/Olympus"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    for message in [
        "choose an organisation",
        "may contain only lower-case letters",
        "must be a link starting with https://",
        "must be a colour like #1f6feb",
        "is not an email address",
        "is not a time zone name",
    ] {
        response.assert_contains(message);
    }
    response.assert_contains("value=\"Not A Code\"");
    // What people type is escaped, never markup.
    response.assert_contains("ACME &#60;b&#62;Corp&#60;/b&#62;");
    assert!(!response.body.contains("<b>Corp</b>"));
    assert_eq!(app.count("partners").await, 0);
}

async fn partner(app: &TestApp, organisation_id: i64, code: &str) -> i64 {
    let org = organisation_id.to_string();
    let response = app
        .post(
            "/staff/partners",
            &[
                ("organisation_id", &org),
                ("code", code),
                ("name", "ACME Corp"),
                ("time_zone", "Europe/Paris"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let code = code.to_string();
    app.db
        .run(move |conn| {
            Ok(
                partner_catalog::models::partners::find_by_code(conn, &code)?
                    .unwrap()
                    .id,
            )
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_manager_manages_at_most_one_partner() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let org = organisation(&app, "ACMEx").await;
    let first = partner(&app, org, "acme").await;
    let second = partner(&app, org, "globex").await;
    let response = app
        .post(
            &format!("/staff/partners/{first}/managers"),
            &[("email", "Boss@Example.org")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(app.count("partner_managers").await, 1);

    let response = app
        .post(
            &format!("/staff/partners/{second}/managers"),
            &[("email", "boss@example.org")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("a person manages at most one partner");
    response.assert_contains("value=\"boss@example.org\"");
    assert_eq!(app.count("partner_managers").await, 1);

    let response = app
        .post(
            &format!("/staff/partners/{second}/managers"),
            &[("email", "not an email")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("is not an email address");
}

#[tokio::test]
async fn course_form_validation_names_fields_keeps_input_writes_nothing() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let org = organisation(&app, "ACMEx").await.to_string();
    let response = app
        .post(
            "/staff/courses",
            &[
                ("key", "course-v1:OTHERx+CS1+2026"),
                ("title", ""),
                ("organisation_id", &org),
                ("modes", "audit v!"),
                ("starts_at", "2026-05-01"),
                ("ends_at", "2026-01-01"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    for message in [
        "names organisation OTHERx",
        "is required",
        "is not a mode name",
        "must not be before the start",
    ] {
        response.assert_contains(message);
    }
    response.assert_contains("value=\"course-v1:OTHERx+CS1+2026\"");
    assert_eq!(app.count("courses").await, 0);
}

#[tokio::test]
async fn course_import_with_bad_rows_reports_each_by_line_and_imports_nothing() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    organisation(&app, "ACMEx").await;
    let csv = "key,title,organisation,modes,start,end\n\
               course-v1:ACMEx+A+2026,Good one,ACMEx,audit,,\n\
               course-v1:NOPEx+B+2026,Unknown org,NOPEx,audit,,\n\
               course-v1:ACMEx+C+2026,,ACMEx,audit,2026-01-01,\n";
    let response = app.post("/staff/courses/import", &[("csv", csv)]).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("Line 3");
    response.assert_contains("organisation NOPEx does not exist");
    response.assert_contains("Line 4");
    response.assert_contains("title is required");
    response.assert_contains("course-v1:ACMEx+A+2026");
    assert_eq!(app.count("courses").await, 0);
}

#[tokio::test]
async fn course_import_with_good_rows_imports_them_all() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    organisation(&app, "ACMEx").await;
    let csv = "key,title,organisation,modes,start,end\n\
               course-v1:ACMEx+A+2026,Course A,ACMEx,audit|verified,2026-01-01,2026-12-31\n\
               course-v1:ACMEx+B+2026,\"Course B, with a comma\",ACMEx,audit,,\n";
    let response = app.post("/staff/courses/import", &[("csv", csv)]).await;
    response.assert_redirect_to("/staff/courses");
    assert_eq!(app.count("courses").await, 2);
    let list = app.get("/staff/courses").await;
    list.assert_contains("Imported 2 courses.");
    list.assert_contains("Course B, with a comma");
    // Importing the same keys again is refused as a whole.
    let response = app.post("/staff/courses/import", &[("csv", csv)]).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("already exists");
    assert_eq!(app.count("courses").await, 2);
}

#[tokio::test]
async fn the_shared_pool_is_managed_from_the_course_list() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    organisation(&app, "ACMEx").await;
    let csv =
        "key,title,organisation,modes,start,end\ncourse-v1:ACMEx+A+2026,Course A,ACMEx,audit,,\n";
    app.post("/staff/courses/import", &[("csv", csv)])
        .await
        .assert_redirect_to("/staff/courses");
    let id = app
        .db
        .run(|conn| {
            Ok(
                partner_catalog::models::courses::find_by_key(conn, "course-v1:ACMEx+A+2026")?
                    .unwrap()
                    .id,
            )
        })
        .await
        .unwrap();
    let response = app
        .post(&format!("/staff/courses/{id}/shared"), &[("shared", "1")])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("shared_pool_courses").await, 1);
    app.get("/staff/courses?shared=1")
        .await
        .assert_contains("Course A");
    app.post(&format!("/staff/courses/{id}/shared"), &[("shared", "0")])
        .await;
    assert_eq!(app.count("shared_pool_courses").await, 0);
}

#[tokio::test]
async fn staff_can_make_staff_and_deactivate_but_not_themselves() {
    let app = spawn_app().await;
    let me = app.signed_in_staff().await;
    let other = app
        .create_user("other@example.org", "other password 1", false)
        .await;
    let search = app.get("/staff/users?q=other@").await;
    search.assert_contains("other@example.org");
    app.get("/staff/users?q=OTHER%40Example")
        .await
        .assert_contains("other@example.org");
    assert!(!search.body.contains(&format!("/staff/users/{}\"", me.id)));

    let response = app
        .post(
            &format!("/staff/users/{}/staff", other.id),
            &[("is_staff", "1")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = app
        .post(
            &format!("/staff/users/{}/active", other.id),
            &[("is_active", "0"), ("reason", "left the company")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let (is_staff, is_active) = app
        .db
        .run(move |conn| {
            let u = partner_catalog::models::users::find(conn, other.id)?;
            Ok((u.is_staff, u.is_active))
        })
        .await
        .unwrap();
    assert!(is_staff && !is_active);

    let response = app
        .post(
            &format!("/staff/users/{}/active", me.id),
            &[("is_active", "0")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let page = app.get(&format!("/staff/users/{}", me.id)).await;
    page.assert_contains("You cannot deactivate your own account.");
    assert_eq!(app.count("audit_entries").await, 2);
}

#[tokio::test]
async fn an_over_long_reason_changes_nothing_and_says_why() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let other = app
        .create_user("other@example.org", "other password 1", false)
        .await;
    let reason = "x".repeat(501);
    let response = app
        .post(
            &format!("/staff/users/{}/active", other.id),
            &[("is_active", "0"), ("reason", reason.as_str())],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    app.get(&format!("/staff/users/{}", other.id))
        .await
        .assert_contains("Nothing was changed: the reason is too long (at most 500 characters).");
    let is_active = app
        .db
        .run(move |conn| Ok(partner_catalog::models::users::find(conn, other.id)?.is_active))
        .await
        .unwrap();
    assert!(is_active);
    assert_eq!(app.count("audit_entries").await, 0);
}
