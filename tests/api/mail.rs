//! Email delivery: the worker against a real SMTP conversation, retries, two workers at
//! once, `.eml` files without SMTP, failure after the last attempt, and the staff outbox.

use std::time::Duration;

use diesel::prelude::*;
use mailparse::MailHeaderMap;
use partner_catalog::configuration::Settings;
use partner_catalog::jobs::outbox::{Delivery, EmailDelivery};
use partner_catalog::mail::outbox::SECRET_MARKER;
use partner_catalog::mail::{self, OutgoingEmail, Sealer, Transport};
use partner_catalog::models::outbox::OutboundEmail;
use partner_catalog::models::schema::{audit_entries, outbound_emails};
use partner_catalog::policies::Actor;
use partner_catalog::services;
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app_with};
use crate::smtp_server::{SmtpServer, free_port, url_for};

struct Fixture {
    catalog_id: i64,
    paid_course: i64,
}

/// A branded partner with a manager, and a catalog holding a paid course.
async fn branded_partner(app: &TestApp) -> Fixture {
    let staff = app
        .create_user("staff@example.org", "staff password 1", true)
        .await;
    app.create_user("manager@acme.example", "manager password 1", false)
        .await;
    let ctx = app.ctx();
    app.db
        .transaction(move |conn| {
            let actor = Actor::for_user(&staff, None);
            let (org, partner) = crate::helpers::acme_branded_partner(conn, &actor)?;
            services::partners::assign_manager(
                conn,
                &ctx,
                &actor,
                partner.id,
                "manager@acme.example",
            )?;
            let course = services::courses::create(
                conn,
                &actor,
                &services::courses::CourseInput {
                    key: "course-v1:ACMEx+PAID+1".into(),
                    title: "Negotiation".into(),
                    organisation_id: org.id.to_string(),
                    modes: "audit verified".into(),
                    ..Default::default()
                },
            )?;
            let catalog = services::catalogs::create(
                conn,
                &actor,
                partner.id,
                &services::catalogs::CatalogInput {
                    name: "Sales Academy".into(),
                    description: "Training for the sales team.".into(),
                    available_start: "2000-01-01T00:00".into(),
                    available_end: "2999-01-01T00:00".into(),
                    course_enrollments_limit: "5".into(),
                    ..Default::default()
                },
            )?;
            services::catalogs::add_course(conn, &actor, catalog.id, course.id, None)?;
            Ok(Fixture {
                catalog_id: catalog.id,
                paid_course: course.id,
            })
        })
        .await
        .unwrap()
}

/// Queues a plain email whose bodies carry the link secret's placeholder.
pub async fn queue_email(app: &TestApp, to: &str) -> i64 {
    queue_email_from(app, to, "").await
}

/// Like `queue_email`, with a sender name as stored on the row.
pub async fn queue_email_from(app: &TestApp, to: &str, from_name: &str) -> i64 {
    let sealer = Sealer::from_settings(&app.settings);
    let (to, from_name) = (to.to_string(), from_name.to_string());
    app.db
        .transaction(move |conn| {
            let secret = format!("secret-for-{to}");
            let row = mail::queue(
                conn,
                &sealer,
                OutgoingEmail {
                    kind: "test",
                    to: to.clone(),
                    from_name,
                    reply_to: None,
                    subject: format!("Hello {to}"),
                    text_body: format!("Your link: http://example.test/l/{SECRET_MARKER}\n"),
                    html_body: format!(
                        "<p>Your <b>link</b>: <a href=\"http://example.test/l/{SECRET_MARKER}\">open</a></p>"
                    ),
                    secret: Some(secret),
                    partner_id: None,
                    invitation_id: None,
                },
            )?;
            Ok(row.id)
        })
        .await
        .unwrap()
}

pub async fn email(app: &TestApp, id: i64) -> OutboundEmail {
    app.db
        .run(move |conn| {
            Ok(outbound_emails::table
                .find(id)
                .select(OutboundEmail::as_select())
                .first(conn)?)
        })
        .await
        .unwrap()
}

