use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_when_the_database_does() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "ok");
}

#[tokio::test]
async fn head_answers_as_get_would_without_the_body() {
    let app = spawn_app().await;
    let client = crate::helpers::plain_client();
    for path in ["/healthz", "/static/style.css", "/login"] {
        let get = client.get(app.url(path)).send().await.unwrap();
        let get_type = get.headers()["content-type"].clone();
        let get_length = get.bytes().await.unwrap().len();
        let head = client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert_eq!(head.headers()["content-type"], get_type, "{path}");
        assert_eq!(
            head.headers()["content-length"],
            get_length.to_string().as_str(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    // Refusals are the GET's too.
    let head = client
        .head(app.url("/api/v1/catalogs"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::UNAUTHORIZED);
    let head = client
        .head(app.url("/api/v1/invitations/7/resend"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(head.headers()["allow"], "POST");
}

#[tokio::test]
async fn unknown_pages_get_the_not_found_page() {
    let app = spawn_app().await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    response.assert_contains("Not found");
    response.assert_contains("<link rel=\"stylesheet\" href=\"/static/style.css\">");
}

#[tokio::test]
async fn a_missing_record_is_a_not_found_page_without_internals() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    let response = app.get("/staff/organisations/999999/edit").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(!response.body.contains("diesel"));
    assert!(!response.body.contains("NotFound"));
}

#[tokio::test]
async fn a_malformed_id_is_not_a_server_error() {
    let app = spawn_app().await;
    app.signed_in_staff().await;
    for path in [
        "/staff/organisations/abc/edit",
        "/staff/bulk/abc",
        "/staff/users/99999999999999999999999",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        // The site's own page, with its navigation, not the framework's text.
        response.assert_contains("There is nothing at this address.");
        response.assert_contains("Signed in as");
        assert!(!response.body.contains("can not parse"), "{path}");
    }
}

#[tokio::test]
async fn security_headers_are_sent() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    // Scripts only from the application's own files, never inline.
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}
