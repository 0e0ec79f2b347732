//! The learner's journey over HTTP: the invitation email's link, registering,
//! accepting, enrolling; signing up, confirming an address, resetting a password.

use diesel::prelude::*;
use partner_catalog::domain::invitation_status::Channel;
use partner_catalog::mail::Sealer;
use partner_catalog::mail::outbox::SECRET_MARKER;
use partner_catalog::models::outbox::OutboundEmail;
use partner_catalog::models::schema::outbound_emails;
use partner_catalog::policies::Actor;
use partner_catalog::services::{self, ServiceContext};
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app};

/// The newest email to an address, with its link secret spliced in as it will be sent.
pub async fn last_email_to(app: &TestApp, to: &str) -> (OutboundEmail, String) {
    let to = to.to_string();
    let email = app
        .db
        .run(move |conn| {
            Ok(outbound_emails::table
                .filter(outbound_emails::to_address.eq(to))
                .order(outbound_emails::id.desc())
                .select(OutboundEmail::as_select())
                .first(conn)?)
        })
        .await
        .unwrap();
    let secret = Sealer::from_settings(&app.settings)
        .open(email.sealed_secret.as_deref().unwrap())
        .unwrap();
    (email, secret)
}

pub struct Setup {
    pub catalog_id: i64,
    pub paid_course: i64,
    pub open_course: i64,
}

/// The id of the partner `setup` makes.
pub async fn acme_id(app: &TestApp) -> i64 {
    app.db
        .run(|conn| {
            Ok(
                partner_catalog::models::partners::find_by_code(conn, "acme")?
                    .unwrap()
                    .id,
            )
        })
        .await
        .unwrap()
}

/// A partner with branding, a catalog (1 paid seat) with a paid and an open course.
pub async fn setup(app: &TestApp, self_enrollment_pattern: Option<&str>) -> Setup {
    let staff = app
        .create_user("staff@example.org", "staff password 1", true)
        .await;
    let pattern = self_enrollment_pattern.map(str::to_string);
    app.db
        .transaction(move |conn| {
            let actor = Actor::for_user(&staff, None);
            let (org, partner) = crate::helpers::acme_branded_partner(conn, &actor)?;
            let mut ids = Vec::new();
            for (key, modes) in [
                ("course-v1:ACMEx+PAID+1", "audit verified"),
                ("course-v1:ACMEx+OPEN+1", "audit"),
            ] {
                let course = services::courses::create(
                    conn,
                    &actor,
                    &services::courses::CourseInput {
                        key: key.into(),
                        title: format!("Course {key}"),
                        organisation_id: org.id.to_string(),
                        modes: modes.into(),
                        ..Default::default()
                    },
                )?;
                ids.push(course.id);
            }
            let catalog = services::catalogs::create(
                conn,
                &actor,
                partner.id,
                &services::catalogs::CatalogInput {
                    name: "Sales Academy".into(),
                    description: "Training for the sales team.".into(),
                    available_start: "2000-01-01T00:00".into(),
                    available_end: "2999-01-01T00:00".into(),
                    course_enrollments_limit: "1".into(),
                    is_self_enrollment: pattern.as_ref().map(|_| "on".to_string()),
                    email_patterns: pattern.unwrap_or_default(),
                    ..Default::default()
                },
            )?;
            for id in &ids {
                services::catalogs::add_course(conn, &actor, catalog.id, *id, None)?;
            }
            Ok(Setup {
                catalog_id: catalog.id,
                paid_course: ids[0],
                open_course: ids[1],
            })
        })
        .await
        .unwrap()
}

pub async fn invite(app: &TestApp, catalog_id: i64, email: &str) -> String {
    let staff = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap())
        })
        .await
        .unwrap();
    let ctx = ServiceContext::from_settings(&app.settings);
    let email = email.to_string();
    let sent = app
        .db
        .transaction(move |conn| {
            services::invitations::create(
                conn,
                &ctx,
                &Actor::for_user(&staff, None),
                catalog_id,
                &email,
                Channel::Manual,
            )
        })
        .await
        .unwrap();
    sent.token.into_string()
}