pub async fn all_emails(app: &TestApp) -> Vec<OutboundEmail> {
    app.db
        .run(|conn| {
            Ok(outbound_emails::table
                .order(outbound_emails::id)
                .select(OutboundEmail::as_select())
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// Makes a waiting email due now, as if its backoff had passed.
async fn make_due(app: &TestApp, id: i64) {
    app.db
        .run(move |conn| {
            diesel::update(outbound_emails::table.find(id))
                .set(outbound_emails::next_attempt_at.eq(diesel::dsl::now))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn worker_for(app: &TestApp, settings: &Settings) -> EmailDelivery {
    let transport = Transport::from_settings(settings).unwrap();
    EmailDelivery::new(settings, app.db.clone(), transport).unwrap()
}

fn parts(received: &crate::smtp_server::Received) -> (String, String) {
    let message = received.parsed();
    assert_eq!(message.ctype.mimetype, "multipart/alternative");
    let part = |mime: &str| {
        message
            .subparts
            .iter()
            .find(|p| p.ctype.mimetype == mime)
            .unwrap_or_else(|| panic!("no {mime} part"))
            .get_body()
            .unwrap()
    };
    (part("text/plain"), part("text/html"))
}

#[tokio::test]
async fn an_invitation_is_delivered_over_smtp_and_its_link_leads_to_an_enrolment() {
    let smtp = SmtpServer::start().await;
    let port = free_port();
    let smtp_url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.bind = format!("127.0.0.1:{port}");
        s.base_url = format!("http://127.0.0.1:{port}");
        s.smtp_url = Some(smtp_url.into());
        s.run_worker = true;
        s.worker_poll_ms = 100;
    })
    .await;
    let f = branded_partner(&app).await;

    // The manager invites from the console; the worker inside `serve` sends it.
    let manager = app.another_browser();
    manager
        .sign_in("manager@acme.example", "manager password 1")
        .await
        .assert_redirect_to("/");
    let invitations = format!("/partner/acme/catalogs/{}/invitations", f.catalog_id);
    manager
        .post(&invitations, &[("emails", "newcomer@example.org")])
        .await
        .assert_contains("1 invitation sent.");

    let received = smtp.wait_for(1).await;
    assert_eq!(received.len(), 1);
    let received = &received[0];
    assert_eq!(received.rcpt_to, vec!["newcomer@example.org".to_string()]);
    assert_eq!(received.mail_from, "no-reply@localhost");
    let message = received.parsed();
    let header = |name: &str| message.headers.get_first_value(name).unwrap_or_default();
    assert_eq!(
        header("Subject"),
        "You are invited to Sales Academy by ACME Corporation"
    );
    assert!(
        header("From").contains("ACME Academy"),
        "{}",
        header("From")
    );
    assert!(header("From").contains("<no-reply@localhost>"));
    assert!(header("Reply-To").contains("academy@acme.example"));
    assert_eq!(header("To"), "newcomer@example.org");

    let (text, html) = parts(received);
    let prefix = format!("{}/invitations/", app.settings.base_url);
    for body in [&text, &html] {
        assert!(!body.contains(SECRET_MARKER), "{body}");
        assert!(body.contains(&prefix), "{body}");
        assert!(body.contains("Sales Academy"));
        assert!(body.contains("academy@acme.example"));
        assert!(body.contains("/decline"));
    }
    assert!(html.contains("#b3261e"), "the accent colour: {html}");
    assert!(html.contains("https://acme.example/logo.png"), "the logo");
    assert!(html.contains("ACME"));
    let start = text.find(&prefix).unwrap();
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let token = link.trim_start_matches(&prefix).to_string();
    assert!(!token.is_empty() && !token.contains('/'), "{link}");
    assert!(html.contains(&link), "both parts carry the same link");

    // The row is marked sent (just after the server took it) and keeps no secret.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while all_emails(&app).await.iter().any(|e| e.status != "sent") {
        assert!(tokio::time::Instant::now() < deadline, "never marked sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = all_emails(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "sent");
    assert_eq!(stored[0].attempts, 1);
    assert!(stored[0].sealed_secret.is_none());
    assert!(stored[0].sent_at.is_some());

    // Follow the link exactly as written, register, accept and enrol.
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("ACME Corporation"));
    assert!(page.contains("Create your account to accept"));
    app.post(
        &format!("/invitations/{token}/register"),
        &[
            ("full_name", "Nia Newcomer"),
            ("password", "a long password"),
            ("confirm_password", "a long password"),
        ],
    )
    .await
    .assert_redirect_to("/my");
    app.post(
        &format!(
            "/my/catalogs/{}/courses/{}/enrol",
            f.catalog_id, f.paid_course
        ),
        &[],
    )
    .await
    .assert_redirect_to(&format!("/my#course-{}-{}", f.catalog_id, f.paid_course));
    let my = app.get("/my").await;
    my.assert_contains("with full access with certificate");
    my.assert_contains("with a paid seat");
}

#[tokio::test]
async fn an_email_waits_while_smtp_is_unreachable_and_goes_out_once_it_is_back() {
    let port = free_port();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url_for(port).into())).await;
    let worker = worker_for(&app, &app.settings);
    let id = queue_email(&app, "patient@example.org").await;

    let delivery = worker.run_once().await.unwrap();
    assert_eq!(
        delivery,
        Delivery {
            claimed: 1,
            sent: 0,
            retrying: 1,
            failed: 0,
            released: 0,
        }
    );
    let waiting = email(&app, id).await;
    assert_eq!(waiting.status, "queued");
    assert_eq!(waiting.attempts, 1);
    let error = waiting.last_error.clone().unwrap();
    assert!(!error.is_empty());
    let wait = waiting.next_attempt_at - chrono::Utc::now();
    assert!(
        wait > chrono::TimeDelta::seconds(20) && wait <= chrono::TimeDelta::seconds(30),
        "first retry after about 30 s, got {wait}"
    );
    assert!(waiting.sealed_secret.is_some());

    // Not due yet: nothing is claimed.
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);

    let smtp = SmtpServer::start_on(port).await;
    make_due(&app, id).await;
    let delivery = worker.run_once().await.unwrap();
    assert_eq!(delivery.sent, 1);
    let received = smtp.wait_for(1).await;
    assert_eq!(received.len(), 1);
    let (text, html) = parts(&received[0]);
    assert!(text.contains("http://example.test/l/secret-for-patient@example.org"));
    assert!(html.contains("http://example.test/l/secret-for-patient@example.org"));
    let sent = email(&app, id).await;
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.attempts, 2);
    assert_eq!(sent.last_error, None);
    assert!(sent.sealed_secret.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_at_once_deliver_every_email_exactly_once() {
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(smtp_url.into());
        s.worker_poll_ms = 20;
    })
    .await;
    let mut expected = Vec::new();
    for i in 0..20 {
        let to = format!("learner{i:02}@example.org");
        queue_email(&app, &to).await;
        expected.push(to);
    }

    // Two processes' worth: each its own pool and SMTP connections.
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let db = partner_catalog::db::Db::connect(&app.settings).unwrap();
        let transport = Transport::from_settings(&app.settings).unwrap();
        let delivery = EmailDelivery::new(&app.settings, db, transport).unwrap();
        let runner = partner_catalog::jobs::Runner::new(
            vec![Box::new(delivery)],
            Duration::from_millis(app.settings.worker_poll_ms),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        handles.push(tokio::spawn(runner.run(async move {
            let _ = stopped.await;
        })));
    }
    smtp.wait_for(20).await;
    // Give a duplicate time to show up, then stop both workers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for stop in stops {
        stop.send(()).unwrap();
    }
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("the worker stops when told")
            .unwrap();
    }

    let mut delivered: Vec<String> = smtp
        .received()
        .iter()
        .flat_map(|r| r.rcpt_to.clone())
        .collect();
    delivered.sort();
    assert_eq!(delivered, expected, "each email exactly once");
    for row in all_emails(&app).await {
        assert_eq!(row.status, "sent");
        assert_eq!(row.attempts, 1, "no email was claimed twice");
    }
}

