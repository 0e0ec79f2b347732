//! Rule 8: pre-enrolment by email or outside identity, fulfilled when the account
//! appears — and only once its address is verified.

use diesel::prelude::*;
use partner_catalog::models::schema::{catalogs, invitations, pending_enrollments};
use reqwest::StatusCode;

use crate::bulk::{job, run_jobs, upload};
use crate::hardening::signed_in_manager;
use crate::helpers::{TestApp, spawn_app};
use crate::journey::{Setup, last_email_to, setup};

async fn pre_enrol(
    manager: &TestApp,
    s: &Setup,
    person: &str,
    courses: &[i64],
) -> crate::helpers::Html {
    let mut fields: Vec<(&str, String)> = vec![("person", person.to_string())];
    for course in courses {
        fields.push(("courses", course.to_string()));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    manager
        .post(
            &format!("/partner/acme/catalogs/{}/pre-enrolments", s.catalog_id),
            &fields,
        )
        .await
}

async fn is_learner(app: &TestApp, catalog_id: i64, email: &str) -> bool {
    let email = email.to_string();
    app.db
        .run(move |conn| {
            use partner_catalog::models::schema::{catalog_learners, users};
            let n: i64 = catalog_learners::table
                .inner_join(users::table)
                .filter(catalog_learners::catalog_id.eq(catalog_id))
                .filter(catalog_learners::is_active.eq(true))
                .filter(users::email.eq(email))
                .count()
                .get_result(conn)?;
            Ok(n == 1)
        })
        .await
        .unwrap()
}

async fn sign_up(browser: &TestApp, email: &str) {
    let page = browser
        .post(
            "/signup",
            &[
                ("email", email),
                ("full_name", "Someone"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

async fn confirm(app: &TestApp, browser: &TestApp, email: &str) {
    let (_, secret) = last_email_to(app, email).await;
    browser
        .post(&format!("/verify-email/{secret}"), &[])
        .await
        .assert_redirect_to("/my");
}

#[tokio::test]
async fn a_pre_enrolled_address_joins_once_verified_with_its_courses_and_never_before() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    pre_enrol(
        &manager,
        &s,
        "Ada@Example.org",
        &[s.paid_course, s.open_course],
    )
    .await
    .assert_redirect_to(&format!(
        "/partner/acme/catalogs/{}/pre-enrolments",
        s.catalog_id
    ));
    let list = manager
        .get(&format!(
            "/partner/acme/catalogs/{}/pre-enrolments",
            s.catalog_id
        ))
        .await;
    list.assert_contains("ada@example.org");
    list.assert_contains(">pending<");
    // No email with a link is sent to a pre-enrolled person.
    assert_eq!(
        crate::hardening::emails_of_kind(&app, "ada@example.org", "invitation").await,
        0
    );

    // Anyone can type the address at sign-up: nothing happens until it is verified.
    let ada = app.another_browser();
    sign_up(&ada, "ada@example.org").await;
    assert!(!is_learner(&app, s.catalog_id, "ada@example.org").await);
    confirm(&app, &ada, "ada@example.org").await;
    assert!(is_learner(&app, s.catalog_id, "ada@example.org").await);
    let my = ada.get("/my").await;
    my.assert_contains("Sales Academy");
    // Both courses were given: the paid one with a seat.
    let modes: Vec<String> = app
        .db
        .run(|conn| {
            use partner_catalog::models::schema::platform_enrollments as e;
            Ok(e::table.select(e::mode).order(e::mode).load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(modes, vec!["audit", "verified"]);
    let channel: String = app
        .db
        .run(|conn| {
            Ok(invitations::table
                .filter(invitations::email.eq("ada@example.org"))
                .select(invitations::channel)
                .first(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(channel, "pre_enrollment");
    manager
        .get(&format!(
            "/partner/acme/catalogs/{}/pre-enrolments?status=fulfilled",
            s.catalog_id
        ))
        .await
        .assert_contains("ada@example.org");
}

#[tokio::test]
async fn a_verified_change_of_address_and_a_linked_identity_fulfil_too() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    pre_enrol(&manager, &s, "new@example.org", &[]).await;
    pre_enrol(&manager, &s, "University:12345", &[]).await;
    let bad = pre_enrol(&manager, &s, "just a name", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    bad.assert_contains(
        "is neither an email address (such as ada@example.org) nor an outside identity",
    );
    bad.assert_contains("value=\"just a name\"");

    // An address change, once the new address is confirmed.
    let learner = app.signed_in_learner().await;
    app.post(
        "/account/email",
        &[
            ("new_email", "new@example.org"),
            ("email_current_password", "learner password 1"),
        ],
    )
    .await
    .assert_redirect_to("/account");
    assert!(!is_learner(&app, s.catalog_id, "new@example.org").await);
    let (_, secret) = last_email_to(&app, "new@example.org").await;
    app.post(&format!("/verify-email/{secret}"), &[]).await;
    assert!(is_learner(&app, s.catalog_id, "new@example.org").await);

    // An identity staff link to an account.
    let other = app
        .create_user("student@example.org", "student password 1", false)
        .await;
    let staff = app.another_browser();
    staff
        .sign_in("staff@example.org", "staff password 1")
        .await
        .assert_redirect_to("/");
    let refused = staff
        .post(
            &format!("/staff/users/{}/identities", other.id),
            &[("identity", "no colon")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("value=\"no colon\"");
    staff
        .post(
            &format!("/staff/users/{}/identities", other.id),
            &[("identity", "university:12345")],
        )
        .await
        .assert_redirect_to(&format!("/staff/users/{}", other.id));
    assert!(is_learner(&app, s.catalog_id, "student@example.org").await);
    staff
        .get(&format!("/staff/users/{}", other.id))
        .await
        .assert_contains("university:12345");
    // The same identity cannot be linked to someone else.
    let taken = staff
        .post(
            &format!("/staff/users/{}/identities", learner.id),
            &[("identity", "university:12345")],
        )
        .await;
    taken.assert_contains("already linked to student@example.org");
    let audited: i64 = app
        .db
        .run(|conn| {
            use partner_catalog::models::schema::audit_entries as a;
            Ok(a::table
                .filter(a::action.eq("user.identity_link"))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn an_expired_or_cancelled_pre_enrolment_is_not_fulfilled() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    pre_enrol(&manager, &s, "late@example.org", &[]).await;
    pre_enrol(&manager, &s, "gone@example.org", &[]).await;
    app.db
        .run(|conn| {
            diesel::update(
                pending_enrollments::table
                    .filter(pending_enrollments::email.eq("late@example.org")),
            )
            .set(pending_enrollments::expires_at.eq(chrono::Utc::now() - chrono::Duration::days(1)))
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let gone: i64 = app
        .db
        .run(|conn| {
            Ok(pending_enrollments::table
                .filter(pending_enrollments::email.eq("gone@example.org"))
                .select(pending_enrollments::id)
                .first(conn)?)
        })
        .await
        .unwrap();
    // Cancelling asks first, and the reason reaches the audit log.
    let cancel = format!(
        "/partner/acme/catalogs/{}/pre-enrolments/{gone}/cancel",
        s.catalog_id
    );
    let question = manager.get(&cancel).await;
    assert_eq!(question.status, StatusCode::OK);
    question.assert_contains("Cancel the pre-enrolment of gone@example.org");
    assert_eq!(
        manager
            .get(&format!(
                "/partner/acme/catalogs/{}/pre-enrolments/{}/cancel",
                s.catalog_id,
                gone + 1000
            ))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let too_long = "x".repeat(501);
    let refused = manager.post(&cancel, &[("reason", &too_long)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains(&too_long);
    manager
        .post(&cancel, &[("reason", "Hired elsewhere")])
        .await
        .assert_redirect_to(&format!(
            "/partner/acme/catalogs/{}/pre-enrolments",
            s.catalog_id
        ));
    let reason: Option<String> = app
        .db
        .run(|conn| {
            use partner_catalog::models::schema::audit_entries;
            Ok(audit_entries::table
                .filter(audit_entries::action.eq("pre_enrollment.cancel"))
                .select(audit_entries::reason)
                .first(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("Hired elsewhere"));
    for email in ["late@example.org", "gone@example.org"] {
        let browser = app.another_browser();
        sign_up(&browser, email).await;
        confirm(&app, &browser, email).await;
        assert!(!is_learner(&app, s.catalog_id, email).await, "{email}");
    }
    let page = manager
        .get(&format!(
            "/partner/acme/catalogs/{}/pre-enrolments",
            s.catalog_id
        ))
        .await;
    page.assert_contains(">expired<");
    page.assert_contains(">cancelled<");
}

#[tokio::test]
async fn a_full_catalog_keeps_it_waiting_and_the_retry_fulfils_it_once_a_place_frees() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let first = app
        .create_user("first@example.org", "first password 1", false)
        .await;
    let catalog_id = s.catalog_id;
    app.db
        .run(move |conn| {
            diesel::update(catalogs::table.find(catalog_id))
                .set(catalogs::user_limit.eq(1))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    pre_enrol(&manager, &s, "first@example.org", &[]).await;
    assert!(
        is_learner(&app, s.catalog_id, "first@example.org").await,
        "an account joins at once"
    );
    pre_enrol(&manager, &s, "second@example.org", &[]).await;
    let second = app.another_browser();
    sign_up(&second, "second@example.org").await;
    confirm(&app, &second, "second@example.org").await;
    assert!(!is_learner(&app, s.catalog_id, "second@example.org").await);
    let page = manager
        .get(&format!(
            "/partner/acme/catalogs/{}/pre-enrolments?status=waiting",
            s.catalog_id
        ))
        .await;
    page.assert_contains("second@example.org");
    page.assert_contains("the catalog is full");
    // The person sees it waiting too, rather than an empty page.
    let mine = second.get("/my").await;
    mine.assert_contains("ACME Corporation pre-enrolled you in <strong>Sales Academy</strong>, but you cannot join yet: the catalog is full");
    assert!(!mine.body.contains("No catalog is open to you yet"));

    // A place frees; the worker's retry fulfils it.
    let staff = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap())
        })
        .await
        .unwrap();
    let first_id = first.id;
    app.db
        .transaction(move |conn| {
            partner_catalog::services::invitations::remove_learner(
                conn,
                &partner_catalog::policies::Actor::for_user(&staff, None),
                catalog_id,
                first_id,
                None,
            )
        })
        .await
        .unwrap();
    let retries = partner_catalog::jobs::pre_enrollment::PreEnrollmentRetries::new(app.db.clone());
    let (tried, fulfilled) = retries.retry().await.unwrap();
    assert_eq!((tried, fulfilled), (1, 1));
    assert!(is_learner(&app, s.catalog_id, "second@example.org").await);
    assert!(!second.get("/my").await.body.contains("pre-enrolled you in"));
}

#[tokio::test]
async fn a_bulk_pre_enrolment_joins_accounts_at_once_and_keeps_the_rest_waiting() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    app.create_user("has.account@example.org", "account password 1", false)
        .await;
    let csv = "email,external_user_key,full_name\n\
               has.account@example.org,,Has Account\n\
               ,university:777,Student Seven\n\
               ,not-a-key,Broken\n\
               ,,Nobody\n\
               future@example.org,,Future\n";
    let uploaded = upload(
        &manager,
        s.catalog_id,
        "pre_enroll",
        csv.as_bytes(),
        "",
        &[s.open_course],
    )
    .await;
    let id: i64 = uploaded
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The preview tells who joins at once from who waits for an account.
    let preview = manager
        .get(&format!(
            "/partner/acme/catalogs/{}/bulk/{id}",
            s.catalog_id
        ))
        .await;
    preview.assert_contains("has an account: joins at once: 1");
    preview.assert_contains("to be pre-enrolled: joins when the account appears: 2");
    manager
        .post(
            &format!("/partner/acme/catalogs/{}/bulk/{id}/submit", s.catalog_id),
            &[],
        )
        .await;
    run_jobs(&app).await;
    let done = job(&app, id).await;
    assert_eq!(done.status, "done");
    let outcomes: Vec<(i32, Option<String>)> = app
        .db
        .run(move |conn| {
            use partner_catalog::models::schema::bulk_job_rows as r;
            Ok(r::table
                .filter(r::job_id.eq(id))
                .order(r::line_number)
                .select((r::line_number, r::outcome))
                .load(conn)?)
        })
        .await
        .unwrap();
    let outcomes: Vec<(i32, &str)> = outcomes
        .iter()
        .map(|(l, o)| (*l, o.as_deref().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (2, "enrolled"),
            (3, "pre_enrolled"),
            (4, "invalid_external_key"),
            (5, "invalid_email"),
            (6, "pre_enrolled"),
        ]
    );
    assert!(is_learner(&app, s.catalog_id, "has.account@example.org").await);
    assert_eq!(
        app.count("outbound_emails").await,
        0,
        "a pre-enrolment emails nobody"
    );
    // The future account joins when verified, with the course.
    let future = app.another_browser();
    sign_up(&future, "future@example.org").await;
    confirm(&app, &future, "future@example.org").await;
    assert!(is_learner(&app, s.catalog_id, "future@example.org").await);
    let names: Vec<String> = app
        .db
        .run(|conn| {
            Ok(pending_enrollments::table
                .order(pending_enrollments::id)
                .select(pending_enrollments::full_name)
                .load(conn)?)
        })
        .await
        .unwrap();
    assert!(names.contains(&"Student Seven".to_string()), "{names:?}");
}
