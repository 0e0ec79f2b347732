//! Rules 11 and 12: every change leaves exactly one audit entry, written with it,
//! and the matching tracking event.

use partner_catalog::events::xapi;
use partner_catalog::models::events::TrackingEvent;
use partner_catalog::services;
use partner_catalog::services::enrollments::CourseAccess;

use super::*;
use crate::helpers::spawn_app;

/// The one new event, which must have this name.
async fn one_event(app: &TestApp, trail: &Trail, name: &str) -> TrackingEvent {
    let mut events = trail.events(app).await;
    assert_eq!(
        events.len(),
        1,
        "expected one {name} event, got {:?}",
        events.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    let event = events.remove(0);
    assert_eq!(event.name, name);
    event
}

#[tokio::test]
async fn rule_11_catalog_changes_leave_one_audit_entry_each() {
    let app = spawn_app().await;
    let w = world(&app).await;

    let trail = Trail::mark(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    // One for the catalog, one per course added.
    let actions: Vec<String> = trail
        .audit(&app)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            "catalog.create",
            "catalog.course_add",
            "catalog.course_add",
            "catalog.course_add"
        ]
    );

    let trail = Trail::mark(&app).await;
    let staff = w.staff();
    app.db
        .transaction(move |conn| {
            services::catalogs::update(
                conn,
                &staff,
                c.id,
                &input(&Spec {
                    name: "Renamed".into(),
                    user_limit: 5,
                    ..Default::default()
                }),
            )
        })
        .await
        .unwrap();
    let entry = trail.one_audit(&app, "catalog.update").await;
    assert_eq!(entry.actor_user_id, Some(w.staff.id));
    assert_eq!(entry.actor_role, "staff");
    assert_eq!(entry.object_type, "catalog");
    assert_eq!(entry.object_id, c.id.to_string());
    assert_eq!(entry.partner_id, Some(w.partner_a));
    assert_eq!(entry.catalog_id, Some(c.id));
    assert_eq!(entry.before.unwrap()["name"], "Sales Academy");
    let after = entry.after.unwrap();
    assert_eq!(after["name"], "Renamed");
    assert_eq!(after["user_limit"], 5);
    assert!(trail.events(&app).await.is_empty());

    let trail = Trail::mark(&app).await;
    let staff = w.staff();
    app.db
        .transaction(move |conn| {
            services::catalogs::replace_patterns(conn, &staff, c.id, r".*@acme\.example")
        })
        .await
        .unwrap();
    let entry = trail.one_audit(&app, "catalog.patterns_replace").await;
    assert_eq!(
        entry.after.unwrap()["email_patterns"],
        serde_json::json!([r".*@acme\.example"])
    );

    let trail = Trail::mark(&app).await;
    let (staff, open) = (w.staff(), w.open);
    app.db
        .transaction(move |conn| services::catalogs::move_course(conn, &staff, c.id, open, 0))
        .await
        .unwrap();
    trail.one_audit(&app, "catalog.course_move").await;

    let trail = Trail::mark(&app).await;
    let (staff, open) = (w.staff(), w.open);
    app.db
        .transaction(move |conn| services::catalogs::remove_course(conn, &staff, c.id, open, None))
        .await
        .unwrap();
    trail.one_audit(&app, "catalog.course_remove").await;
}

#[tokio::test]
async fn rule_12_invitation_sent_records_catalog_partner_user_and_channel() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let manager_user = {
        let (staff, ctx) = (w.staff(), app.ctx());
        let partner = w.partner_a;
        app.db
            .transaction(move |conn| {
                services::partners::assign_manager(
                    conn,
                    &ctx,
                    &staff,
                    partner,
                    "manager@example.org",
                )
            })
            .await
            .unwrap()
            .user()
            .clone()
    };
    let manager = Actor::for_user(&manager_user, Some(w.partner_a));

    let trail = Trail::mark(&app).await;
    let sent = invite_with(&app, ctx(&app), manager, c.id, &ada.email)
        .await
        .unwrap();
    let entry = trail.one_audit(&app, "invitation.create").await;
    assert_eq!(entry.actor_role, "partner_manager");
    assert_eq!(entry.actor_user_id, Some(manager_user.id));
    assert_eq!(entry.object_type, "invitation");
    assert_eq!(entry.object_id, sent.invitation.id.to_string());
    let event = one_event(&app, &trail, "invitation.sent").await;
    assert_eq!(event.catalog_id, Some(c.id));
    assert_eq!(event.partner_id, Some(w.partner_a));
    assert_eq!(event.user_id, Some(ada.id));
    assert_eq!(event.invitation_id, Some(sent.invitation.id));
    assert_eq!(event.channel.as_deref(), Some("manual"));

    let trail = Trail::mark(&app).await;
    let (ctx, staff, id) = (ctx(&app), w.staff(), sent.invitation.id);
    app.db
        .transaction(move |conn| services::invitations::resend(conn, &ctx, &staff, id))
        .await
        .unwrap();
    trail.one_audit(&app, "invitation.resend").await;
    let event = one_event(&app, &trail, "invitation.sent").await;
    assert_eq!(event.data["resend"], true);
}

