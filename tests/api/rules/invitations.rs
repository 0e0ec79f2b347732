//! Rules 5 and 6: invitation status, one active invitation per catalog and email,
//! accepting, declining, removing and resending.

use chrono::{Duration, Utc};
use partner_catalog::domain::InvitationStatus;
use partner_catalog::domain::invitation_status::Channel;
use partner_catalog::models::invitations::{self as invitation_rows, NewInvitation};
use partner_catalog::services;

use super::*;
use crate::helpers::spawn_app;

async fn reload(app: &TestApp, invitation_id: i64) -> Invitation {
    app.db
        .run(move |conn| Ok(invitation_rows::find(conn, invitation_id)?))
        .await
        .unwrap()
}

async fn resend(app: &TestApp, ctx: ServiceContext, by: Actor, id: i64) -> Result<SentInvitation> {
    app.db
        .transaction(move |conn| services::invitations::resend(conn, &ctx, &by, id))
        .await
}

async fn manager_of(app: &TestApp, w: &World, partner_id: i64, email: &str) -> Actor {
    let (staff, email, ctx) = (w.staff(), email.to_string(), app.ctx());
    let assignment = app
        .db
        .transaction(move |conn| {
            services::partners::assign_manager(conn, &ctx, &staff, partner_id, &email)
        })
        .await
        .unwrap();
    Actor::for_user(assignment.user(), Some(partner_id))
}

fn expiring_now(app: &TestApp) -> ServiceContext {
    let mut ctx = ctx(app);
    ctx.invitation_ttl = Duration::zero();
    ctx
}

#[tokio::test]
async fn rule_5_status_is_derived_from_the_timestamps() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    assert_eq!(sent.invitation.status(), InvitationStatus::Sent);
    let accepted = accept(&app, &ada, sent.token.as_str()).await.unwrap();
    assert_eq!(accepted.status(), InvitationStatus::Accepted);
    let removed = remove(&app, w.staff(), accepted.id).await.unwrap();
    assert_eq!(removed.status(), InvitationStatus::Removed);

    let bo = invite(&app, &w, c.id, "bo@example.org").await.unwrap();
    let declined = decline(&app, bo.token.as_str()).await.unwrap();
    assert_eq!(declined.status(), InvitationStatus::Declined);

    let cy = invite_with(&app, expiring_now(&app), w.staff(), c.id, "cy@example.org")
        .await
        .unwrap();
    assert_eq!(cy.invitation.status(), InvitationStatus::Expired);
    let later = Utc::now() + Duration::days(1);
    let fresh = invite(&app, &w, c.id, "dee@example.org").await.unwrap();
    assert_eq!(fresh.invitation.status_at(later), InvitationStatus::Sent);
    assert_eq!(
        fresh.invitation.status_at(fresh.invitation.expires_at),
        InvitationStatus::Expired
    );
}

#[tokio::test]
async fn rule_5_duplicate_active_invitation_is_refused() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let emails = app.count("outbound_emails").await;
    let trail = Trail::mark(&app).await;

    // Case and spaces do not make another address.
    let err = expect_err(invite(&app, &w, c.id, "  ADA@Example.org ").await);
    assert_eq!(err.code(), "invitation_exists");
    assert_eq!(err.status(), 409);

    // An accepted invitation is active too.
    accept(&app, &ada, sent.token.as_str()).await.unwrap();
    let trail_after_accept = Trail::mark(&app).await;
    assert_eq!(
        code(invite(&app, &w, c.id, &ada.email).await),
        "invitation_exists"
    );
    assert_eq!(app.count("invitations").await, 1);
    assert_eq!(app.count("outbound_emails").await, emails, "nothing queued");
    assert!(trail_after_accept.audit(&app).await.is_empty());
    assert_eq!(trail.audit(&app).await.len(), 1, "only the accept");

    // The same address may be invited into another catalog.
    let other = catalog(&app, &w, Spec::default()).await;
    invite(&app, &w, other.id, &ada.email).await.unwrap();
}

#[tokio::test]
async fn rule_5_the_database_holds_one_active_invitation_per_catalog_and_email() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    let err = app
        .db
        .run(move |conn| {
            let now = Utc::now();
            let hash = partner_catalog::domain::SecretToken::generate().hash();
            Ok(invitation_rows::insert(
                conn,
                &NewInvitation {
                    catalog_id: c.id,
                    email: "ada@example.org",
                    user_id: None,
                    token_hash: &hash,
                    channel: "manual",
                    invited_by: None,
                    invited_at: now,
                    expires_at: now + Duration::days(1),
                    accepted_at: None,
                    send_count: 1,
                    last_sent_at: Some(now),
                },
            )?)
        })
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("invitations_one_active_idx"),
        "{err:?}"
    );
}

