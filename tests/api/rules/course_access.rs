//! Rule 7: course access through a catalog, all seven branches; licence
//! deactivation; and rule 6's removal downgrading only the licences the catalog owns.

use chrono::{Duration, Utc};
use partner_catalog::services;
use partner_catalog::services::enrollments::{CourseAccess, RefusalReason};

use super::*;
use crate::helpers::spawn_app;

/// A new account that is an active learner of each catalog given.
async fn learner_of(app: &TestApp, w: &World, catalogs: &[i64], email: &str) -> User {
    let u = user(app, email, true).await;
    for catalog_id in catalogs {
        join(app, w, *catalog_id, &u).await;
    }
    u
}

fn limited(course_limit: i32) -> Spec {
    Spec {
        course_limit,
        ..Default::default()
    }
}

fn on_b(course_limit: i32) -> Spec {
    Spec {
        name: "Beta Academy".into(),
        partner_b: true,
        course_limit,
        ..Default::default()
    }
}

async fn deactivate_licence(app: &TestApp, by: Actor, licence_id: i64) -> Result<Licence> {
    app.db
        .transaction(move |conn| {
            services::enrollments::deactivate_licence(conn, &by, licence_id, Some("test"))
        })
        .await
}

/// The one new `blocked` event, with its reason.
/// The request is refused as not allowed, and its event says why.
async fn assert_not_allowed(
    app: &TestApp,
    user: &User,
    catalog_id: i64,
    course_id: i64,
    why: &str,
) {
    let trail = Trail::mark(app).await;
    assert_eq!(
        access(app, user, catalog_id, course_id).await,
        CourseAccess::Refused(RefusalReason::NotAllowed)
    );
    assert_eq!(blocked_reason(app, &trail).await, why);
}

async fn blocked_reason(app: &TestApp, trail: &Trail) -> String {
    let events = trail.events(app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name, "enrollment.blocked");
    assert!(
        trail.audit(app).await.is_empty(),
        "a refusal changes nothing"
    );
    events[0].reason.clone().expect("a reason")
}

#[tokio::test]
async fn rule_7_1_not_a_learner_is_not_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let eve = user(&app, "eve@example.org", true).await;
    // An outsider who does not even see the catalog: "not found", and nothing is
    // written into the partner's analytics.
    let trail = Trail::mark(&app).await;
    let err = expect_err(try_access(&app, &eve, c.id, w.open).await);
    assert_eq!(err.code(), "not_found");
    assert!(trail.events(&app).await.is_empty());
    assert!(enrollment(&app, eve.id, w.open).await.is_none());

    // Invited but not accepted: she sees the catalog, and is not allowed yet.
    invite(&app, &w, c.id, &eve.email).await.unwrap();
    let trail = Trail::mark(&app).await;
    let answer = access(&app, &eve, c.id, w.open).await;
    assert_eq!(answer, CourseAccess::Refused(RefusalReason::NotAllowed));
    let err = expect_err(answer.into_result());
    assert_eq!(err.code(), "not_allowed_to_enroll");
    assert_eq!(err.status(), 403);
    assert_eq!(blocked_reason(&app, &trail).await, "not_a_learner");
    assert!(enrollment(&app, eve.id, w.open).await.is_none());
    assert_eq!(
        access(&app, &eve, c.id, w.paid).await,
        CourseAccess::Refused(RefusalReason::NotAllowed)
    );
}

#[tokio::test]
async fn rule_7_1_a_removed_learner_is_not_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let joined = join(&app, &w, c.id, &ada).await;
    remove(&app, w.staff(), joined.id).await.unwrap();
    assert_not_allowed(&app, &ada, c.id, w.paid, "not_a_learner").await;
    assert!(licence(&app, ada.id, w.paid).await.is_none());
}

#[tokio::test]
async fn rule_7_1_a_course_outside_the_catalog_is_not_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let staff = w.staff();
    let paid = w.paid;
    app.db
        .transaction(move |conn| services::catalogs::remove_course(conn, &staff, c.id, paid, None))
        .await
        .unwrap();
    assert_not_allowed(&app, &ada, c.id, w.paid, "course_not_in_catalog").await;
    assert!(licence(&app, ada.id, w.paid).await.is_none());
}

