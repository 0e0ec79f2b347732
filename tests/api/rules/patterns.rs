//! Rule 2: email patterns match the whole address, case-insensitively; one matching
//! pattern is enough; bad patterns are rejected with the regex engine's message.

use partner_catalog::domain::patterns::{EmailPattern, PatternError};
use partner_catalog::services;

use super::*;
use crate::helpers::spawn_app;

async fn replace(app: &TestApp, w: &World, catalog_id: i64, lines: &str) -> Result<Vec<String>> {
    let (actor, lines) = (w.staff(), lines.to_string());
    app.db
        .transaction(move |conn| {
            services::catalogs::replace_patterns(conn, &actor, catalog_id, &lines)
        })
        .await
}

async fn stored(app: &TestApp, w: &World, catalog_id: i64) -> Vec<String> {
    let actor = w.staff();
    app.db
        .run(move |conn| services::catalogs::patterns(conn, &actor, catalog_id))
        .await
        .unwrap()
}

/// The pattern the catalog editor's "test an address" box reports for an address.
async fn matching(app: &TestApp, w: &World, c: &Catalog, raw: &str) -> Option<String> {
    let (actor, c, raw) = (w.staff(), c.clone(), raw.to_string());
    app.db
        .run(move |conn| services::console::test_address(conn, &actor, &c, &raw))
        .await
        .unwrap()
        .matching_pattern
}

fn pattern_message(err: &Error) -> String {
    assert_eq!(err.code(), "invalid_input");
    err.field_errors()
        .and_then(|f| f.get("email_patterns"))
        .expect("an email_patterns error")
        .to_string()
}

#[tokio::test]
async fn rule_2_patterns_are_stored_as_written_after_trimming() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let saved = replace(
        &app,
        &w,
        c.id,
        "   .*@ACME\\.example  \n\n\t.*@Partner\\.org\n",
    )
    .await
    .unwrap();
    let expected = vec![
        r".*@ACME\.example".to_string(),
        r".*@Partner\.org".to_string(),
    ];
    assert_eq!(saved, expected);
    assert_eq!(stored(&app, &w, c.id).await, expected);
}

#[tokio::test]
async fn rule_2_upper_case_addresses_match() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            patterns: r".*@acme\.example".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        matching(&app, &w, &c, "  Ada.Lovelace@ACME.EXAMPLE ").await,
        Some(r".*@acme\.example".into())
    );
    // A pattern written in capitals matches a lower-case address too.
    replace(&app, &w, c.id, r".*@ACME\.EXAMPLE").await.unwrap();
    assert!(matching(&app, &w, &c, "ada@acme.example").await.is_some());
    // And a person signing up with capitals is matched on the stored address.
    let ada = user(&app, "ADA@Acme.Example", true).await;
    assert_eq!(ada.email, "ada@acme.example");
    let actor = actor(&ada);
    let seen = app
        .db
        .run(move |conn| {
            services::visibility::can_see_catalog(conn, &Default::default(), &actor, c.id)
        })
        .await
        .unwrap();
    assert!(seen);
}

#[tokio::test]
async fn rule_2_a_second_pattern_is_enough() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            patterns: ".*@first\\.org\n.*@second\\.org".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        matching(&app, &w, &c, "bo@second.org").await,
        Some(r".*@second\.org".into())
    );
    assert_eq!(matching(&app, &w, &c, "bo@third.org").await, None);
    let bo = user(&app, "bo@second.org", true).await;
    let joined = self_enroll(&app, &bo, c.id).await.unwrap();
    assert!(joined.is_active);
}

#[tokio::test]
async fn rule_2_a_partial_match_does_not_match() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            patterns: "acme\\.example\n.*@acme\\.example".into(),
            ..Default::default()
        },
    )
    .await;
    // The first pattern only matches part of the address; the second one whole.
    assert_eq!(
        matching(&app, &w, &c, "ada@acme.example").await,
        Some(r".*@acme\.example".into())
    );
    assert_eq!(
        matching(&app, &w, &c, "ada@acme.example.evil.org").await,
        None
    );
    assert_eq!(matching(&app, &w, &c, "acme.example@evil.org").await, None);
    let eve = user(&app, "eve@acme.example.evil.org", true).await;
    // Not for her: as far as she can tell, the catalog does not exist.
    assert_eq!(code(self_enroll(&app, &eve, c.id).await), "not_found");
    assert!(learner(&app, c.id, eve.id).await.is_none());
}