#[tokio::test]
async fn rule_5_reinvitation_allowed_after_decline() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let first = invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    decline(&app, first.token.as_str()).await.unwrap();
    let second = invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    assert_ne!(second.invitation.id, first.invitation.id);
    assert_eq!(second.invitation.status(), InvitationStatus::Sent);
    assert_eq!(
        reload(&app, first.invitation.id).await.status(),
        InvitationStatus::Declined,
        "history is kept"
    );
}

#[tokio::test]
async fn rule_5_reinvitation_allowed_after_removal() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    // A revoked invitation.
    let first = invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    remove(&app, w.staff(), first.invitation.id).await.unwrap();
    let second = invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    assert_ne!(second.invitation.id, first.invitation.id);

    // A removed learner.
    let bo = user(&app, "bo@example.org", true).await;
    let joined = join(&app, &w, c.id, &bo).await;
    remove(&app, w.staff(), joined.id).await.unwrap();
    let again = invite(&app, &w, c.id, &bo.email).await.unwrap();
    assert_eq!(again.invitation.status(), InvitationStatus::Sent);
}

#[tokio::test]
async fn rule_5_an_expired_invitation_is_sent_again() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let old = invite_with(&app, expiring_now(&app), w.staff(), c.id, "ada@example.org")
        .await
        .unwrap();
    assert_eq!(old.invitation.status(), InvitationStatus::Expired);
    let renewed = invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    assert_eq!(
        renewed.invitation.id, old.invitation.id,
        "the same invitation"
    );
    assert_eq!(renewed.invitation.status(), InvitationStatus::Sent);
    assert_eq!(renewed.invitation.send_count, 2);
    assert_eq!(app.count("invitations").await, 1);
    assert_eq!(app.count("outbound_emails").await, 2);
}

#[tokio::test]
async fn rule_5_creating_links_an_existing_account_and_queues_the_email() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let trail = Trail::mark(&app).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    assert_eq!(sent.invitation.user_id, Some(ada.id));
    assert_eq!(sent.invitation.channel, "manual");
    assert!(sent.invitation.expires_at > Utc::now() + Duration::days(29));
    assert_eq!(app.count("outbound_emails").await, 1);
    let (email, secret) = crate::journey::last_email_to(&app, &ada.email).await;
    assert_eq!(secret, sent.token.as_str());
    assert!(email.subject.contains("Sales Academy"), "{}", email.subject);
    let events = trail.events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "invitation.sent");
    assert_eq!(events[0].channel.as_deref(), Some("manual"));
    assert_eq!(events[0].user_id, Some(ada.id));

    // Someone without an account is linked once the account appears.
    let later = invite(&app, &w, c.id, "newcomer@example.org")
        .await
        .unwrap();
    assert_eq!(later.invitation.user_id, None);
    let newcomer = user(&app, "newcomer@example.org", true).await;
    assert_eq!(
        reload(&app, later.invitation.id).await.user_id,
        Some(newcomer.id)
    );
}

#[tokio::test]
async fn rule_5_the_token_is_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let sent = invite(&app, &w, c.id, "ada@example.org").await.unwrap();
    let token = sent.token.as_str().to_string();
    assert!(token.len() >= 22, "at least 128 random bits: {token}");
    let id = sent.invitation.id;
    let stored: Vec<u8> = app
        .db
        .run(move |conn| {
            use diesel::prelude::*;
            use partner_catalog::models::schema::invitations;
            Ok(invitations::table
                .find(id)
                .select(invitations::token_hash)
                .first(conn)?)
        })
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes());
    assert_eq!(stored, sent.token.hash());
}

#[tokio::test]
async fn rule_5_invitations_to_emails_matching_no_pattern_are_allowed() {
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
    let eve = user(&app, "eve@elsewhere.example", true).await;
    join(&app, &w, c.id, &eve).await;
    assert!(learner(&app, c.id, eve.id).await.unwrap().is_active);
}

#[tokio::test]
async fn rule_5_inviting_into_an_ended_catalog_is_refused_before_start_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let now = Utc::now();
    set_window(&app, c.id, now + Duration::days(1), now + Duration::days(2)).await;
    invite(&app, &w, c.id, "early@example.org").await.unwrap();

    set_window(&app, c.id, now - Duration::days(2), now - Duration::days(1)).await;
    let err = expect_err(invite(&app, &w, c.id, "late@example.org").await);
    assert_eq!(err.code(), "catalog_unavailable");
    assert!(err.to_string().contains("ended"), "{err}");
    assert_eq!(app.count("invitations").await, 1);
}