#[tokio::test]
async fn rule_7_1_an_inactive_catalog_is_not_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let now = Utc::now();
    set_window(
        &app,
        c.id,
        now - Duration::days(10),
        now - Duration::seconds(1),
    )
    .await;
    assert_not_allowed(&app, &ada, c.id, w.open, "catalog_inactive").await;
    assert!(enrollment(&app, ada.id, w.open).await.is_none());
}

#[tokio::test]
async fn rule_7_1_an_unknown_catalog_is_not_found() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let ada = user(&app, "ada@example.org", true).await;
    let a = actor(&ada);
    let paid = w.paid;
    let err = app
        .db
        .transaction(move |conn| {
            services::enrollments::request_course_access(conn, &a, 999_999, paid)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[tokio::test]
async fn rule_7_2_open_course_enrols_in_audit_without_a_licence() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // No paid seats at all: open courses do not need any.
    let c = catalog(&app, &w, limited(1)).await;
    let bo = learner_of(&app, &w, &[c.id], "bo@example.org").await;
    assert!(matches!(
        access(&app, &bo, c.id, w.paid).await,
        CourseAccess::Granted { .. }
    ));
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let answer = access(&app, &ada, c.id, w.open).await;
    assert_eq!(
        answer,
        CourseAccess::Open {
            mode: "audit".into()
        }
    );
    assert_eq!(answer.warning(), None);
    let e = enrollment(&app, ada.id, w.open).await.unwrap();
    assert_eq!(e.mode, "audit");
    assert!(e.is_active);
    assert!(licence(&app, ada.id, w.open).await.is_none());
    assert_eq!(seats_used(&app, c.id).await, 1, "only bo's seat");

    // Asking again changes nothing.
    let trail = Trail::mark(&app).await;
    assert_eq!(
        access(&app, &ada, c.id, w.open).await,
        CourseAccess::Open {
            mode: "audit".into()
        }
    );
    assert!(trail.audit(&app).await.is_empty());
    assert!(trail.events(&app).await.is_empty());
}

#[tokio::test]
async fn rule_7_2_open_course_keeps_any_existing_mode() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    set_enrollment(&app, ada.id, w.open, "honor").await;
    assert_eq!(
        access(&app, &ada, c.id, w.open).await,
        CourseAccess::Open {
            mode: "honor".into()
        }
    );
    assert_eq!(
        enrollment(&app, ada.id, w.open).await.unwrap().mode,
        "honor"
    );
    assert!(licence(&app, ada.id, w.open).await.is_none());
}

#[tokio::test]
async fn rule_7_3_a_paid_enrolment_already_held_changes_nothing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(1)).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    set_enrollment(&app, ada.id, w.paid, "verified").await;
    let before = enrollment(&app, ada.id, w.paid).await.unwrap();
    let trail = Trail::mark(&app).await;
    let answer = access(&app, &ada, c.id, w.paid).await;
    assert_eq!(
        answer,
        CourseAccess::AlreadyPaid {
            mode: "verified".into()
        }
    );
    let after = enrollment(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(after.updated_at, before.updated_at, "untouched");
    assert!(licence(&app, ada.id, w.paid).await.is_none());
    assert_eq!(seats_used(&app, c.id).await, 0, "no seat used");
    assert!(trail.audit(&app).await.is_empty());
    assert!(trail.events(&app).await.is_empty());
}

#[tokio::test]
async fn rule_7_4_an_active_licence_from_another_catalog_uses_no_quota() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a = catalog(&app, &w, limited(1)).await;
    let b = catalog(&app, &w, on_b(1)).await;
    let ada = learner_of(&app, &w, &[a.id, b.id], "ada@example.org").await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, a.id, w.paid).await else {
        panic!("a seat of A");
    };
    // The platform lost the paid mode; the licence still stands.
    set_enrollment(&app, ada.id, w.paid, "audit").await;
    let answer = access(&app, &ada, b.id, w.paid).await;
    assert_eq!(
        answer,
        CourseAccess::ExistingLicence {
            licence_id,
            owner_catalog_id: a.id
        }
    );
    assert_eq!(
        enrollment(&app, ada.id, w.paid).await.unwrap().mode,
        "verified"
    );
    let l = licence(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(l.catalog_id, a.id, "ownership stays with A");
    assert_eq!(seats_used(&app, a.id).await, 1);
    assert_eq!(seats_used(&app, b.id).await, 0);

    // B's one seat is still free for someone else.
    let bo = learner_of(&app, &w, &[b.id], "bo@example.org").await;
    assert!(matches!(
        access(&app, &bo, b.id, w.paid).await,
        CourseAccess::Granted { .. }
    ));
}

