use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_post_without_a_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let response = app
        .post_raw(
            "/staff/organisations",
            &[("short_name", "ACMEx"), ("name", "ACME")],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    response.assert_contains("This form has expired");
    assert_eq!(app.count("organisations").await, 0);
}

#[tokio::test]
async fn a_post_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let response = app
        .post_raw(
            "/staff/organisations",
            &[
                ("csrf_token", "forged"),
                ("short_name", "ACMEx"),
                ("name", "ACME"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("organisations").await, 0);
}

#[tokio::test]
async fn another_sessions_token_is_refused() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let other = app.another_browser();
    let foreign_token = other.csrf_token().await;
    let response = app
        .post_raw(
            "/staff/organisations",
            &[
                ("csrf_token", &foreign_token),
                ("short_name", "ACMEx"),
                ("name", "ACME"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("organisations").await, 0);
}

#[tokio::test]
async fn the_header_token_is_accepted_as_well() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let token = app.csrf_token().await;
    let response = app
        .client
        .post(app.url("/staff/organisations"))
        .header("X-CSRF-Token", token)
        .form(&[("short_name", "ACMEx"), ("name", "ACME")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("organisations").await, 1);
}

#[tokio::test]
async fn sign_in_itself_needs_the_token() {
    let app = spawn_app().await;
    app.create_user("ada@example.org", "a good password", true)
        .await;
    let response = app
        .post_raw(
            "/login",
            &[
                ("email", "ada@example.org"),
                ("password", "a good password"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("sign_in_attempts").await, 0);
}