#[tokio::test]
async fn the_invitation_email_is_branded_and_carries_the_links() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let token = invite(&app, s.catalog_id, "newcomer@example.org").await;
    let (email, secret) = last_email_to(&app, "newcomer@example.org").await;
    assert_eq!(secret, token);
    assert_eq!(
        email.subject,
        "You are invited to Sales Academy by ACME Corporation"
    );
    assert_eq!(email.from_name, "ACME Academy");
    assert_eq!(email.reply_to.as_deref(), Some("academy@acme.example"));
    for body in [&email.text_body, &email.html_body] {
        assert!(
            body.contains(&format!("/invitations/{SECRET_MARKER}")),
            "{body}"
        );
        assert!(body.contains(&format!("/invitations/{SECRET_MARKER}/decline")));
        assert!(body.contains("academy@acme.example"));
        assert!(body.contains("Sales Academy"));
        assert!(!body.contains(&token), "the raw token is never stored");
    }
    assert!(email.html_body.contains("#b3261e"));
    assert!(email.html_body.contains("https://acme.example/logo.png"));
    assert!(email.text_body.contains("The link works until"));
}

#[tokio::test]
async fn a_newcomer_registers_from_the_link_accepts_and_enrols_in_a_paid_course() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let token = invite(&app, s.catalog_id, "newcomer@example.org").await;
    let page = app.get(&format!("/invitations/{token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("ACME Corporation");
    page.assert_contains("Sales Academy");
    page.assert_contains("Course course-v1:ACMEx+PAID+1");
    page.assert_contains("Create your account to accept");
    page.assert_contains("newcomer@example.org");

    // Bad input keeps the name and names the field.
    let response = app
        .post(
            &format!("/invitations/{token}/register"),
            &[
                ("full_name", "Nia Newcomer"),
                ("password", "short"),
                ("confirm_password", "short"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("must be at least 10 characters");
    response.assert_contains("value=\"Nia Newcomer\"");
    assert_eq!(app.count("users").await, 1);

    let response = app
        .post(
            &format!("/invitations/{token}/register"),
            &[
                ("full_name", "Nia Newcomer"),
                ("password", "a long password"),
                ("confirm_password", "a long password"),
            ],
        )
        .await;
    response.assert_redirect_to("/my");
    let my = app.get("/my").await;
    my.assert_contains("Welcome! Your account is ready");
    my.assert_contains("Sales Academy");

    // Enrol in the paid course: the one seat is granted.
    app.post(
        &format!(
            "/my/catalogs/{}/courses/{}/enrol",
            s.catalog_id, s.paid_course
        ),
        &[],
    )
    .await
    .assert_redirect_to(&format!("/my#course-{}-{}", s.catalog_id, s.paid_course));
    let my = app.get("/my").await;
    my.assert_contains(
        "You are enrolled in Course course-v1:ACMEx+PAID+1 with full access with certificate",
    );
    my.assert_contains("full access with certificate");
    my.assert_contains("with a paid seat");
    my.assert_contains(&format!(
        "href=\"/my/courses/{}\">Go to course",
        s.paid_course
    ));
    app.post(
        &format!(
            "/my/catalogs/{}/courses/{}/enrol",
            s.catalog_id, s.open_course
        ),
        &[],
    )
    .await
    .assert_redirect_to(&format!("/my#course-{}-{}", s.catalog_id, s.open_course));
    app.get("/my").await.assert_contains("with free access");
    // "Go to course" opens the course's page when no learning platform is configured.
    let course = app.get(&format!("/my/courses/{}", s.paid_course)).await;
    course.assert_contains("full access with certificate");
    course.assert_contains("academy@acme.example");

    // The link now says it was accepted.
    app.get(&format!("/invitations/{token}"))
        .await
        .assert_contains("already been accepted");
}

#[tokio::test]
async fn when_the_paid_seats_are_used_up_a_learner_is_kept_at_audit_or_refused() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    for (n, email) in ["first@example.org", "second@example.org"]
        .iter()
        .enumerate()
    {
        let token = invite(&app, s.catalog_id, email).await;
        let browser = app.another_browser();
        browser
            .post(
                &format!("/invitations/{token}/register"),
                &[
                    ("full_name", "L"),
                    ("password", "a long password"),
                    ("confirm_password", "a long password"),
                ],
            )
            .await
            .assert_redirect_to("/my");
        if n == 1 {
            // Already enrolled at audit in the paid course, then asks for a seat.
            browser
                .db
                .run(|conn| {
                    let user =
                        partner_catalog::models::users::find_by_email(conn, "second@example.org")?
                            .unwrap();
                    let course = partner_catalog::models::courses::find_by_key(
                        conn,
                        "course-v1:ACMEx+PAID+1",
                    )?
                    .unwrap();
                    partner_catalog::models::enrollments::upsert_enrollment(
                        conn, user.id, course.id, "audit",
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        browser
            .post(
                &format!(
                    "/my/catalogs/{}/courses/{}/enrol",
                    s.catalog_id, s.paid_course
                ),
                &[],
            )
            .await;
        let my = browser.get("/my").await;
        if n == 0 {
            my.assert_contains("with full access with certificate");
        } else {
            my.assert_contains("No paid seat is left for Course course-v1:ACMEx+PAID+1: you keep free access meanwhile. Ask academy@acme.example for one.");
        }
    }
    let token = invite(&app, s.catalog_id, "third@example.org").await;
    app.post(
        &format!("/invitations/{token}/register"),
        &[
            ("full_name", "L"),
            ("password", "a long password"),
            ("confirm_password", "a long password"),
        ],
    )
    .await;
    app.post(
        &format!(
            "/my/catalogs/{}/courses/{}/enrol",
            s.catalog_id, s.paid_course
        ),
        &[],
    )
    .await;
    let my = app.get("/my").await;
    my.assert_contains(
        "No paid seat is left for Course course-v1:ACMEx+PAID+1. Ask academy@acme.example for one.",
    );
    // No Enrol button that can only fail; the page says whom to ask.
    assert!(
        !my.body
            .contains(&format!("courses/{}/enrol", s.paid_course)),
        "{}",
        my.body
    );
    my.assert_contains("No paid seat is left for this course");
}

#[tokio::test]
async fn an_existing_user_signs_in_then_accepts() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    app.create_user("known@example.org", "known password 1", false)
        .await;
    let token = invite(&app, s.catalog_id, "known@example.org").await;
    let page = app.get(&format!("/invitations/{token}")).await;
    page.assert_contains("Sign in to accept");
    page.assert_contains(&format!("/login?next=/invitations/{token}"));
    let token_field = app.csrf_token().await;
    app.post_raw(
        "/login",
        &[
            ("csrf_token", &token_field),
            ("email", "known@example.org"),
            ("password", "known password 1"),
            ("next", &format!("/invitations/{token}")),
        ],
    )
    .await
    .assert_redirect_to(&format!("/invitations/{token}"));
    app.get(&format!("/invitations/{token}"))
        .await
        .assert_contains("Accept the invitation");
    app.post(&format!("/invitations/{token}/accept"), &[])
        .await
        .assert_redirect_to("/my");
    app.get("/my").await.assert_contains("member");
}

#[tokio::test]
async fn someone_signed_in_with_another_address_is_told_and_offered_to_sign_out() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    app.signed_in_learner().await;
    let token = invite(&app, s.catalog_id, "invited@example.org").await;
    let page = app.get(&format!("/invitations/{token}")).await;
    page.assert_contains("This invitation was sent to <strong>invited@example.org</strong>, but you are signed in as <strong>learner@example.org</strong>");
    page.assert_contains("Sign out");
    app.post(&format!("/invitations/{token}/accept"), &[])
        .await
        .assert_redirect_to(&format!("/invitations/{token}"));
    assert_eq!(app.count("catalog_learners").await, 0);
}

#[tokio::test]
async fn declining_from_the_link_needs_no_account() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let token = invite(&app, s.catalog_id, "no-thanks@example.org").await;
    let confirm = app.get(&format!("/invitations/{token}/decline")).await;
    confirm.assert_contains("Decline the invitation for <strong>no-thanks@example.org</strong>");
    assert_eq!(app.count("invitations").await, 1);
    let done = app
        .post(&format!("/invitations/{token}/decline"), &[])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    done.assert_contains("You declined the invitation");
    app.get(&format!("/invitations/{token}"))
        .await
        .assert_contains("This invitation was declined");
}

#[tokio::test]
async fn every_invitation_state_says_so_and_unknown_links_are_not_found() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let expired = invite(&app, s.catalog_id, "late@example.org").await;
    app.db
        .run(|conn| {
            use partner_catalog::models::schema::invitations::dsl::*;
            diesel::update(invitations.filter(email.eq("late@example.org")))
                .set((
                    invited_at.eq(chrono::Utc::now() - chrono::Duration::days(40)),
                    expires_at.eq(chrono::Utc::now() - chrono::Duration::days(1)),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    app.get(&format!("/invitations/{expired}"))
        .await
        .assert_contains("This invitation has expired");

    let revoked = invite(&app, s.catalog_id, "revoked@example.org").await;
    let staff = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap())
        })
        .await
        .unwrap();
    let lookup = revoked.clone();
    app.db
        .transaction(move |conn| {
            let invitation = services::invitations::by_token(conn, &lookup)?;
            services::invitations::remove(conn, &Actor::for_user(&staff, None), invitation.id, None)
        })
        .await
        .unwrap();
    app.get(&format!("/invitations/{revoked}"))
        .await
        .assert_contains("This invitation was withdrawn");

    let unknown = app.get("/invitations/this-is-not-a-token").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unverified_address_matches_no_pattern_until_confirmed() {
    let app = spawn_app().await;
    let s = setup(&app, Some(r".*@example\.com")).await;
    let response = app
        .post(
            "/signup",
            &[
                ("email", "Eve@Example.com"),
                ("full_name", "Eve"),
                ("password", "a long password"),
                ("confirm_password", "a long password"),
            ],
        )
        .await;
    // Sign-up does not sign in: it says the same whether or not the address is taken.
    assert_eq!(response.status, StatusCode::OK);
    response.assert_contains("Check your email");
    app.sign_in("eve@example.com", "a long password")
        .await
        .assert_redirect_to("/");
    let my = app.get("/my").await;
    my.assert_contains("is not confirmed yet");
    assert!(
        !my.body.contains("Sales Academy"),
        "an unverified address sees no pattern catalog"
    );
    let join = app
        .post(&format!("/my/catalogs/{}/join", s.catalog_id), &[])
        .await;
    join.assert_redirect_to("/my");
    app.get("/my")
        .await
        .assert_contains("Verify your email address first");
    assert_eq!(app.count("catalog_learners").await, 0);

    let (email, secret) = last_email_to(&app, "eve@example.com").await;
    assert_eq!(email.subject, "Confirm your email address");
    let confirm = app.get(&format!("/verify-email/{secret}")).await;
    confirm.assert_contains("Confirm my email address");
    app.post(&format!("/verify-email/{secret}"), &[])
        .await
        .assert_redirect_to("/my");
    let my = app.get("/my").await;
    my.assert_contains("Sales Academy");
    app.post(&format!("/my/catalogs/{}/join", s.catalog_id), &[])
        .await
        .assert_redirect_to("/my");
    app.get("/my")
        .await
        .assert_contains("You joined the catalog");
    assert_eq!(app.count("catalog_learners").await, 1);
    // The link works once.
    app.post(&format!("/verify-email/{secret}"), &[])
        .await
        .assert_redirect_to("/account");
}

#[tokio::test]
async fn sign_up_validation_names_fields_and_keeps_input() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/signup",
            &[
                ("email", "not-an-email"),
                ("full_name", "Zed"),
                ("password", "a long password"),
                ("confirm_password", "different password"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("does not match the password");
    let response = app
        .post(
            "/signup",
            &[
                ("email", "not-an-email"),
                ("full_name", "Zed"),
                ("password", "a long password"),
                ("confirm_password", "a long password"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("is not an email address");
    response.assert_contains("value=\"not-an-email\"");
    response.assert_contains("value=\"Zed\"");
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn open_sign_up_can_be_turned_off() {
    let app = crate::helpers::spawn_app_with(|s| s.open_sign_up = false).await;
    assert_eq!(app.get("/signup").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_password_is_reset_by_a_single_use_emailed_link() {
    let app = spawn_app().await;
    app.create_user("forgetful@example.org", "old password 11", false)
        .await;
    let response = app
        .post("/password/forgot", &[("email", "Forgetful@example.org")])
        .await;
    response.assert_contains("a link to choose a new password is on its way");
    // Unknown addresses get the same answer and no email.
    app.post("/password/forgot", &[("email", "nobody@example.org")])
        .await
        .assert_contains("is on its way");
    assert_eq!(app.count("outbound_emails").await, 1);

    let (_, secret) = last_email_to(&app, "forgetful@example.org").await;
    app.get(&format!("/password/reset/{secret}"))
        .await
        .assert_contains("Choose a new password");
    app.post(
        &format!("/password/reset/{secret}"),
        &[
            ("password", "new password 22"),
            ("confirm_password", "new password 22"),
        ],
    )
    .await
    .assert_redirect_to("/");
    app.sign_out().await;
    app.sign_in("forgetful@example.org", "old password 11")
        .await;
    let other = app.another_browser();
    other
        .sign_in("forgetful@example.org", "new password 22")
        .await
        .assert_redirect_to("/");
    // Used once: the link no longer works.
    app.get(&format!("/password/reset/{secret}"))
        .await
        .assert_contains("expired or was already used");
}

#[tokio::test]
async fn changing_ones_address_waits_for_the_new_one_to_be_confirmed() {
    let app = spawn_app().await;
    app.signed_in_learner().await;
    // It asks for the current password first, and keeps what was typed.
    let refused = app
        .post(
            "/account/email",
            &[
                ("new_email", "New@Example.org"),
                ("email_current_password", "not my password"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("is not your current password");
    refused.assert_contains("value=\"New@Example.org\"");
    assert_eq!(app.count("user_tokens").await, 0, "no link was sent");
    app.post(
        "/account/email",
        &[
            ("new_email", "New@Example.org"),
            ("email_current_password", "learner password 1"),
        ],
    )
    .await
    .assert_redirect_to("/account");
    app.get("/account")
        .await
        .assert_contains("learner@example.org");
    let (_, secret) = last_email_to(&app, "new@example.org").await;
    app.post(&format!("/verify-email/{secret}"), &[])
        .await
        .assert_redirect_to("/my");
    app.get("/account").await.assert_contains("new@example.org");
}

#[tokio::test]
async fn a_sent_invitation_gets_one_reminder_before_it_expires() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let old_token = invite(&app, s.catalog_id, "slow@example.org").await;
    invite(&app, s.catalog_id, "fresh@example.org").await;
    app.db
        .run(|conn| {
            use partner_catalog::models::schema::invitations::dsl::*;
            let earlier = chrono::Utc::now() - chrono::Duration::days(28);
            diesel::update(invitations.filter(email.eq("slow@example.org")))
                .set((
                    invited_at.eq(earlier),
                    last_sent_at.eq(earlier),
                    expires_at.eq(chrono::Utc::now() + chrono::Duration::days(2)),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let ctx = ServiceContext::from_settings(&app.settings);
    let again = ctx.clone();
    let sent = app
        .db
        .transaction(move |conn| services::reminders::send_due(conn, &ctx, 3))
        .await
        .unwrap();
    assert_eq!(sent, 1, "only the invitation close to expiry is reminded");
    let sent = app
        .db
        .transaction(move |conn| services::reminders::send_due(conn, &again, 3))
        .await
        .unwrap();
    assert_eq!(sent, 0, "one reminder only");
    let (email, secret) = last_email_to(&app, "slow@example.org").await;
    assert!(
        email
            .subject
            .starts_with("Reminder: your invitation to Sales Academy")
    );
    app.get(&format!("/invitations/{secret}"))
        .await
        .assert_contains("Create your account to accept");
    assert_eq!(
        app.get(&format!("/invitations/{old_token}")).await.status,
        StatusCode::NOT_FOUND
    );
}