#[tokio::test]
async fn rule_12_accept_and_decline_are_recorded() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let trail = Trail::mark(&app).await;
    accept(&app, &ada, sent.token.as_str()).await.unwrap();
    let entry = trail.one_audit(&app, "invitation.accept").await;
    assert_eq!(entry.actor_role, "learner");
    assert_eq!(entry.actor_user_id, Some(ada.id));
    assert_eq!(entry.before.unwrap()["status"], "sent");
    assert_eq!(entry.after.unwrap()["status"], "accepted");
    let event = one_event(&app, &trail, "invitation.accepted").await;
    assert_eq!(event.user_id, Some(ada.id));
    assert_eq!(event.channel.as_deref(), Some("manual"));
    assert_eq!(event.catalog_id, Some(c.id));

    let declined = invite(&app, &w, c.id, "bo@example.org").await.unwrap();
    let trail = Trail::mark(&app).await;
    decline(&app, declined.token.as_str()).await.unwrap();
    let entry = trail.one_audit(&app, "invitation.decline").await;
    assert_eq!(entry.actor_user_id, None, "no one signed in");
    assert_eq!(entry.actor_role, "learner");
    let event = one_event(&app, &trail, "invitation.declined").await;
    assert_eq!(event.invitation_id, Some(declined.invitation.id));
}

#[tokio::test]
async fn rule_12_revoking_and_removing_are_recorded_with_their_reason() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let sent = invite(&app, &w, c.id, "bo@example.org").await.unwrap();
    let trail = Trail::mark(&app).await;
    let staff = w.staff();
    let id = sent.invitation.id;
    app.db
        .transaction(move |conn| {
            services::invitations::remove(conn, &staff, id, Some("sent by mistake"))
        })
        .await
        .unwrap();
    let entry = trail.one_audit(&app, "invitation.revoke").await;
    assert_eq!(entry.reason.as_deref(), Some("sent by mistake"));
    let event = one_event(&app, &trail, "invitation.removed").await;
    assert_eq!(event.reason.as_deref(), Some("revoked"));

    let ada = user(&app, "ada@example.org", true).await;
    let joined = join(&app, &w, c.id, &ada).await;
    let trail = Trail::mark(&app).await;
    let (staff, user_id) = (w.staff(), ada.id);
    app.db
        .transaction(move |conn| {
            services::invitations::remove_learner(conn, &staff, c.id, user_id, None)
        })
        .await
        .unwrap();
    let entry = trail.one_audit(&app, "learner.remove").await;
    assert_eq!(entry.object_id, joined.id.to_string());
    let event = one_event(&app, &trail, "invitation.removed").await;
    assert_eq!(event.reason.as_deref(), Some("learner_removed"));
    assert_eq!(event.user_id, Some(ada.id));
}

#[tokio::test]
async fn rule_12_self_enrolment_is_recorded_with_its_channel() {
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
    let trail = Trail::mark(&app).await;
    self_enroll(&app, &ada, c.id).await.unwrap();
    let entry = trail.one_audit(&app, "catalog.self_enroll").await;
    assert_eq!(entry.actor_user_id, Some(ada.id));
    let event = one_event(&app, &trail, "invitation.accepted").await;
    assert_eq!(event.channel.as_deref(), Some("self_enrollment"));
    assert_eq!(event.user_id, Some(ada.id));

    // Joining again changes nothing and records nothing.
    let trail = Trail::mark(&app).await;
    self_enroll(&app, &ada, c.id).await.unwrap();
    assert!(trail.audit(&app).await.is_empty());
    assert!(trail.events(&app).await.is_empty());
}

