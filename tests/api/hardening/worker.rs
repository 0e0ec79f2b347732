//! Email and the background runner: a bad email fails alone, an outcome survives a
//! database blip, reminders are not starved, and a silent mail server costs a bounded wait.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use partner_catalog::jobs::Runner;
use partner_catalog::jobs::outbox::EmailDelivery;
use partner_catalog::mail::Transport;
use partner_catalog::models::schema::invitations;
use partner_catalog::services;
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::journey::{invite, setup};
use crate::mail::{all_emails, email, queue_email, queue_email_from};
use crate::smtp_server::{SilentServer, SmtpServer};

/// Runs email delivery in a runner of its own until `done` says so (or 30 s pass).
async fn deliver_until(app: &TestApp, done: impl AsyncFn() -> bool) {
    let transport = Transport::from_settings(&app.settings).unwrap();
    let delivery = EmailDelivery::new(&app.settings, app.db.clone(), transport).unwrap();
    let runner = Runner::new(vec![Box::new(delivery)], Duration::from_millis(20));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        assert!(!handle.is_finished(), "the runner stopped on its own");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the runner stops when told")
        .expect("the runner did not panic");
}

/// Item 6: a line break in a partner's sender name is refused by the form, and an email
/// that has one anyway (stored before the check) fails alone while the rest flow.
#[tokio::test]
async fn a_line_break_in_the_sender_name_is_refused_and_a_bad_email_fails_alone() {
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(smtp_url.into())).await;
    let staff = app.signed_in_staff().await;
    let (org, partner) = app
        .db
        .transaction(move |conn| {
            crate::helpers::acme_branded_partner(
                conn,
                &partner_catalog::policies::Actor::for_user(&staff, None),
            )
        })
        .await
        .unwrap();
    let refused = app
        .post(
            &format!("/staff/partners/{}", partner.id),
            &[
                ("organisation_id", &org.id.to_string()),
                ("code", "acme"),
                ("name", "ACME Corporation"),
                ("accent_colour", "#b3261e"),
                ("email_sender_name", "ACME\r\nBcc: everyone@example.org"),
                ("time_zone", "UTC"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("must be on one line");

    let bad = queue_email_from(&app, "bad@example.org", "ACME\r\nBcc: everyone@example.org").await;
    let good = queue_email(&app, "good@example.org").await;
    deliver_until(&app, async || smtp.received().len() == 1).await;
    assert_eq!(smtp.received()[0].rcpt_to, vec!["good@example.org"]);
    assert_eq!(email(&app, good).await.status, "sent");
    let failed = email(&app, bad).await;
    assert_eq!(failed.status, "failed");
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("sender name"),
        "{:?}",
        failed.last_error
    );
}

/// Item 7: an email handed to the mail server whose "sent" mark cannot be written at
/// first (the database is away) is marked once it can be, and never sent again.
#[tokio::test]
async fn an_outcome_that_cannot_be_recorded_at_first_is_kept_and_never_sent_twice() {
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(smtp_url.into())).await;
    // A switchable outage of exactly the write that records the outcome.
    app.db
        .run(|conn| {
            conn.batch_execute(
                "CREATE TABLE simulated_outage (since TIMESTAMPTZ NOT NULL DEFAULT now());
                 CREATE FUNCTION refuse_during_outage() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF EXISTS (SELECT 1 FROM simulated_outage) THEN
                         RAISE EXCEPTION 'the database is unavailable (simulated)';
                     END IF;
                     RETURN NEW;
                 END $$;
                 CREATE TRIGGER outage BEFORE UPDATE ON outbound_emails FOR EACH ROW
                     WHEN (NEW.status = 'sent') EXECUTE FUNCTION refuse_during_outage();
                 INSERT INTO simulated_outage DEFAULT VALUES;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let id = queue_email(&app, "once@example.org").await;
    let db = app.db.clone();
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outage = ended.clone();
    let smtp_ref = &smtp;
    deliver_until(&app, async || {
        if !outage.load(std::sync::atomic::Ordering::SeqCst) && smtp_ref.received().len() == 1 {
            // Sent; the outage lasts a little longer, then ends.
            tokio::time::sleep(Duration::from_secs(2)).await;
            db.run(|conn| Ok(conn.batch_execute("DELETE FROM simulated_outage")?))
                .await
                .unwrap();
            outage.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        outage.load(std::sync::atomic::Ordering::SeqCst) && email(&app, id).await.status == "sent"
    })
    .await;
    assert!(ended.load(std::sync::atomic::Ordering::SeqCst));
    let sent = email(&app, id).await;
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.attempts, 1);
    assert_eq!(smtp.received().len(), 1, "sent exactly once");
}

/// Item 9: invitations of ended catalogs neither get reminders nor crowd out others.
#[tokio::test]
async fn reminders_of_ended_catalogs_do_not_starve_the_others() {
    let app = spawn_app().await;
    let ended = setup(&app, None).await;
    let ctx = app.ctx();
    let staff = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap())
        })
        .await
        .unwrap();
    // A second, running catalog of the same partner.
    let staff_actor = partner_catalog::policies::Actor::for_user(&staff, None);
    let running = app
        .db
        .transaction(move |conn| {
            let partner = partner_catalog::models::partners::find_by_code(conn, "acme")?.unwrap();
            services::catalogs::create(
                conn,
                &staff_actor,
                partner.id,
                &services::catalogs::CatalogInput {
                    name: "Still running".into(),
                    available_start: "2000-01-01T00:00".into(),
                    available_end: "2999-01-01T00:00".into(),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    for i in 0..120 {
        invite(&app, ended.catalog_id, &format!("old{i}@example.org")).await;
    }
    invite(&app, running.id, "current@example.org").await;
    let (ended_id, running_id) = (ended.catalog_id, running.id);
    app.db
        .run(move |conn| {
            let now = chrono::Utc::now();
            // Everything was sent weeks ago and expires soon; the first catalog has ended.
            diesel::update(invitations::table)
                .set((
                    invitations::invited_at.eq(now - chrono::Duration::days(28)),
                    invitations::last_sent_at.eq(now - chrono::Duration::days(28)),
                    // The ended catalog's invitations expire first.
                    invitations::expires_at.eq(now + chrono::Duration::days(1)),
                ))
                .filter(invitations::catalog_id.eq(ended_id))
                .execute(conn)?;
            diesel::update(invitations::table)
                .set((
                    invitations::invited_at.eq(now - chrono::Duration::days(28)),
                    invitations::last_sent_at.eq(now - chrono::Duration::days(28)),
                    invitations::expires_at.eq(now + chrono::Duration::days(2)),
                ))
                .filter(invitations::catalog_id.eq(running_id))
                .execute(conn)?;
            conn.batch_execute(&format!(
                "UPDATE catalogs SET available_start = now() - interval '60 days', \
                 available_end = now() - interval '1 day' WHERE id = {ended_id}"
            ))?;
            Ok(())
        })
        .await
        .unwrap();
    let queued = app
        .db
        .transaction(move |conn| services::reminders::send_due(conn, &ctx, 3))
        .await
        .unwrap();
    assert_eq!(
        queued, 1,
        "the running catalog's invitation got its reminder"
    );
    let reminded: Vec<String> = all_emails(&app)
        .await
        .into_iter()
        .filter(|e| e.kind == "invitation_reminder")
        .map(|e| e.to_address)
        .collect();
    assert_eq!(reminded, vec!["current@example.org"]);
}

/// Item 10: a mail server that accepts and never greets costs one bounded wait, counted
/// as a failed attempt to retry.
#[tokio::test]
async fn a_silent_mail_server_costs_a_bounded_wait_and_a_retry() {
    let silent = SilentServer::start().await;
    let smtp_url = silent.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(smtp_url.into());
        s.email_send_timeout_seconds = 1;
    })
    .await;
    let id = queue_email(&app, "patient@example.org").await;
    let transport = Transport::from_settings(&app.settings).unwrap();
    let delivery = EmailDelivery::new(&app.settings, app.db.clone(), transport).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), delivery.run_once())
        .await
        .expect("the send is bounded")
        .unwrap();
    assert_eq!((outcome.claimed, outcome.retrying), (1, 1));
    let waiting = email(&app, id).await;
    assert_eq!(waiting.status, "queued");
    assert!(
        waiting
            .last_error
            .as_deref()
            .unwrap()
            .contains("did not finish within 1 seconds"),
        "{:?}",
        waiting.last_error
    );
}
