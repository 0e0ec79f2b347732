//! Rule 1: a catalog is active when start ≤ now ≤ end, both inclusive.

use chrono::{DateTime, Duration, TimeZone, Utc};
use partner_catalog::domain::availability::CatalogPhase;
use partner_catalog::policies::joining::require_active;
use partner_catalog::services;

use super::*;
use crate::helpers::spawn_app;

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&Utc)
}

/// A catalog stored with these exact instants, read back from the database.
async fn stored_window(app: &TestApp, w: &World, start: &str, end: &str) -> Catalog {
    let created = catalog(
        app,
        w,
        Spec {
            start: start.into(),
            end: end.into(),
            ..Default::default()
        },
    )
    .await;
    let actor = w.staff();
    app.db
        .run(move |conn| services::catalogs::find(conn, &actor, created.id))
        .await
        .unwrap()
}

#[tokio::test]
async fn rule_1_window_open_at_exactly_start() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = stored_window(
        &app,
        &w,
        "2030-05-01T09:30:15.123456Z",
        "2030-06-01T00:00:00Z",
    )
    .await;
    let start = instant("2030-05-01T09:30:15.123456Z");
    assert_eq!(c.available_start, start, "stored to the microsecond");
    assert!(c.is_active_at(start));
    assert_eq!(c.phase_at(start), CatalogPhase::Active);
    assert!(require_active(&c, start).is_ok());

    let before = start - Duration::microseconds(1);
    assert!(!c.is_active_at(before));
    assert_eq!(c.phase_at(before), CatalogPhase::Upcoming);
    assert_eq!(code(require_active(&c, before)), "catalog_unavailable");
}

#[tokio::test]
async fn rule_1_window_open_at_exactly_end() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = stored_window(
        &app,
        &w,
        "2030-05-01T00:00:00Z",
        "2030-06-30T23:59:59.999999Z",
    )
    .await;
    let end = instant("2030-06-30T23:59:59.999999Z");
    assert_eq!(c.available_end, end);
    assert!(c.is_active_at(end));
    assert!(require_active(&c, end).is_ok());

    let after = end + Duration::microseconds(1);
    assert!(!c.is_active_at(after));
    assert_eq!(c.phase_at(after), CatalogPhase::Ended);
    let err = expect_err(require_active(&c, after));
    assert_eq!(err.code(), "catalog_unavailable");
    assert_eq!(err.status(), 409);
}

#[tokio::test]
async fn rule_1_a_date_alone_ends_at_the_last_second_of_that_day() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = stored_window(&app, &w, "2030-05-01", "2030-05-31").await;
    assert_eq!(
        c.available_start,
        Utc.with_ymd_and_hms(2030, 5, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        c.available_end,
        Utc.with_ymd_and_hms(2030, 5, 31, 23, 59, 59).unwrap()
    );
    assert!(c.is_active_at(c.available_end));
}

#[tokio::test]
async fn rule_1_single_instant_window_is_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = stored_window(&app, &w, "2030-05-01T12:00", "2030-05-01T12:00").await;
    assert_eq!(c.available_start, c.available_end);
    assert!(c.is_active_at(c.available_start));
}

#[tokio::test]
async fn rule_1_end_before_start_is_rejected_with_a_clear_message() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let actor = w.staff();
    let partner = w.partner_a;
    let before = app.count("catalogs").await;
    let err = app
        .db
        .transaction(move |conn| {
            services::catalogs::create(
                conn,
                &actor,
                partner,
                &input(&Spec {
                    start: "2030-06-01T00:00".into(),
                    end: "2030-05-31T23:59".into(),
                    ..Default::default()
                }),
            )
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    let fields = err.field_errors().expect("field errors");
    assert_eq!(
        fields.get("available_end"),
        Some("the end must not be before the start")
    );
    assert_eq!(app.count("catalogs").await, before, "nothing was created");

    // Editing an existing catalog is held to the same rule.
    let c = catalog(&app, &w, Spec::default()).await;
    let actor = w.staff();
    let err = app
        .db
        .transaction(move |conn| {
            services::catalogs::update(
                conn,
                &actor,
                c.id,
                &input(&Spec {
                    start: "2030-06-01T00:00".into(),
                    end: "2029-06-01T00:00".into(),
                    ..Default::default()
                }),
            )
        })
        .await
        .unwrap_err();
    assert!(err.field_errors().unwrap().get("available_end").is_some());
}

#[tokio::test]
async fn rule_1_upcoming_catalog_cannot_be_joined_until_it_opens() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let now = Utc::now();
    set_window(
        &app,
        c.id,
        now + Duration::days(1),
        now + Duration::days(30),
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    // Inviting before the start is allowed (rule 5).
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let err = expect_err(accept(&app, &ada, sent.token.as_str()).await);
    assert_eq!(err.code(), "catalog_unavailable");
    assert!(err.to_string().contains("opens on"), "{err}");
    assert!(learner(&app, c.id, ada.id).await.is_none());

    // Once the window holds now, the same invitation works.
    set_window(
        &app,
        c.id,
        now - Duration::seconds(1),
        now + Duration::days(30),
    )
    .await;
    accept(&app, &ada, sent.token.as_str()).await.unwrap();
    assert!(learner(&app, c.id, ada.id).await.unwrap().is_active);
}

#[tokio::test]
async fn rule_1_ended_catalog_cannot_be_joined() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let now = Utc::now();
    set_window(
        &app,
        c.id,
        now - Duration::days(30),
        now - Duration::seconds(1),
    )
    .await;
    let err = expect_err(accept(&app, &ada, sent.token.as_str()).await);
    assert_eq!(err.code(), "catalog_unavailable");
    assert!(err.to_string().contains("ended on"), "{err}");
    assert!(learner(&app, c.id, ada.id).await.is_none());
}