#[tokio::test]
async fn rule_5_a_bad_email_is_rejected_naming_the_field() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let err = expect_err(invite(&app, &w, c.id, "not an address").await);
    assert_eq!(err.code(), "invalid_input");
    assert!(err.field_errors().unwrap().get("email").is_some());
}

#[tokio::test]
async fn rule_6_accept_needs_the_invited_person_signed_in() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let eve = user(&app, "eve@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let err = expect_err(accept(&app, &eve, sent.token.as_str()).await);
    assert_eq!(err.code(), "forbidden");
    assert!(err.to_string().contains("sent to ada@example.org"), "{err}");

    let token = sent.token.as_str().to_string();
    let err = app
        .db
        .transaction(move |conn| {
            services::invitations::accept(conn, &Actor::invitee("ada@example.org", None), &token)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert_eq!(
        reload(&app, sent.invitation.id).await.status(),
        InvitationStatus::Sent
    );
    assert_eq!(code(accept(&app, &ada, "not-a-token").await), "not_found");
}

#[tokio::test]
async fn rule_6_accept_after_decline_is_refused() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    decline(&app, sent.token.as_str()).await.unwrap();
    let err = expect_err(accept(&app, &ada, sent.token.as_str()).await);
    assert_eq!(err.code(), "invalid_transition");
    assert_eq!(err.status(), 409);
    assert!(learner(&app, c.id, ada.id).await.is_none());
}

#[tokio::test]
async fn rule_6_accept_of_an_expired_revoked_or_accepted_invitation_is_refused() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let expired = invite_with(&app, expiring_now(&app), w.staff(), c.id, &ada.email)
        .await
        .unwrap();
    assert_eq!(
        code(accept(&app, &ada, expired.token.as_str()).await),
        "invalid_transition"
    );

    let bo = user(&app, "bo@example.org", true).await;
    let revoked = invite(&app, &w, c.id, &bo.email).await.unwrap();
    remove(&app, w.staff(), revoked.invitation.id)
        .await
        .unwrap();
    assert_eq!(
        code(accept(&app, &bo, revoked.token.as_str()).await),
        "invalid_transition"
    );

    let cy = user(&app, "cy@example.org", true).await;
    let sent = invite(&app, &w, c.id, &cy.email).await.unwrap();
    accept(&app, &cy, sent.token.as_str()).await.unwrap();
    let err = expect_err(accept(&app, &cy, sent.token.as_str()).await);
    assert_eq!(err.code(), "invalid_transition");
    assert!(err.to_string().contains("already been accepted"), "{err}");
}

#[tokio::test]
async fn rule_6_accept_refused_when_the_catalog_is_full() {
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
    assert_eq!(
        code(accept(&app, &bo, sent.token.as_str()).await),
        "user_limit_reached"
    );
    assert_eq!(
        reload(&app, sent.invitation.id).await.status(),
        InvitationStatus::Sent,
        "the invitation can still be used later"
    );
    assert!(learner(&app, c.id, bo.id).await.is_none());
}

#[tokio::test]
async fn rule_6_accept_allowed_in_a_full_catalog_for_a_learner_already_active() {
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
    let ada = user(&app, "ada@old.example", true).await;
    let first = join(&app, &w, c.id, &ada).await;
    // Ada's address changes; an invitation to the new one is a second active one.
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
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    accept(&app, &ada, sent.token.as_str()).await.unwrap();
    let row = learner(&app, c.id, ada.id).await.unwrap();
    assert!(row.is_active);
    assert_eq!(row.invitation_id, sent.invitation.id);
    assert_ne!(row.invitation_id, first.id);
    assert_eq!(active_learners(&app, c.id).await, 1);
}

#[tokio::test]
async fn rule_6_re_accept_reuses_the_one_learner_row() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let first = join(&app, &w, c.id, &ada).await;
    let row = learner(&app, c.id, ada.id).await.unwrap();
    remove(&app, w.staff(), first.id).await.unwrap();
    let removed = learner(&app, c.id, ada.id).await.unwrap();
    assert!(!removed.is_active);
    assert!(removed.removed_at.is_some());

    let second = join(&app, &w, c.id, &ada).await;
    let again = learner(&app, c.id, ada.id).await.unwrap();
    assert_eq!(again.id, row.id, "the same row");
    assert!(again.is_active);
    assert!(again.removed_at.is_none());
    assert_eq!(again.invitation_id, second.id);
    assert_eq!(app.count("catalog_learners").await, 1);
}

#[tokio::test]
async fn rule_6_declining_works_from_the_link_without_signing_in() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    // No account at all.
    let sent = invite(&app, &w, c.id, "stranger@example.org")
        .await
        .unwrap();
    let declined = decline(&app, sent.token.as_str()).await.unwrap();
    assert!(declined.declined_at.is_some());
    assert_eq!(
        code(decline(&app, sent.token.as_str()).await),
        "invalid_transition"
    );
    assert_eq!(code(decline(&app, "not-a-token").await), "not_found");

    // An accepted invitation cannot be declined.
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    accept(&app, &ada, sent.token.as_str()).await.unwrap();
    assert_eq!(
        code(decline(&app, sent.token.as_str()).await),
        "invalid_transition"
    );
}