#[tokio::test]
async fn rule_7_4_a_licence_owned_elsewhere_counts_even_when_this_catalog_is_full() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a = catalog(&app, &w, limited(1)).await;
    let b = catalog(&app, &w, on_b(1)).await;
    let ada = learner_of(&app, &w, &[a.id, b.id], "ada@example.org").await;
    let bo = learner_of(&app, &w, &[b.id], "bo@example.org").await;
    assert!(matches!(
        access(&app, &bo, b.id, w.paid).await,
        CourseAccess::Granted { .. }
    ));
    access(&app, &ada, a.id, w.paid).await;
    set_enrollment(&app, ada.id, w.paid, "audit").await;
    assert!(matches!(
        access(&app, &ada, b.id, w.paid).await,
        CourseAccess::ExistingLicence { owner_catalog_id, .. } if owner_catalog_id == a.id
    ));
    assert_eq!(seats_used(&app, b.id).await, 1);
}

#[tokio::test]
async fn rule_7_5_a_seat_left_grants_a_licence_and_verified_access() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(2)).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    // An audit enrolment is upgraded.
    set_enrollment(&app, ada.id, w.paid, "audit").await;
    let answer = access(&app, &ada, c.id, w.paid).await;
    let CourseAccess::Granted { licence_id } = answer else {
        panic!("expected a grant, got {answer:?}");
    };
    let l = licence(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(l.id, licence_id);
    assert!(l.is_active);
    assert_eq!(l.catalog_id, c.id);
    let e = enrollment(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(e.mode, "verified");
    assert!(e.is_active);
    // With no enrolment at all, a verified one is created.
    let CourseAccess::Granted { .. } = access(&app, &ada, c.id, w.paid2).await else {
        panic!("second seat");
    };
    assert_eq!(
        enrollment(&app, ada.id, w.paid2).await.unwrap().mode,
        "verified"
    );
    assert_eq!(seats_used(&app, c.id).await, 2);
}

#[tokio::test]
async fn rule_7_5_zero_course_limit_is_unlimited() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(0)).await;
    for n in 0..5 {
        let u = learner_of(&app, &w, &[c.id], &format!("l{n}@example.org")).await;
        assert!(matches!(
            access(&app, &u, c.id, w.paid).await,
            CourseAccess::Granted { .. }
        ));
    }
    assert_eq!(seats_used(&app, c.id).await, 5);
}

#[tokio::test]
async fn rule_7_5_reactivation_moves_ownership_to_the_requesting_catalog() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a = catalog(&app, &w, limited(1)).await;
    let b = catalog(&app, &w, on_b(1)).await;
    let ada = learner_of(&app, &w, &[a.id, b.id], "ada@example.org").await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, a.id, w.paid).await else {
        panic!("a seat of A");
    };
    deactivate_licence(&app, w.staff(), licence_id)
        .await
        .unwrap();
    assert_eq!(seats_used(&app, a.id).await, 0);

    let trail = Trail::mark(&app).await;
    let answer = access(&app, &ada, b.id, w.paid).await;
    assert_eq!(
        answer,
        CourseAccess::Granted { licence_id },
        "the same licence"
    );
    let l = licence(&app, ada.id, w.paid).await.unwrap();
    assert!(l.is_active);
    assert_eq!(l.catalog_id, b.id, "now owned by B");
    assert_eq!(licence_rows(&app, ada.id, w.paid).await, 1);
    assert_eq!(seats_used(&app, a.id).await, 0);
    assert_eq!(seats_used(&app, b.id).await, 1);
    assert_eq!(
        enrollment(&app, ada.id, w.paid).await.unwrap().mode,
        "verified"
    );
    let entry = trail.one_audit(&app, "licence.grant").await;
    assert_eq!(entry.catalog_id, Some(b.id));
    assert_eq!(entry.before.unwrap()["catalog_id"], a.id);
    assert_eq!(entry.after.unwrap()["catalog_id"], b.id);
}

