//! Accounts and sessions: pre-hijacking, manager roles, revocable sessions, sign-in
//! throttling, and the lower-severity account findings.

use reqwest::StatusCode;

use super::{emails_of_kind, invitation_to, signed_in_manager};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::journey::{invite, last_email_to, setup};

async fn sign_up(browser: &TestApp, email: &str, password: &str) -> crate::helpers::Html {
    browser
        .post(
            "/signup",
            &[
                ("email", email),
                ("full_name", "Someone"),
                ("password", password),
                ("confirm_password", password),
            ],
        )
        .await
}

async fn reset_password(app: &TestApp, email: &str, new_password: &str) {
    let owner = app.another_browser();
    owner.post("/password/forgot", &[("email", email)]).await;
    let (reset, secret) = last_email_to(app, email).await;
    assert_eq!(reset.subject, "Choose a new password");
    owner
        .post(
            &format!("/password/reset/{secret}"),
            &[
                ("password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await
        .assert_redirect_to("/");
}

/// Item 1: someone signs up with another person's address and keeps the session.
#[tokio::test]
async fn an_unverified_sign_up_reaches_nothing_bound_to_the_address_and_the_owner_takes_it_back() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let attacker = app.another_browser();
    assert_eq!(
        sign_up(&attacker, "owner@example.org", "attacker password 1")
            .await
            .status,
        StatusCode::OK
    );
    attacker
        .sign_in("owner@example.org", "attacker password 1")
        .await
        .assert_redirect_to("/");

    // The real owner is invited; nothing of it reaches the unverified account.
    invite(&app, s.catalog_id, "owner@example.org").await;
    let (invitation_id, linked) = invitation_to(&app, "owner@example.org").await;
    assert_eq!(linked, None, "not linked to an unverified account");
    let my = attacker.get("/my").await;
    assert!(!my.body.contains("Sales Academy"), "{}", my.body);
    attacker
        .post(&format!("/my/invitations/{invitation_id}/accept"), &[])
        .await
        .assert_redirect_to("/my");
    let join = attacker
        .post(&format!("/my/catalogs/{}/join", s.catalog_id), &[])
        .await;
    assert_eq!(join.status, StatusCode::NOT_FOUND);
    assert!(!join.body.contains("Sales Academy"));
    assert_eq!(app.count("catalog_learners").await, 0);

    // The address cannot be moved without the password.
    let moved = attacker
        .post("/account/email", &[("new_email", "attacker@evil.example")])
        .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST);
    moved.assert_contains("is required");

    // The owner resets the password from their inbox: the attacker is out for good.
    reset_password(&app, "owner@example.org", "owner password 1").await;
    assert_eq!(attacker.get("/my").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        attacker
            .sign_in("owner@example.org", "attacker password 1")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Now verified, the owner sees the invitation and accepts it.
    let owner = app.another_browser();
    owner
        .sign_in("owner@example.org", "owner password 1")
        .await
        .assert_redirect_to("/");
    owner.get("/my").await.assert_contains("Sales Academy");
    owner
        .post(&format!("/my/invitations/{invitation_id}/accept"), &[])
        .await
        .assert_redirect_to("/my");
    assert_eq!(app.count("catalog_learners").await, 1);
}

/// Item 1: following the confirmation link ends every other session of the account.
#[tokio::test]
async fn confirming_the_address_ends_every_other_session() {
    let app = spawn_app().await;
    let early = app.another_browser();
    sign_up(&early, "ada@example.org", "a long password 1").await;
    early
        .sign_in("ada@example.org", "a long password 1")
        .await
        .assert_redirect_to("/");
    app.sign_in("ada@example.org", "a long password 1")
        .await
        .assert_redirect_to("/");
    let (_, secret) = last_email_to(&app, "ada@example.org").await;
    app.post(&format!("/verify-email/{secret}"), &[])
        .await
        .assert_redirect_to("/my");
    assert_eq!(
        app.get("/my").await.status,
        StatusCode::OK,
        "signed in here"
    );
    assert_eq!(early.get("/my").await.status, StatusCode::SEE_OTHER);
}

async fn account(app: &TestApp, email: &str) -> Option<partner_catalog::models::users::User> {
    let email = email.to_string();
    app.db
        .run(move |conn| Ok(partner_catalog::models::users::find_by_email(conn, &email)?))
        .await
        .unwrap()
}

async fn last_email_of_kind(
    app: &TestApp,
    to: &str,
    kind: &str,
) -> partner_catalog::models::outbox::OutboundEmail {
    use diesel::prelude::*;
    use partner_catalog::models::outbox::OutboundEmail;
    use partner_catalog::models::schema::outbound_emails;
    let (to, kind) = (to.to_string(), kind.to_string());
    app.db
        .run(move |conn| {
            Ok(outbound_emails::table
                .filter(outbound_emails::to_address.eq(to))
                .filter(outbound_emails::kind.eq(kind))
                .order(outbound_emails::id.desc())
                .select(OutboundEmail::as_select())
                .first(conn)?)
        })
        .await
        .unwrap()
}

/// Item 1: an attacker signs up with the victim's address and a password of their own;
/// the victim follows the confirmation link in their own browser and must choose the
/// password, which shuts the attacker out.
#[tokio::test]
async fn a_confirmation_link_followed_elsewhere_asks_for_a_new_password_and_shuts_out_the_sign_up()
{
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let attacker = app.another_browser();
    sign_up(&attacker, "victim@example.org", "attacker password 1").await;
    attacker
        .sign_in("victim@example.org", "attacker password 1")
        .await
        .assert_redirect_to("/");
    let (email, secret) = last_email_to(&app, "victim@example.org").await;
    assert_eq!(email.kind, "verify_email");
    invite(&app, s.catalog_id, "victim@example.org").await;
    assert!(
        email
            .text_body
            .contains("If you did not create this account, do not confirm it"),
        "{}",
        email.text_body
    );
    let link = format!("/verify-email/{secret}");

    // The victim's browser is asked for a password; looking changes nothing.
    let victim = app.another_browser();
    let page = victim.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("If you did not create this account, do not confirm it");
    page.assert_contains("name=\"password\"");
    page.assert_contains("name=\"confirm_password\"");
    assert!(!page.body.contains("Confirm my email address"));
    assert!(
        account(&app, "victim@example.org")
            .await
            .unwrap()
            .email_verified_at
            .is_none()
    );

    // Without a password, or with a weak or mismatched one, nothing is confirmed.
    let bare = victim.post(&link, &[]).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST);
    bare.assert_contains("must be at least 10 characters");
    let weak = victim
        .post(
            &link,
            &[
                ("password", "Password123"),
                ("confirm_password", "Password123"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    weak.assert_contains("one of the most common passwords");
    assert!(
        !weak.body.contains("value=\"Password123\""),
        "passwords are not kept"
    );
    let mismatched = victim
        .post(
            &link,
            &[
                ("password", "victim password 1"),
                ("confirm_password", "victim password 2"),
            ],
        )
        .await;
    assert_eq!(mismatched.status, StatusCode::BAD_REQUEST);
    mismatched.assert_contains("does not match the password");
    let before = account(&app, "victim@example.org").await.unwrap();
    assert!(before.email_verified_at.is_none());
    assert_eq!(attacker.get("/my").await.status, StatusCode::OK);

    // With a good password: confirmed, signed in, and the attacker is out.
    victim
        .post(
            &link,
            &[
                ("password", "victim password 1"),
                ("confirm_password", "victim password 1"),
            ],
        )
        .await
        .assert_redirect_to("/my");
    let my = victim.get("/my").await;
    assert_eq!(my.status, StatusCode::OK);
    my.assert_contains("Sales Academy");
    let after = account(&app, "victim@example.org").await.unwrap();
    assert!(after.email_verified_at.is_some());
    assert!(after.session_generation > before.session_generation);
    assert_eq!(attacker.get("/my").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        attacker
            .sign_in("victim@example.org", "attacker password 1")
            .await
            .status,
        StatusCode::BAD_REQUEST,
        "the attacker's password no longer works"
    );
    app.another_browser()
        .sign_in("victim@example.org", "victim password 1")
        .await
        .assert_redirect_to("/");
    let (_, linked) = invitation_to(&app, "victim@example.org").await;
    assert_eq!(linked, Some(after.id));

    // The link works once.
    app.another_browser()
        .get(&link)
        .await
        .assert_contains("This link has already been used.");
}

/// Item 1: the browser that signed up, or one signed in as the account, confirms in one
/// step; one that signed up for an address someone else registered first does not.
#[tokio::test]
async fn the_browser_that_signed_up_confirms_in_one_step_and_nobody_else_does() {
    let app = spawn_app().await;
    let ada = app.another_browser();
    sign_up(&ada, "ada@example.org", "ada password 11").await;
    let (_, secret) = last_email_to(&app, "ada@example.org").await;
    let page = ada.get(&format!("/verify-email/{secret}")).await;
    page.assert_contains("Confirm my email address");
    assert!(!page.body.contains("name=\"password\""));
    ada.post(&format!("/verify-email/{secret}"), &[])
        .await
        .assert_redirect_to("/my");
    assert_eq!(ada.get("/my").await.status, StatusCode::OK);
    assert!(
        account(&app, "ada@example.org")
            .await
            .unwrap()
            .email_verified_at
            .is_some()
    );

    // Someone registers bob@ first; Bob then signs up in his own browser, which is told
    // the same as ever, and the link the early account sends him asks for a password.
    let early = app.another_browser();
    sign_up(&early, "bob@example.org", "early password 1").await;
    let bob = app.another_browser();
    sign_up(&bob, "bob@example.org", "bob password 11").await;
    early
        .sign_in("bob@example.org", "early password 1")
        .await
        .assert_redirect_to("/");
    early
        .post("/account/verification", &[])
        .await
        .assert_redirect_to("/my");
    let (_, secret) = last_email_to(&app, "bob@example.org").await;
    let link = format!("/verify-email/{secret}");
    bob.get(&link).await.assert_contains("name=\"password\"");
    assert_eq!(bob.post(&link, &[]).await.status, StatusCode::BAD_REQUEST);
    assert!(
        account(&app, "bob@example.org")
            .await
            .unwrap()
            .email_verified_at
            .is_none()
    );

    // A browser signed in as the account confirms in one step.
    early
        .get(&link)
        .await
        .assert_contains("Confirm my email address");
    early.post(&link, &[]).await.assert_redirect_to("/my");
    assert!(
        account(&app, "bob@example.org")
            .await
            .unwrap()
            .email_verified_at
            .is_some()
    );
}

/// Item 1: an address-change link, too, moves the account only for a browser signed in
/// as it; anyone else must choose the password, and links sent to the old address that
/// could set it again stop working.
#[tokio::test]
async fn an_address_change_link_followed_elsewhere_asks_for_a_new_password_too() {
    let app = spawn_app().await;
    app.signed_in_learner().await;
    app.another_browser()
        .post("/password/forgot", &[("email", "learner@example.org")])
        .await;
    let (_, reset_secret) = last_email_to(&app, "learner@example.org").await;
    app.post(
        "/account/email",
        &[
            ("new_email", "moved@example.org"),
            ("email_current_password", "learner password 1"),
        ],
    )
    .await
    .assert_redirect_to("/account");
    let (email, secret) = last_email_to(&app, "moved@example.org").await;
    assert!(
        email.text_body.contains("do not confirm it"),
        "{}",
        email.text_body
    );
    let link = format!("/verify-email/{secret}");
    let elsewhere = app.another_browser();
    elsewhere
        .get(&link)
        .await
        .assert_contains("If you did not ask for this, do not confirm it");
    assert_eq!(
        elsewhere.post(&link, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert!(account(&app, "moved@example.org").await.is_none());
    elsewhere
        .post(
            &link,
            &[
                ("password", "moved password 1"),
                ("confirm_password", "moved password 1"),
            ],
        )
        .await
        .assert_redirect_to("/my");
    assert!(account(&app, "moved@example.org").await.is_some());
    assert_eq!(app.get("/my").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.sign_in("moved@example.org", "learner password 1")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    app.another_browser()
        .get(&format!("/password/reset/{reset_secret}"))
        .await
        .assert_contains("expired or was already used");
}

/// Sign-up's session cookie does not tell whether the address had an account either.
#[tokio::test]
async fn signing_up_sets_a_session_cookie_of_one_size_whether_or_not_the_address_is_taken() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "ada password 1", false)
        .await;
    let mut cookies = Vec::new();
    for email in ["new@example.org", "ada@example.org"] {
        let browser = app.another_browser();
        let token = browser.csrf_token().await;
        let response = browser
            .client
            .post(browser.url("/signup"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", email),
                ("full_name", "Someone"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response
            .cookies()
            .find(|c| c.name() == "partner_catalog_session")
            // Its length once percent-decoding is undone.
            .map(|c| c.value().len() - 2 * c.value().matches('%').count());
        cookies.push(cookie);
    }
    assert!(cookies[0].is_some(), "the sign-up is remembered");
    assert_eq!(cookies[0], cookies[1]);
}

/// Changing one's address to one that has an account answers exactly as for a free
/// address; the owner of the taken one is told instead.
#[tokio::test]
async fn changing_ones_address_to_a_taken_one_answers_like_a_free_one_and_tells_its_owner() {
    let app = spawn_app().await;
    let taken = app
        .create_user("taken@example.org", "taken password 1", false)
        .await;
    let learner = app.signed_in_learner().await;
    let mut answers = Vec::new();
    for address in ["taken@example.org", "free@example.org"] {
        let posted = app
            .post(
                "/account/email",
                &[
                    ("new_email", address),
                    ("email_current_password", "learner password 1"),
                ],
            )
            .await;
        let shown = app.get("/account").await;
        answers.push((
            posted.status,
            posted.location,
            posted.body,
            shown.status,
            shown.body.replace(address, "ADDRESS"),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0]
            .4
            .contains("We sent a link to ADDRESS. Your address changes once you follow it."),
        "{}",
        answers[0].4
    );

    // The taken account and the requester's address are unchanged; its owner is told.
    let owner = account(&app, "taken@example.org").await.unwrap();
    assert_eq!(owner.id, taken.id);
    assert_eq!(owner.session_generation, taken.session_generation);
    assert_eq!(
        account(&app, "learner@example.org").await.map(|u| u.id),
        Some(learner.id)
    );
    assert_eq!(
        emails_of_kind(&app, "taken@example.org", "change_email").await,
        0
    );
    let notice = last_email_of_kind(&app, "taken@example.org", "email_change_existing").await;
    assert_eq!(
        notice.subject,
        "Someone tried to use your address on another account"
    );
    assert!(
        notice.sealed_secret.is_none(),
        "a notice carries no link secret"
    );
    // At most one notice an hour.
    app.post(
        "/account/email",
        &[
            ("new_email", "taken@example.org"),
            ("email_current_password", "learner password 1"),
        ],
    )
    .await
    .assert_redirect_to("/account");
    assert_eq!(
        emails_of_kind(&app, "taken@example.org", "email_change_existing").await,
        1
    );
    assert_eq!(
        account(&app, "learner@example.org").await.map(|u| u.id),
        Some(learner.id)
    );
}

/// Item 2: staff make an address a manager that an outsider registered earlier.
#[tokio::test]
async fn a_manager_role_for_an_unverified_account_waits_for_its_owner_to_claim_it() {
    let app = spawn_app().await;
    setup(&app, None).await;
    let outsider = app.another_browser();
    sign_up(&outsider, "boss@acme.example", "outsider password 1").await;
    outsider
        .sign_in("boss@acme.example", "outsider password 1")
        .await
        .assert_redirect_to("/");

    let staff = app.another_browser();
    staff
        .sign_in("staff@example.org", "staff password 1")
        .await
        .assert_redirect_to("/");
    let partner_id = crate::journey::acme_id(&app).await;
    let edit = format!("/staff/partners/{partner_id}/edit");
    staff
        .post(
            &format!("/staff/partners/{partner_id}/managers"),
            &[("email", "boss@acme.example")],
        )
        .await
        .assert_redirect_to(&edit);
    let page = staff.get(&edit).await;
    page.assert_contains("We emailed boss@acme.example a link to take on the role");
    page.assert_contains("Waiting for the person to confirm");

    // The outsider's live session gets nothing.
    assert_eq!(
        outsider.get("/partner/acme").await.status,
        StatusCode::NOT_FOUND
    );
    outsider.get("/").await.assert_redirect_to("/my");

    // The owner of the address claims it by choosing a password.
    let (email, secret) = last_email_to(&app, "boss@acme.example").await;
    assert_eq!(email.subject, "You have been made a partner manager");
    let owner = app.another_browser();
    owner
        .get(&format!("/manager/claim/{secret}"))
        .await
        .assert_contains("ACME Corporation");
    owner
        .post(
            &format!("/manager/claim/{secret}"),
            &[
                ("password", "the owners password"),
                ("confirm_password", "the owners password"),
            ],
        )
        .await
        .assert_redirect_to("/");
    owner.get("/").await.assert_redirect_to("/partner/acme");
    assert_eq!(owner.get("/partner/acme").await.status, StatusCode::OK);
    assert_eq!(outsider.get("/my").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        outsider
            .sign_in("boss@acme.example", "outsider password 1")
            .await
            .status,
        StatusCode::BAD_REQUEST,
        "the outsider's password no longer works"
    );
    let page = staff.get(&edit).await;
    assert!(!page.body.contains("Waiting for the person to confirm"));
    page.assert_contains("<td>Active</td>");
    // The link works once.
    let again = app
        .another_browser()
        .get(&format!("/manager/claim/{secret}"))
        .await;
    again.assert_contains("expired or was already used");
}

/// Item 3: a copied cookie stops working after each way a session ends.
#[tokio::test]
async fn a_copied_session_cookie_stops_working_whenever_the_session_ends() {
    let app = spawn_app().await;
    let learner = app.signed_in_learner().await;
    let stolen = app.copy_of_this_browser();
    assert_eq!(stolen.get("/account").await.status, StatusCode::OK);

    // Logout.
    app.sign_out().await.assert_redirect_to("/login");
    assert_eq!(stolen.get("/account").await.status, StatusCode::SEE_OTHER);

    // Password change: this browser stays signed in, the copy does not.
    app.sign_in("learner@example.org", "learner password 1")
        .await
        .assert_redirect_to("/");
    let stolen = app.copy_of_this_browser();
    app.post(
        "/account/password",
        &[
            ("current_password", "learner password 1"),
            ("new_password", "learner password 2"),
            ("confirm_password", "learner password 2"),
        ],
    )
    .await
    .assert_redirect_to("/account");
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
    assert_eq!(stolen.get("/account").await.status, StatusCode::SEE_OTHER);

    // Password reset from another browser.
    let stolen = app.copy_of_this_browser();
    reset_password(&app, "learner@example.org", "learner password 3").await;
    assert_eq!(stolen.get("/account").await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER);

    // Deactivation, then reactivation.
    app.sign_in("learner@example.org", "learner password 3")
        .await
        .assert_redirect_to("/");
    let stolen = app.copy_of_this_browser();
    let staff = app
        .create_user("staff@example.org", "staff password 1", true)
        .await;
    let id = learner.id;
    app.db
        .transaction(move |conn| {
            let actor = partner_catalog::policies::Actor::for_user(&staff, None);
            partner_catalog::services::users::set_active(conn, &actor, id, false, None)?;
            partner_catalog::services::users::set_active(conn, &actor, id, true, None)
        })
        .await
        .unwrap();
    assert_eq!(stolen.get("/account").await.status, StatusCode::SEE_OTHER);

    // "Sign out everywhere".
    app.sign_in("learner@example.org", "learner password 3")
        .await
        .assert_redirect_to("/");
    let stolen = app.copy_of_this_browser();
    app.post("/account/sign-out-everywhere", &[])
        .await
        .assert_redirect_to("/login");
    assert_eq!(stolen.get("/account").await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER);
}

/// Item 5: parallel guesses are counted as they arrive, per (account, address).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_parallel_guesses_get_five_checks_and_the_owner_still_signs_in_elsewhere() {
    let app = spawn_app_with(|s| s.password_hashing_queue = 100).await;
    app.create_user("ada@example.org", "the right password", false)
        .await;
    let token = app.csrf_token().await;
    let mut guesses = Vec::new();
    for i in 0..60 {
        let (client, url, token) = (app.client.clone(), app.url("/login"), token.clone());
        guesses.push(tokio::spawn(async move {
            client
                .post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email", "ada@example.org"),
                    ("password", &format!("guess number {i}")),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut checked = 0;
    let mut throttled = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            StatusCode::BAD_REQUEST => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((checked, throttled), (5, 55));
    assert_eq!(app.count("sign_in_attempts").await, 5);

    // Not a lock-out of the owner: from another network the right password works.
    let elsewhere = app.browser_from("127.0.0.2");
    elsewhere
        .sign_in("ada@example.org", "the right password")
        .await
        .assert_redirect_to("/");
    // From the guessing network, even the right password waits.
    assert_eq!(
        app.sign_in("ada@example.org", "the right password")
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner was told, once.
    assert_eq!(
        emails_of_kind(&app, "ada@example.org", "sign_in_warning").await,
        1
    );
}

/// Item 20: sign-up does not tell whether an address has an account.
#[tokio::test]
async fn signing_up_with_a_taken_address_looks_the_same_and_tells_the_owner_instead() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "ada password 1", false)
        .await;
    let fresh = sign_up(
        &app.another_browser(),
        "new@example.org",
        "a long password 1",
    )
    .await;
    let taken = sign_up(
        &app.another_browser(),
        "ada@example.org",
        "a long password 1",
    )
    .await;
    assert_eq!(fresh.status, taken.status);
    // The pages differ only by the address and the session's CSRF token.
    let strip = |page: &crate::helpers::Html, email: &str| {
        let body = page.body.replace(email, "EMAIL");
        let marker = "name=\"csrf-token\" content=\"";
        let start = body.find(marker).expect("a CSRF token") + marker.len();
        let end = start + body[start..].find('"').expect("its end");
        format!("{}TOKEN{}", &body[..start], &body[end..])
    };
    assert_eq!(
        strip(&fresh, "new@example.org"),
        strip(&taken, "ada@example.org")
    );
    assert_eq!(app.count("users").await, 2);
    assert_eq!(
        emails_of_kind(&app, "ada@example.org", "sign_up_existing").await,
        1
    );
    // Again within the hour: no second notice.
    sign_up(
        &app.another_browser(),
        "ada@example.org",
        "a long password 1",
    )
    .await;
    assert_eq!(
        emails_of_kind(&app, "ada@example.org", "sign_up_existing").await,
        1
    );
}

/// Item 20: password reset emails are rate-limited; the answer stays the same.
#[tokio::test]
async fn password_reset_emails_are_limited_to_three_an_hour() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "ada password 1", false)
        .await;
    for _ in 0..6 {
        let page = app
            .post("/password/forgot", &[("email", "ada@example.org")])
            .await;
        assert_eq!(page.status, StatusCode::OK);
    }
    assert_eq!(
        emails_of_kind(&app, "ada@example.org", "reset_password").await,
        3
    );
}

/// Item 20: the password may not be the address or a common password.
#[tokio::test]
async fn the_address_itself_and_common_passwords_are_refused() {
    let app = spawn_app().await;
    let common = sign_up(&app, "ada@example.org", "Password123").await;
    assert_eq!(common.status, StatusCode::BAD_REQUEST);
    common.assert_contains("one of the most common passwords");
    let own = sign_up(&app, "ada.lovelace@example.org", "ada.lovelace@example.org").await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST);
    own.assert_contains("must not be your email address");
    own.assert_contains("value=\"ada.lovelace@example.org\"");
    assert_eq!(app.count("users").await, 0);
}

/// Item 20: a partner's managers may send only so many invitation emails an hour.
#[tokio::test]
async fn managers_invitation_emails_are_capped_per_partner_and_hour() {
    let app = spawn_app_with(|s| s.invitation_emails_per_partner_per_hour = 2).await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let page = format!("/partner/acme/catalogs/{}/invitations", s.catalog_id);
    let answer = manager
        .post(
            &page,
            &[("emails", "a@example.org\nb@example.org\nc@example.org")],
        )
        .await;
    answer.assert_contains("2 invitations sent");
    answer.assert_contains(
        "c@example.org</strong>: not sent: Your organisation has sent 2 invitation emails in the last hour",
    );
    assert_eq!(app.count("invitations").await, 2);
    // Staff are not limited.
    invite(&app, s.catalog_id, "d@example.org").await;
    assert_eq!(app.count("invitations").await, 3);
}
