//! Rule 3: who sees which catalog.

use partner_catalog::services;
use partner_catalog::services::visibility::VisibleCatalog;

use super::*;
use crate::helpers::spawn_app;

async fn visible(app: &TestApp, user: &User) -> Vec<VisibleCatalog> {
    let actor = actor(user);
    app.db
        .run(move |conn| services::visibility::visible_catalogs(conn, &Default::default(), &actor))
        .await
        .unwrap()
}

async fn sees(app: &TestApp, user: &User, catalog_id: i64) -> bool {
    visible(app, user)
        .await
        .iter()
        .any(|v| v.catalog.id == catalog_id)
}

#[tokio::test]
async fn rule_3_staff_see_every_catalog() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a = catalog(&app, &w, Spec::default()).await;
    let b = catalog(
        &app,
        &w,
        Spec {
            partner_b: true,
            ..Default::default()
        },
    )
    .await;
    for id in [a.id, b.id] {
        let actor = w.staff();
        let seen = app
            .db
            .run(move |conn| {
                services::visibility::can_see_catalog(conn, &Default::default(), &actor, id)
            })
            .await
            .unwrap();
        assert!(seen);
    }
}

#[tokio::test]
async fn rule_3_a_person_with_no_tie_sees_nothing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let nobody = user(&app, "nobody@example.org", true).await;
    assert!(visible(&app, &nobody).await.is_empty());
    let actor = actor(&nobody);
    let seen = app
        .db
        .run(move |conn| {
            services::visibility::can_see_catalog(conn, &Default::default(), &actor, c.id)
        })
        .await
        .unwrap();
    assert!(!seen);
}

#[tokio::test]
async fn rule_3_an_active_learner_sees_it_and_a_removed_one_does_not() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let invitation = join(&app, &w, c.id, &ada).await;
    let seen = visible(&app, &ada).await;
    assert_eq!(seen.len(), 1);
    assert!(seen[0].is_learner);
    assert!(!seen[0].has_pending_invitation);

    remove(&app, w.staff(), invitation.id).await.unwrap();
    assert!(!sees(&app, &ada, c.id).await);
}

#[tokio::test]
async fn rule_3_a_pending_unexpired_invitation_shows_the_catalog() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    invite(&app, &w, c.id, &ada.email).await.unwrap();
    let seen = visible(&app, &ada).await;
    assert_eq!(seen.len(), 1);
    assert!(seen[0].has_pending_invitation);
    assert!(!seen[0].is_learner);
}

#[tokio::test]
async fn rule_3_an_expired_or_declined_invitation_does_not() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let mut expiring = ctx(&app);
    expiring.invitation_ttl = chrono::Duration::zero();
    invite_with(&app, expiring, w.staff(), c.id, &ada.email)
        .await
        .unwrap();
    assert!(!sees(&app, &ada, c.id).await, "expired");

    let bo = user(&app, "bo@example.org", true).await;
    let sent = invite(&app, &w, c.id, &bo.email).await.unwrap();
    assert!(sees(&app, &bo, c.id).await);
    decline(&app, sent.token.as_str()).await.unwrap();
    assert!(!sees(&app, &bo, c.id).await, "declined");
}

#[tokio::test]
async fn rule_3_a_verified_matching_email_shows_the_catalog() {
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
    let ada = user(&app, "ada@acme.example", true).await;
    let seen = visible(&app, &ada).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].catalog.id, c.id);
    assert!(!seen[0].may_join, "self-enrolment is off");

    let other = user(&app, "ada@elsewhere.example", true).await;
    assert!(!sees(&app, &other, c.id).await);
}

#[tokio::test]
async fn rule_3_an_unverified_matching_email_does_not_count() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            patterns: r".*@acme\.example".into(),
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@acme.example", false).await;
    assert!(!sees(&app, &ada, c.id).await);
}

#[tokio::test]
async fn rule_3_a_self_enrolment_catalog_shows_to_those_who_may_join() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let open = catalog(
        &app,
        &w,
        Spec {
            name: "Open to all".into(),
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    let restricted = catalog(
        &app,
        &w,
        Spec {
            name: "Acme staff".into(),
            self_enrollment: true,
            patterns: r".*@acme\.example".into(),
            ..Default::default()
        },
    )
    .await;
    // No patterns: anyone, verified or not.
    let stranger = user(&app, "stranger@elsewhere.example", false).await;
    let seen = visible(&app, &stranger).await;
    assert_eq!(
        seen.iter().map(|v| v.catalog.id).collect::<Vec<_>>(),
        vec![open.id]
    );
    assert!(seen[0].may_join);

    let ada = user(&app, "ada@acme.example", true).await;
    let mut ids: Vec<i64> = visible(&app, &ada)
        .await
        .iter()
        .filter(|v| v.may_join)
        .map(|v| v.catalog.id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![open.id, restricted.id]);

    // Once joined, it is shown as theirs, not as one to join.
    self_enroll(&app, &ada, restricted.id).await.unwrap();
    let mine = visible(&app, &ada).await;
    let entry = mine.iter().find(|v| v.catalog.id == restricted.id).unwrap();
    assert!(entry.is_learner);
    assert!(!entry.may_join);
}

#[tokio::test]
async fn rule_3_a_self_enrolment_catalog_outside_its_window_shows_only_to_those_otherwise_tied() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let ended = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            start: "2001-01-01T00:00".into(),
            end: "2002-01-01T00:00".into(),
            ..Default::default()
        },
    )
    .await;
    // With no patterns anyone could join it while it was open; once ended, no one can.
    let passer_by = user(&app, "passer-by@example.org", true).await;
    assert!(!sees(&app, &passer_by, ended.id).await);

    let upcoming = catalog(
        &app,
        &w,
        Spec {
            name: "Next year".into(),
            self_enrollment: true,
            patterns: ".*@example\\.org".into(),
            start: "2990-01-01T00:00".into(),
            ..Default::default()
        },
    )
    .await;
    // A matching verified email still sees an upcoming catalog, without a join button.
    let seen = visible(&app, &passer_by).await;
    let entry = seen.iter().find(|v| v.catalog.id == upcoming.id).unwrap();
    assert!(!entry.may_join);
}