#[tokio::test]
async fn rule_6_removal_by_staff_or_a_manager_of_the_partner_only() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let own = manager_of(&app, &w, w.partner_a, "manager-a@example.org").await;
    let other = manager_of(&app, &w, w.partner_b, "manager-b@example.org").await;
    let ada = user(&app, "ada@example.org", true).await;
    let joined = join(&app, &w, c.id, &ada).await;

    let err = expect_err(remove(&app, other, joined.id).await);
    assert_eq!(
        err.code(),
        "not_found",
        "another partner's data does not exist"
    );
    // The learner may not leave when self-unenrolment is off (the default).
    let err = expect_err(remove(&app, actor(&ada), joined.id).await);
    assert_eq!(err.code(), "forbidden");
    assert!(learner(&app, c.id, ada.id).await.unwrap().is_active);

    let removed = remove(&app, own, joined.id).await.unwrap();
    assert_eq!(removed.status(), InvitationStatus::Removed);
    assert!(!learner(&app, c.id, ada.id).await.unwrap().is_active);
    assert_eq!(
        code(remove(&app, w.staff(), joined.id).await),
        "invalid_transition",
        "removed is final"
    );
}

#[tokio::test]
async fn rule_6_a_learner_may_leave_when_self_unenrolment_is_on() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            self_unenrollment: true,
            ..Default::default()
        },
    )
    .await;
    let ada = user(&app, "ada@example.org", true).await;
    join(&app, &w, c.id, &ada).await;
    let a = actor(&ada);
    let left = app
        .db
        .transaction(move |conn| services::invitations::leave(conn, &a, c.id))
        .await
        .unwrap();
    assert_eq!(left.status(), InvitationStatus::Removed);
    assert!(!learner(&app, c.id, ada.id).await.unwrap().is_active);

    // Someone else's invitation is still not theirs to remove.
    let bo = user(&app, "bo@example.org", true).await;
    let bo_joined = join(&app, &w, c.id, &bo).await;
    assert_eq!(
        code(remove(&app, actor(&ada), bo_joined.id).await),
        "not_found"
    );
}

#[tokio::test]
async fn rule_6_resending_issues_a_new_token_and_queues_the_email_again() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let ada = user(&app, "ada@example.org", true).await;
    let sent = invite(&app, &w, c.id, &ada.email).await.unwrap();
    let again = resend(&app, ctx(&app), w.staff(), sent.invitation.id)
        .await
        .unwrap();
    assert_eq!(again.invitation.id, sent.invitation.id);
    assert_ne!(again.token.as_str(), sent.token.as_str());
    assert_eq!(again.invitation.send_count, 2);
    assert!(again.invitation.expires_at >= sent.invitation.expires_at);
    assert_eq!(app.count("outbound_emails").await, 2);
    let (_, secret) = crate::journey::last_email_to(&app, &ada.email).await;
    assert_eq!(secret, again.token.as_str());

    // The old link stops working; the new one works.
    assert_eq!(
        code(accept(&app, &ada, sent.token.as_str()).await),
        "not_found"
    );
    accept(&app, &ada, again.token.as_str()).await.unwrap();
    assert_eq!(
        code(resend(&app, ctx(&app), w.staff(), sent.invitation.id).await),
        "invalid_transition",
        "an accepted invitation is not resent"
    );
}

#[tokio::test]
async fn rule_6_resending_revives_an_expired_invitation_but_not_too_often() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let expired = invite_with(&app, expiring_now(&app), w.staff(), c.id, "ada@example.org")
        .await
        .unwrap();
    let revived = resend(&app, ctx(&app), w.staff(), expired.invitation.id)
        .await
        .unwrap();
    assert_eq!(revived.invitation.status(), InvitationStatus::Sent);

    let mut slow = ctx(&app);
    slow.resend_interval = Duration::seconds(60);
    assert_eq!(
        code(resend(&app, slow, w.staff(), expired.invitation.id).await),
        "too_many_requests"
    );
}

#[tokio::test]
async fn rule_5_the_channel_is_recorded() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let (ctx, staff) = (ctx(&app), w.staff());
    let sent = app
        .db
        .transaction(move |conn| {
            services::invitations::create(conn, &ctx, &staff, c.id, "ada@example.org", Channel::Api)
        })
        .await
        .unwrap();
    assert_eq!(sent.invitation.channel, "api");
}