/// Queues `count` emails and sends them in one run of a worker allowed `concurrency`
/// sends at once, to a mail server that takes 300 ms over each message. On one thread,
/// as the `worker` command runs.
async fn send_to_a_slow_server(count: usize, concurrency: usize) -> SmtpServer {
    let smtp = SmtpServer::start_slow(Duration::from_millis(300)).await;
    let smtp_url = smtp.url();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(smtp_url.into());
        s.email_concurrency = concurrency;
    })
    .await;
    for i in 0..count {
        queue_email(&app, &format!("learner{i:02}@example.org")).await;
    }
    let worker = worker_for(&app, &app.settings);
    let delivery = worker.run_once().await.unwrap();
    assert_eq!(delivery.sent, count, "{delivery:?}");
    assert_eq!(smtp.received().len(), count);
    for row in all_emails(&app).await {
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    }
    smtp
}

#[tokio::test]
async fn the_worker_sends_as_many_emails_at_once_as_configured_and_no_more() {
    let smtp = send_to_a_slow_server(9, 3).await;
    assert_eq!(
        smtp.most_taken_at_once(),
        3,
        "three sends overlap, never four"
    );
    assert!(
        smtp.connections() <= 3,
        "{} connections",
        smtp.connections()
    );
}

#[tokio::test]
async fn with_a_concurrency_of_one_the_worker_sends_one_email_after_the_other() {
    let smtp = send_to_a_slow_server(4, 1).await;
    assert_eq!(smtp.most_taken_at_once(), 1);
    assert_eq!(smtp.connections(), 1, "one connection, reused");
}