#[tokio::test]
async fn rule_12_course_access_records_activated_with_course_and_user() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let other = catalog(
        &app,
        &w,
        Spec {
            partner_b: true,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    join(&app, &w, c.id, &ada).await;
    join(&app, &w, other.id, &ada).await;

    let trail = Trail::mark(&app).await;
    let granted = access(&app, &ada, c.id, w.paid).await;
    assert!(matches!(granted, CourseAccess::Granted { .. }));
    let entry = trail.one_audit(&app, "licence.grant").await;
    assert_eq!(entry.object_type, "licence");
    let event = one_event(&app, &trail, "enrollment.activated").await;
    assert_eq!(event.course_id, Some(w.paid));
    assert_eq!(event.user_id, Some(ada.id));
    assert_eq!(event.catalog_id, Some(c.id));
    assert_eq!(event.partner_id, Some(w.partner_a));
    assert_eq!(event.data["mode"], "verified");

    let trail = Trail::mark(&app).await;
    access(&app, &ada, c.id, w.open).await;
    trail.one_audit(&app, "enrollment.create").await;
    let event = one_event(&app, &trail, "enrollment.activated").await;
    assert_eq!(event.data["mode"], "audit");

    // Through the other catalog, on the licence that already exists.
    set_enrollment(&app, ada.id, w.paid, "audit").await;
    let trail = Trail::mark(&app).await;
    access(&app, &ada, other.id, w.paid).await;
    trail.one_audit(&app, "enrollment.upgrade").await;
    let event = one_event(&app, &trail, "enrollment.activated").await;
    assert_eq!(event.catalog_id, Some(other.id));
    assert_eq!(event.partner_id, Some(w.partner_b));

    // Already paid: nothing changes, nothing is recorded.
    let trail = Trail::mark(&app).await;
    access(&app, &ada, c.id, w.paid).await;
    assert!(trail.audit(&app).await.is_empty());
    assert!(trail.events(&app).await.is_empty());
}

#[tokio::test]
async fn rule_11_a_refused_change_leaves_no_trace() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            user_limit: 1,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    let bo = user(&app, "bo@example.org", true).await;
    join(&app, &w, c.id, &ada).await;
    let sent = invite(&app, &w, c.id, &bo.email).await.unwrap();
    let emails = app.count("outbound_emails").await;

    let trail = Trail::mark(&app).await;
    assert_eq!(
        code(invite(&app, &w, c.id, &bo.email).await),
        "invitation_exists"
    );
    assert_eq!(
        code(accept(&app, &bo, sent.token.as_str()).await),
        "user_limit_reached"
    );
    assert_eq!(code(decline(&app, "no-such-token").await), "not_found");
    assert!(trail.audit(&app).await.is_empty());
    assert!(trail.events(&app).await.is_empty());
    assert_eq!(app.count("outbound_emails").await, emails);
    let reloaded = learner(&app, c.id, bo.id).await;
    assert!(reloaded.is_none());
}

#[tokio::test]
async fn rule_12_events_export_as_xapi_statements_with_the_event_id() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let trail = Trail::mark(&app).await;
    let joined = join(&app, &w, c.id, &ada).await;
    access(&app, &ada, c.id, w.paid).await;
    remove(&app, w.staff(), joined.id).await.unwrap();
    let events = trail.events(&app).await;
    let ids: std::collections::HashSet<uuid::Uuid> = events.iter().map(|e| e.id).collect();
    let rows = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::xapi::page(
                conn,
                None,
                chrono::DateTime::UNIX_EPOCH,
                None,
                10_000,
            )?)
        })
        .await
        .unwrap();
    let rows: Vec<_> = rows.iter().filter(|r| ids.contains(&r.id)).collect();
    assert_eq!(rows.len(), events.len(), "every event has a statement");
    let options = xapi::StatementOptions {
        base_url: "https://catalog.example".into(),
        include_email: false,
    };
    let mut verbs: Vec<String> = Vec::new();
    for row in rows {
        let statement = xapi::statement(row, &options).expect("a statement");
        assert_eq!(statement["id"], row.id.to_string());
        verbs.push(
            statement["verb"]["display"]["en-US"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    verbs.sort();
    assert_eq!(
        verbs,
        vec![
            "accepted",
            "invited",
            "registered",
            "removed",
            "unregistered"
        ]
    );
}
