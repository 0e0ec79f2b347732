//! Rule 4: joining by invitation or by self-enrolment; verified emails only count for
//! patterns; the catalog must be active; `user_limit` caps active learners.

use chrono::{Duration, Utc};
use partner_catalog::models::invitations::Invitation;
use partner_catalog::services;
use partner_catalog::services::registration::Registration;

use super::*;
use crate::helpers::spawn_app;

fn acme_self_enrollment() -> Spec {
    Spec {
        self_enrollment: true,
        patterns: r".*@acme\.example".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn rule_4_self_enrolment_allowed_with_no_patterns() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    // Even an address not yet verified: there is no pattern to match.
    let ada = user(&app, "ada@anywhere.example", false).await;
    let joined = self_enroll(&app, &ada, c.id).await.unwrap();
    assert!(joined.is_active);
    assert_eq!(active_learners(&app, c.id).await, 1);
}

#[tokio::test]
async fn rule_4_self_enrolment_allowed_for_a_verified_matching_email() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, acme_self_enrollment()).await;
    let ada = user(&app, "ada@acme.example", true).await;
    let joined = self_enroll(&app, &ada, c.id).await.unwrap();
    assert!(joined.is_active);
    let invitation = app
        .db
        .run(move |conn| {
            Ok(partner_catalog::models::invitations::find(
                conn,
                joined.invitation_id,
            )?)
        })
        .await
        .unwrap();
    assert_eq!(invitation.channel, "self_enrollment");
    assert!(invitation.accepted_at.is_some());
}

#[tokio::test]
async fn rule_4_self_enrolment_refused_for_a_non_matching_email() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, acme_self_enrollment()).await;
    let eve = user(&app, "eve@elsewhere.example", true).await;
    // She does not see the catalog (rule 3), so she cannot learn its name either.
    let err = expect_err(self_enroll(&app, &eve, c.id).await);
    assert_eq!(err.code(), "not_found");
    assert_eq!(err.status(), 404);
    assert!(!err.to_string().contains(&c.name), "{err}");
    assert!(learner(&app, c.id, eve.id).await.is_none());
    assert_eq!(app.count("invitations").await, 0, "nothing was written");
}

#[tokio::test]
async fn rule_4_self_enrolment_refused_for_an_unverified_email() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, acme_self_enrollment()).await;
    let ada = user(&app, "ada@acme.example", false).await;
    let err = expect_err(self_enroll(&app, &ada, c.id).await);
    assert_eq!(err.code(), "forbidden");
    assert!(
        err.to_string().contains("Verify your email address"),
        "{err}"
    );
    assert!(learner(&app, c.id, ada.id).await.is_none());
}

#[tokio::test]
async fn rule_4_open_sign_up_leaves_the_email_unverified_for_patterns() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, acme_self_enrollment()).await;
    let ctx = ctx(&app);
    let signed_up = app
        .db
        .transaction(move |conn| {
            services::registration::sign_up(
                conn,
                &ctx,
                "ada@acme.example",
                &Registration {
                    full_name: "Ada".into(),
                    password_hash: "not-a-real-hash".into(),
                },
            )
        })
        .await
        .unwrap();
    let services::registration::SignUp::Created(signed_up) = signed_up.outcome else {
        panic!("a new account");
    };
    assert!(!signed_up.is_verified());
    assert_eq!(code(self_enroll(&app, &signed_up, c.id).await), "forbidden");
}

#[tokio::test]
async fn rule_4_registering_from_an_invitation_link_verifies_the_email() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let invited_to = catalog(&app, &w, Spec::default()).await;
    let c = catalog(&app, &w, acme_self_enrollment()).await;
    let sent = invite(&app, &w, invited_to.id, "ada@acme.example")
        .await
        .unwrap();
    let token = sent.token.into_string();
    let (ada, accepted): (User, Invitation) = app
        .db
        .transaction(move |conn| {
            services::registration::register_from_invitation(
                conn,
                &token,
                &Registration {
                    full_name: "Ada".into(),
                    password_hash: "not-a-real-hash".into(),
                },
            )
        })
        .await
        .unwrap();
    assert!(ada.is_verified());
    assert!(accepted.accepted_at.is_some());
    assert!(
        learner(&app, invited_to.id, ada.id)
            .await
            .unwrap()
            .is_active
    );
    // The proven address now counts for the other catalog's patterns.
    self_enroll(&app, &ada, c.id).await.unwrap();
}