#[tokio::test]
async fn rule_7_5_a_deactivated_licence_frees_its_seat() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(1)).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let bo = learner_of(&app, &w, &[c.id], "bo@example.org").await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, c.id, w.paid).await else {
        panic!("the one seat");
    };
    assert_eq!(
        access(&app, &bo, c.id, w.paid).await,
        CourseAccess::Refused(RefusalReason::CourseLimitReached)
    );
    deactivate_licence(&app, w.staff(), licence_id)
        .await
        .unwrap();
    assert!(matches!(
        access(&app, &bo, c.id, w.paid).await,
        CourseAccess::Granted { .. }
    ));
}

#[tokio::test]
async fn rule_7_6_no_seat_keeps_an_open_enrolment_with_a_warning() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(1)).await;
    let bo = learner_of(&app, &w, &[c.id], "bo@example.org").await;
    access(&app, &bo, c.id, w.paid).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    for mode in ["audit", "honor"] {
        set_enrollment(&app, ada.id, w.paid, mode).await;
        let trail = Trail::mark(&app).await;
        let answer = access(&app, &ada, c.id, w.paid).await;
        assert_eq!(answer, CourseAccess::KeptAtMode { mode: mode.into() });
        assert_eq!(answer.warning(), Some("course_limit_reached"));
        assert!(answer.into_result().is_ok(), "access is kept");
        assert_eq!(enrollment(&app, ada.id, w.paid).await.unwrap().mode, mode);
        assert!(licence(&app, ada.id, w.paid).await.is_none());
        assert_eq!(blocked_reason(&app, &trail).await, "course_limit_reached");
    }
}

#[tokio::test]
async fn rule_7_7_no_seat_and_no_enrolment_is_refused() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(1)).await;
    let bo = learner_of(&app, &w, &[c.id], "bo@example.org").await;
    access(&app, &bo, c.id, w.paid).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let trail = Trail::mark(&app).await;
    let answer = access(&app, &ada, c.id, w.paid).await;
    assert_eq!(
        answer,
        CourseAccess::Refused(RefusalReason::CourseLimitReached)
    );
    let err = expect_err(answer.into_result());
    assert_eq!(err.code(), "course_limit_reached");
    assert_eq!(err.status(), 409);
    assert_eq!(blocked_reason(&app, &trail).await, "course_limit_reached");
    assert!(enrollment(&app, ada.id, w.paid).await.is_none());
    assert!(licence(&app, ada.id, w.paid).await.is_none());
    assert_eq!(seats_used(&app, c.id).await, 1);
}

#[tokio::test]
async fn rule_7_deactivating_a_licence_downgrades_the_enrolment_to_audit() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, c.id, w.paid).await else {
        panic!("grant");
    };
    let trail = Trail::mark(&app).await;
    let l = deactivate_licence(&app, w.staff(), licence_id)
        .await
        .unwrap();
    assert!(!l.is_active);
    let e = enrollment(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(e.mode, "audit");
    assert!(e.is_active, "access is kept at audit");
    let entry = trail.one_audit(&app, "licence.deactivate").await;
    assert_eq!(entry.reason.as_deref(), Some("test"));
    let events = trail.events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "enrollment.deactivated");
    assert_eq!(events[0].course_id, Some(w.paid));
    assert_eq!(events[0].user_id, Some(ada.id));

    assert_eq!(
        code(deactivate_licence(&app, w.staff(), licence_id).await),
        "invalid_transition"
    );
}

#[tokio::test]
async fn rule_7_another_partners_manager_cannot_deactivate_a_licence() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = learner_of(&app, &w, &[c.id], "ada@example.org").await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, c.id, w.paid).await else {
        panic!("grant");
    };
    let (staff, partner_b, ctx) = (w.staff(), w.partner_b, app.ctx());
    let manager = app
        .db
        .transaction(move |conn| {
            services::partners::assign_manager(conn, &ctx, &staff, partner_b, "mb@example.org")
        })
        .await
        .unwrap()
        .user()
        .clone();
    let err = expect_err(
        deactivate_licence(&app, Actor::for_user(&manager, Some(partner_b)), licence_id).await,
    );
    assert_eq!(err.code(), "not_found");
    assert!(licence(&app, ada.id, w.paid).await.unwrap().is_active);
}