#[tokio::test]
async fn rule_2_alternation_is_anchored_as_a_whole() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            patterns: r"a@x\.com|b@y\.com".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matching(&app, &w, &c, "a@x.com").await.is_some());
    assert!(matching(&app, &w, &c, "b@y.com").await.is_some());
    assert!(matching(&app, &w, &c, "a@x.com.org").await.is_none());
    assert!(matching(&app, &w, &c, "zb@y.com").await.is_none());
}

#[tokio::test]
async fn rule_2_no_patterns_match_nothing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    assert_eq!(matching(&app, &w, &c, "anyone@example.org").await, None);
}

#[test]
fn rule_2_empty_pattern_is_rejected() {
    assert_eq!(EmailPattern::parse("").unwrap_err(), PatternError::Empty);
    assert_eq!(
        EmailPattern::parse(" \t ").unwrap_err(),
        PatternError::Empty
    );
    assert_eq!(
        PatternError::Empty.to_string(),
        "a pattern may not be empty"
    );
}

#[tokio::test]
async fn rule_2_blank_lines_are_not_patterns() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let saved = replace(&app, &w, c.id, "\n   \n.*@a\\.org\n\n")
        .await
        .unwrap();
    assert_eq!(saved, vec![r".*@a\.org".to_string()]);
}

#[tokio::test]
async fn rule_2_over_long_pattern_is_rejected() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    replace(&app, &w, c.id, r".*@keep\.org").await.unwrap();
    let longest = format!("{}@x\\.org", "a".repeat(500 - 7));
    assert_eq!(longest.chars().count(), 500);
    replace(&app, &w, c.id, &longest).await.unwrap();
    replace(&app, &w, c.id, r".*@keep\.org").await.unwrap();

    let too_long = format!("a{longest}");
    let message = pattern_message(&expect_err(replace(&app, &w, c.id, &too_long).await));
    assert!(message.contains("line 1"), "{message}");
    assert!(message.contains("at most 500 characters"), "{message}");
    assert_eq!(
        stored(&app, &w, c.id).await,
        vec![r".*@keep\.org".to_string()],
        "nothing changed"
    );
}

#[tokio::test]
async fn rule_2_non_compiling_pattern_is_rejected_naming_its_line_and_the_slip() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    replace(&app, &w, c.id, r".*@keep\.org").await.unwrap();
    let message = pattern_message(&expect_err(
        replace(&app, &w, c.id, ".*@ok\\.org\n(unclosed@x\\.org").await,
    ));
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("(unclosed@x\\.org"), "{message}");
    assert!(
        message.contains("a bracket “(” is opened and never closed"),
        "{message}"
    );
    assert_eq!(
        stored(&app, &w, c.id).await,
        vec![r".*@keep\.org".to_string()]
    );

    // The catalog form reports it on the same field and creates nothing.
    let before = app.count("catalogs").await;
    let (actor, partner) = (w.staff(), w.partner_a);
    let err = app
        .db
        .transaction(move |conn| {
            services::catalogs::create(
                conn,
                &actor,
                partner,
                &input(&Spec {
                    patterns: "[z-a]@x\\.org".into(),
                    ..Default::default()
                }),
            )
        })
        .await
        .unwrap_err();
    let message = pattern_message(&err);
    assert!(
        message.contains("invalid character class range"),
        "{message}"
    );
    assert_eq!(app.count("catalogs").await, before);
}

#[tokio::test]
async fn rule_2_compiled_size_is_capped() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let huge = r"(?:\w{50}){1000}";
    let message = pattern_message(&expect_err(replace(&app, &w, c.id, huge).await));
    assert!(message.contains("too large to check quickly"), "{message}");
}

#[test]
fn rule_2_nested_quantifiers_stay_fast() {
    let pattern = EmailPattern::parse(r"(.*)*@(.*)*\.com").unwrap();
    let long = format!("{}@example.org", "a".repeat(5000));
    let started = std::time::Instant::now();
    assert!(!pattern.matches(&long));
    assert!(pattern.matches("ada@example.com"));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