#[tokio::test]
async fn without_smtp_emails_are_written_as_eml_files() {
    let dir = std::env::temp_dir().join(format!("pc-mail-{}", uuid::Uuid::new_v4().simple()));
    let mail_dir = dir.clone();
    let app = spawn_app_with(move |s| {
        s.smtp_url = None;
        s.mail_dir = mail_dir;
    })
    .await;
    let worker = worker_for(&app, &app.settings);
    assert!(matches!(worker.transport(), Transport::File { .. }));
    let id = queue_email(&app, "offline@example.org").await;

    assert_eq!(worker.run_once().await.unwrap().sent, 1);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let raw = std::fs::read(&files[0]).unwrap();
    let received = crate::smtp_server::Received {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        data: raw,
    };
    let message = received.parsed();
    assert_eq!(
        message.headers.get_first_value("To").as_deref(),
        Some("offline@example.org")
    );
    assert!(
        message
            .headers
            .get_first_value("From")
            .unwrap()
            .contains("Partner Catalog")
    );
    let (text, html) = parts(&received);
    assert!(text.contains("secret-for-offline@example.org"));
    assert!(html.contains("<b>link</b>"));
    assert_eq!(email(&app, id).await.status, "sent");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn after_the_last_attempt_an_email_fails_and_staff_can_retry_it() {
    let port = free_port();
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(url_for(port).into());
        s.email_max_attempts = 2;
        s.email_retry_base_seconds = 0;
    })
    .await;
    let worker = worker_for(&app, &app.settings);
    let id = queue_email(&app, "unlucky@example.org").await;

    assert_eq!(worker.run_once().await.unwrap().retrying, 1);
    assert_eq!(worker.run_once().await.unwrap().failed, 1);
    let failed = email(&app, id).await;
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.attempts, 2);
    let last_error = failed.last_error.clone().unwrap();
    assert!(!last_error.is_empty());
    assert_eq!(worker.run_once().await.unwrap().claimed, 0, "no more tries");

    // Anyone but staff is refused, in the service too.
    let learner = app.another_browser();
    learner.signed_in_learner().await;
    assert_eq!(
        learner.get("/staff/outbox").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        learner.get(&format!("/staff/outbox/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        learner
            .post(&format!("/staff/outbox/{id}/retry"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let not_staff = Actor::invitee("someone@example.org", Some(1));
    let refused = app
        .db
        .transaction(move |conn| services::outbox::retry(conn, &not_staff, id))
        .await;
    assert!(matches!(
        refused,
        Err(partner_catalog::error::Error::Forbidden(_))
    ));
    assert_eq!(email(&app, id).await.status, "failed");

    // Staff see it in the list, filtered, and in detail.
    app.signed_in_staff().await;
    let overview = app.get("/staff").await;
    overview.assert_contains(
        "<a class=\"stat alarm\" href=\"/staff/outbox?status=failed\"><strong>1</strong><span>emails failed</span>",
    );
    let list = app.get("/staff/outbox?status=failed").await;
    assert_eq!(list.status, StatusCode::OK);
    list.assert_contains("unlucky@example.org");
    list.assert_contains("badge failed");
    let sent_only = app.get("/staff/outbox?status=sent").await;
    assert!(!sent_only.body.contains("unlucky@example.org"));
    let searched = app.get("/staff/outbox?q=UNLUCKY").await;
    searched.assert_contains("unlucky@example.org");
    let other = app.get("/staff/outbox?q=nobody").await;
    assert!(!other.body.contains("unlucky@example.org"));

    let detail = app.get(&format!("/staff/outbox/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    detail.assert_contains(&html_escape(&last_error));
    detail.assert_contains("<pre class=\"email-text\">Your link: http://example.test/l/");
    detail.assert_contains("<iframe class=\"email-preview\" sandbox srcdoc=\"&#60;p&#62;Your &#60;b&#62;link&#60;/b&#62;");
    assert!(
        !detail.body.contains("secret-for-unlucky"),
        "the secret is never shown"
    );
    detail.assert_contains(&format!("action=\"/staff/outbox/{id}/retry\""));

    // Retry: queued again with a fresh round of attempts, and audited.
    app.post(&format!("/staff/outbox/{id}/retry"), &[])
        .await
        .assert_redirect_to(&format!("/staff/outbox/{id}"));
    let requeued = email(&app, id).await;
    assert_eq!(requeued.status, "queued");
    assert_eq!(requeued.attempts, 0);
    let audited: Vec<(String, String, String)> = app
        .db
        .run(|conn| {
            Ok(audit_entries::table
                .filter(audit_entries::action.eq("email.retry"))
                .select((
                    audit_entries::object_type,
                    audit_entries::object_id,
                    audit_entries::actor_role,
                ))
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(
        audited,
        vec![("outbound_email".into(), id.to_string(), "staff".into())]
    );
    let page = app.get(&format!("/staff/outbox/{id}")).await;
    page.assert_contains("is queued again");
    assert!(
        !page.body.contains("/retry\""),
        "only failed emails offer a retry"
    );

    // A second retry of a queued email is refused plainly.
    app.post(&format!("/staff/outbox/{id}/retry"), &[])
        .await
        .assert_redirect_to(&format!("/staff/outbox/{id}"));
    app.get(&format!("/staff/outbox/{id}"))
        .await
        .assert_contains("Only a failed email can be retried");

    // Once the server is there, the retried email goes out.
    let smtp = SmtpServer::start_on(port).await;
    assert_eq!(worker.run_once().await.unwrap().sent, 1);
    assert_eq!(smtp.wait_for(1).await.len(), 1);
    assert_eq!(email(&app, id).await.status, "sent");
}