#[tokio::test]
async fn rule_6_removal_downgrades_only_the_licences_the_catalog_owns() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a = catalog(&app, &w, Spec::default()).await;
    let b = catalog(&app, &w, on_b(0)).await;
    let ada = user(&app, "ada@example.org", true).await;
    let in_a = join(&app, &w, a.id, &ada).await;
    join(&app, &w, b.id, &ada).await;
    let CourseAccess::Granted { licence_id: owned } = access(&app, &ada, a.id, w.paid).await else {
        panic!("A's licence");
    };
    let CourseAccess::Granted {
        licence_id: elsewhere,
    } = access(&app, &ada, b.id, w.paid2).await
    else {
        panic!("B's licence");
    };
    access(&app, &ada, a.id, w.open).await;

    let trail = Trail::mark(&app).await;
    remove(&app, w.staff(), in_a.id).await.unwrap();

    let l = licence(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(l.id, owned);
    assert!(!l.is_active);
    assert_eq!(
        enrollment(&app, ada.id, w.paid).await.unwrap().mode,
        "audit"
    );

    let l = licence(&app, ada.id, w.paid2).await.unwrap();
    assert_eq!(l.id, elsewhere);
    assert!(l.is_active, "B's licence is untouched");
    assert_eq!(
        enrollment(&app, ada.id, w.paid2).await.unwrap().mode,
        "verified"
    );
    let open = enrollment(&app, ada.id, w.open).await.unwrap();
    assert_eq!(open.mode, "audit");
    assert!(open.is_active);
    assert!(learner(&app, b.id, ada.id).await.unwrap().is_active);

    let entry = trail.one_audit(&app, "learner.remove").await;
    assert_eq!(
        entry.after.unwrap()["deactivated_licences"],
        serde_json::json!([owned])
    );
    assert_eq!(
        trail.event_names(&app).await,
        vec!["enrollment.deactivated", "invitation.removed"]
    );
}

#[tokio::test]
async fn rule_7_a_learner_removed_and_back_is_granted_the_same_licence() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, limited(1)).await;
    let ada = user(&app, "ada@example.org", true).await;
    let first = join(&app, &w, c.id, &ada).await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, c.id, w.paid).await else {
        panic!("grant");
    };
    remove(&app, w.staff(), first.id).await.unwrap();
    assert_eq!(seats_used(&app, c.id).await, 0);
    join(&app, &w, c.id, &ada).await;
    assert_eq!(
        access(&app, &ada, c.id, w.paid).await,
        CourseAccess::Granted { licence_id }
    );
    assert_eq!(licence_rows(&app, ada.id, w.paid).await, 1);
}

#[tokio::test]
async fn rule_6_removing_a_stale_invitation_keeps_a_learner_active_through_a_newer_one() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@old.example", true).await;
    let old = join(&app, &w, c.id, &ada).await;
    let id = ada.id;
    let ada = app
        .db
        .run(move |conn| {
            Ok(partner_catalog::models::users::change_email(
                conn,
                id,
                "ada@new.example",
            )?)
        })
        .await
        .unwrap();
    let current = join(&app, &w, c.id, &ada).await;
    let CourseAccess::Granted { licence_id } = access(&app, &ada, c.id, w.paid).await else {
        panic!("grant");
    };
    // The old address's invitation is withdrawn; the learner stays, through the new one.
    remove(&app, w.staff(), old.id).await.unwrap();
    let row = learner(&app, c.id, ada.id).await.unwrap();
    assert!(row.is_active);
    assert_eq!(row.invitation_id, current.id);
    let l = licence(&app, ada.id, w.paid).await.unwrap();
    assert_eq!(l.id, licence_id);
    assert!(
        l.is_active,
        "an active learner keeps the catalog's licences"
    );
    assert_eq!(
        enrollment(&app, ada.id, w.paid).await.unwrap().mode,
        "verified"
    );
}
