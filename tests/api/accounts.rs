use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn sign_in_with_the_right_password_reaches_the_next_page() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "a good password", true)
        .await;
    let token = app.csrf_token().await;
    let response = app
        .post_raw(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", " Ada@Example.org "),
                ("password", "a good password"),
                ("next", "/staff"),
            ],
        )
        .await;
    response.assert_redirect_to("/staff");
    let page = app.get("/staff").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("Staff overview");
}

#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "a good password", false)
        .await;
    let token = app.csrf_token().await;
    let response = app
        .post_raw(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", "ada@example.org"),
                ("password", "a good password"),
                ("next", "//evil.example"),
            ],
        )
        .await;
    response.assert_redirect_to("/");
}

#[tokio::test]
async fn wrong_password_is_refused_and_keeps_the_email() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "a good password", false)
        .await;
    let response = app.sign_in("ada@example.org", "not the password").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("That email and password do not match an account.");
    response.assert_contains("value=\"ada@example.org\"");
    assert_eq!(app.get("/staff").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unknown_email_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn_app().await;
    let response = app.sign_in("nobody@example.org", "whatever password").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("That email and password do not match an account.");
}

#[tokio::test]
async fn empty_fields_are_named() {
    let app = spawn_app().await;
    let response = app.sign_in("", "").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("is required");
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "a good password", false)
        .await;
    for _ in 0..5 {
        let response = app.sign_in("ada@example.org", "wrong password!").await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
    }
    // Even the right password is refused while the account is locked.
    let response = app.sign_in("ada@example.org", "a good password").await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    response.assert_contains(
        "Too many failed sign-ins for this account from your network. Try again in 15 minutes",
    );
    assert_eq!(app.get("/staff").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled() {
    let app = spawn_app().await;
    for n in 0..20 {
        let email = format!("guess{n}@example.org");
        assert_eq!(
            app.sign_in(&email, "some password").await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let response = app.sign_in("another@example.org", "some password").await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    response.assert_contains("Too many failed sign-ins from your network.");
}

#[tokio::test]
async fn deactivated_accounts_cannot_sign_in() {
    let app = spawn_app().await;
    let user = app
        .create_user("gone@example.org", "a good password", false)
        .await;
    app.db
        .run(move |conn| {
            Ok(partner_catalog::models::users::set_active(
                conn, user.id, false,
            )?)
        })
        .await
        .unwrap();
    let response = app.sign_in("gone@example.org", "a good password").await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    response.assert_contains("deactivated");
}

fn session_cookie(app: &crate::helpers::TestApp, jar_probe: &reqwest::Response) -> Option<String> {
    let _ = app;
    jar_probe
        .cookies()
        .find(|c| c.name() == "partner_catalog_session")
        .map(|c| c.value().to_string())
}

#[tokio::test]
async fn the_session_is_renewed_at_sign_in_and_purged_at_sign_out() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "a good password", true)
        .await;
    let first = app.client.get(app.url("/login")).send().await.unwrap();
    let before_cookie = session_cookie(&app, &first).expect("a session cookie before sign-in");
    let before_token = crate::helpers::csrf_in(&first.text().await.unwrap()).unwrap();

    let signed_in = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", before_token.as_str()),
            ("email", "ada@example.org"),
            ("password", "a good password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let after_cookie = session_cookie(&app, &signed_in).expect("a new session cookie at sign-in");
    assert_ne!(before_cookie, after_cookie);
    let after_token = app.csrf_token().await;
    assert_ne!(
        before_token, after_token,
        "the CSRF token is renewed with the session"
    );

    // The cookie from before sign-in grants nothing.
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = stale
        .get(app.url("/staff"))
        .header("Cookie", format!("partner_catalog_session={before_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The session cookie is HttpOnly and SameSite=Lax.
    let raw = signed_in
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("partner_catalog_session="))
        .unwrap();
    assert!(raw.contains("HttpOnly"), "{raw}");
    assert!(raw.contains("SameSite=Lax"), "{raw}");

    app.sign_out().await.assert_redirect_to("/login");
    assert_eq!(app.get("/staff").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_needing_a_sign_in_send_people_to_it_and_back() {
    let app = spawn_app().await;
    app.get("/staff/users?q=x")
        .await
        .assert_redirect_to("/login?next=%2Fstaff%2Fusers%3Fq%3Dx");
}

#[tokio::test]
async fn a_deactivated_account_is_signed_out_on_its_next_request() {
    let app = spawn_app().await;
    let staff = app.signed_in_staff().await;
    assert_eq!(app.get("/staff").await.status, StatusCode::OK);
    app.db
        .run(move |conn| {
            Ok(partner_catalog::models::users::set_active(
                conn, staff.id, false,
            )?)
        })
        .await
        .unwrap();
    assert_eq!(app.get("/staff").await.status, StatusCode::SEE_OTHER);
}

/// Whether an answer sends the session cookie again.
async fn sets_session_cookie(app: &crate::helpers::TestApp, path: &str) -> (bool, String) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let sets = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .any(|v| {
            v.to_str()
                .unwrap_or("")
                .starts_with("partner_catalog_session=")
        });
    (sets, response.text().await.unwrap())
}

#[tokio::test]
async fn reading_a_page_leaves_the_session_cookie_alone_unless_a_message_was_shown() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let _ = app.get("/account").await;
    for path in ["/account", "/staff", "/account"] {
        let (sets, _) = sets_session_cookie(&app, path).await;
        assert!(
            !sets,
            "{path}: nothing changed, yet the cookie was sent again"
        );
    }

    app.post("/account", &[("full_name", "Ada Lovelace")])
        .await
        .assert_redirect_to("/account");
    let (sets, body) = sets_session_cookie(&app, "/account").await;
    assert!(
        body.contains("Your name was saved."),
        "the message is shown once"
    );
    assert!(sets, "showing the message removes it from the session");
    let (sets, body) = sets_session_cookie(&app, "/account").await;
    assert!(!body.contains("Your name was saved."), "and only once");
    assert!(!sets);
}