#[tokio::test]
async fn rule_4_accepting_an_invitation_verifies_an_unverified_account() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@acme.example", false).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    accept(&app, &ada, sent.token.as_str()).await.unwrap();
    let id = ada.id;
    let reloaded = app
        .db
        .run(move |conn| Ok(partner_catalog::models::users::find(conn, id)?))
        .await
        .unwrap();
    assert!(
        reloaded.is_verified(),
        "the emailed link proves the address"
    );
}

#[tokio::test]
async fn rule_4_self_enrolment_refused_when_the_catalog_is_invitation_only() {
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
    let err = expect_err(self_enroll(&app, &ada, c.id).await);
    assert_eq!(err.code(), "forbidden");
    assert!(err.to_string().contains("by invitation only"), "{err}");
}

#[tokio::test]
async fn rule_4_self_enrolment_needs_an_active_catalog() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    let now = Utc::now();
    set_window(
        &app,
        c.id,
        now + Duration::hours(1),
        now + Duration::days(1),
    )
    .await;
    assert_eq!(
        code(self_enroll(&app, &ada, c.id).await),
        "catalog_unavailable"
    );
    set_window(&app, c.id, now - Duration::days(2), now - Duration::days(1)).await;
    assert_eq!(
        code(self_enroll(&app, &ada, c.id).await),
        "catalog_unavailable"
    );
    assert!(learner(&app, c.id, ada.id).await.is_none());
}

#[tokio::test]
async fn rule_4_user_limit_caps_active_learners() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            user_limit: 2,
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    let bo = user(&app, "bo@example.org", true).await;
    let cy = user(&app, "cy@example.org", true).await;
    let ada_invitation = join(&app, &w, c.id, &ada).await;
    self_enroll(&app, &bo, c.id).await.unwrap();

    let sent = invite(&app, &w, c.id, &cy.email).await.unwrap();
    let err = expect_err(accept(&app, &cy, sent.token.as_str()).await);
    assert_eq!(err.code(), "user_limit_reached");
    assert_eq!(err.status(), 409);
    assert_eq!(
        code(self_enroll(&app, &cy, c.id).await),
        "user_limit_reached"
    );
    assert_eq!(active_learners(&app, c.id).await, 2);

    // Removing a learner frees the place.
    remove(&app, w.staff(), ada_invitation.id).await.unwrap();
    accept(&app, &cy, sent.token.as_str()).await.unwrap();
    assert_eq!(active_learners(&app, c.id).await, 2);
}

#[tokio::test]
async fn rule_4_user_limit_zero_is_unlimited() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    for n in 0..12 {
        let u = user(&app, &format!("learner{n}@example.org"), true).await;
        join(&app, &w, c.id, &u).await;
    }
    assert_eq!(active_learners(&app, c.id).await, 12);
}

#[tokio::test]
async fn rule_4_an_active_learner_self_enrolling_again_is_not_refused_by_the_limit() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            user_limit: 1,
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    let first = self_enroll(&app, &ada, c.id).await.unwrap();
    let again = self_enroll(&app, &ada, c.id).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(app.count("catalog_learners").await, 1);
    assert_eq!(app.count("invitations").await, 1);
}

#[tokio::test]
async fn rule_4_self_enrolment_accepts_a_waiting_invitation() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let joined = self_enroll(&app, &ada, c.id).await.unwrap();
    assert_eq!(joined.invitation_id, sent.invitation.id);
    assert_eq!(app.count("invitations").await, 1, "not doubled");
}
