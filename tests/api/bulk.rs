//! Rule 9: bulk lists — reading and previewing every row, bad files, approval and
//! rejection, cancelling, permissions, and a run that resumes after a crash and is never
//! run twice.

use std::collections::HashSet;

use diesel::prelude::*;
use partner_catalog::jobs::Stop;
use partner_catalog::jobs::bulk::BulkJobs;
use partner_catalog::models::bulk::BulkJob;
use partner_catalog::models::schema::{
    audit_entries, bulk_job_rows, bulk_jobs, invitations, outbound_emails,
};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::hardening::signed_in_manager;
use crate::helpers::{Html, TestApp, spawn_app, spawn_app_with};
use crate::journey::{invite, last_email_to, setup};

/// Posts a list from a browser: a CSV file, or pasted addresses when `csv` is empty.
pub async fn upload(
    browser: &TestApp,
    catalog_id: i64,
    kind: &str,
    csv: &[u8],
    pasted: &str,
    courses: &[i64],
) -> Html {
    let token = browser.csrf_token().await;
    let mut form = Form::new()
        .text("kind", kind.to_string())
        .text("addresses", pasted.to_string());
    if !csv.is_empty() {
        form = form.part(
            "file",
            Part::bytes(csv.to_vec())
                .file_name("people.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    }
    for course in courses {
        form = form.text("courses", course.to_string());
    }
    let response = browser
        .client
        .post(browser.url(&format!(
            "/partner/acme/catalogs/{catalog_id}/bulk?csrf_token={token}"
        )))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    Html {
        status,
        location,
        body: response.text().await.unwrap(),
    }
}

/// The job a successful upload redirected to.
fn job_id_of(page: &Html) -> i64 {
    let location = page
        .location
        .as_deref()
        .unwrap_or_else(|| panic!("no redirect: {}", page.body));
    location.rsplit('/').next().unwrap().parse().unwrap()
}

pub async fn job(app: &TestApp, id: i64) -> BulkJob {
    app.db
        .run(move |conn| Ok(partner_catalog::models::bulk::find(conn, id)?))
        .await
        .unwrap()
}

/// Runs the worker's bulk job kind until nothing is left to run.
pub async fn run_jobs(app: &TestApp) -> usize {
    let runner = BulkJobs::from_settings(&app.settings, app.db.clone());
    let mut handled = 0;
    while let Some((rows, _)) = runner.turn(&Stop::never()).await.unwrap() {
        handled += rows;
    }
    handled
}

/// Each row's (line, outcome) of a job.
async fn outcomes(app: &TestApp, id: i64) -> Vec<(i32, Option<String>)> {
    app.db
        .run(move |conn| {
            Ok(bulk_job_rows::table
                .filter(bulk_job_rows::job_id.eq(id))
                .order(bulk_job_rows::line_number)
                .select((bulk_job_rows::line_number, bulk_job_rows::outcome))
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn count_where<T>(
    app: &TestApp,
    query: impl FnOnce(&mut PgConnection) -> QueryResult<T> + Clone + Send + 'static,
) -> T
where
    T: Send + 'static,
{
    app.db.run(move |conn| Ok(query(conn)?)).await.unwrap()
}

#[tokio::test]
async fn a_list_is_previewed_row_by_row_then_runs_and_reports_each_row() {
    let app = spawn_app().await;
    let s = setup(&app, Some(r".*@example\.org")).await;
    let manager = signed_in_manager(&app).await;
    invite(&app, s.catalog_id, "invited@example.org").await;
    let learner = app
        .create_user("learner@example.org", "learner password 1", false)
        .await;
    let token = invite(&app, s.catalog_id, "learner@example.org").await;
    app.db
        .transaction(move |conn| {
            partner_catalog::services::invitations::accept(
                conn,
                &partner_catalog::policies::Actor::for_user(&learner, None),
                &token,
            )
        })
        .await
        .unwrap();
    let emails_before = app.count("outbound_emails").await;

    let csv = "\u{feff}email;full_name\r\n\
               New.One@Example.org;New One\r\n\
               not an address;Bad\r\n\
               new.one@example.org;Again\r\n\
               invited@example.org;Invited\r\n\
               learner@example.org;Learner\r\n\
               outsider@elsewhere.com;Outsider\r\n";
    let uploaded = upload(&manager, s.catalog_id, "invite", csv.as_bytes(), "", &[]).await;
    let id = job_id_of(&uploaded);
    let preview = manager
        .get(&format!(
            "/partner/acme/catalogs/{}/bulk/{id}",
            s.catalog_id
        ))
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    for expected in [
        "6 rows read",
        "invited: 2",
        "not an email address: 1",
        "appears earlier in the list: 1",
        "also on line 2",
        "already invited: 1",
        "already a learner: 1",
        "none of the catalog's email patterns",
        "Submit the list",
    ] {
        preview.assert_contains(expected);
    }
    // Nothing happened yet.
    assert_eq!(app.count("invitations").await, 2);
    assert_eq!(app.count("outbound_emails").await, emails_before);

    manager
        .post(
            &format!("/partner/acme/catalogs/{}/bulk/{id}/submit", s.catalog_id),
            &[],
        )
        .await
        .assert_redirect_to(&format!(
            "/partner/acme/catalogs/{}/bulk/{id}",
            s.catalog_id
        ));
    assert_eq!(
        job(&app, id).await.status,
        "approved",
        "small lists run at once"
    );
    run_jobs(&app).await;
    let done = job(&app, id).await;
    assert_eq!(done.status, "done");
    assert_eq!(
        (done.processed_rows, done.succeeded_rows, done.failed_rows),
        (6, 2, 2)
    );
    let rows = outcomes(&app, id).await;
    let lines: Vec<(i32, &str)> = rows
        .iter()
        .map(|(line, o)| (*line, o.as_deref().unwrap()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (2, "invited"),
            (3, "invalid_email"),
            (4, "duplicate_in_file"),
            (5, "already_invited"),
            (6, "already_learner"),
            (7, "invited"),
        ]
    );
    // The invitations, their emails and events, each once.
    let channels: Vec<String> = count_where(&app, |conn| {
        invitations::table
            .filter(invitations::channel.eq("bulk"))
            .select(invitations::email)
            .order(invitations::email)
            .load(conn)
    })
    .await;
    assert_eq!(
        channels,
        vec!["new.one@example.org", "outsider@elsewhere.com"]
    );
    assert_eq!(app.count("outbound_emails").await, emails_before + 2);
    let (email, secret) = last_email_to(&app, "outsider@elsewhere.com").await;
    assert_eq!(email.kind, "invitation");
    let page = app
        .another_browser()
        .get(&format!("/invitations/{secret}"))
        .await;
    page.assert_contains("Sales Academy");
    let sent_events: i64 = count_where(&app, |conn| {
        use partner_catalog::models::schema::tracking_events as t;
        t::table
            .filter(t::name.eq("invitation.sent"))
            .filter(t::channel.eq("bulk"))
            .count()
            .get_result(conn)
    })
    .await;
    assert_eq!(sent_events, 2);
    let audited: Vec<String> = count_where(&app, move |conn| {
        audit_entries::table
            .filter(audit_entries::object_type.eq("bulk_job"))
            .filter(audit_entries::object_id.eq(id.to_string()))
            .select(audit_entries::action)
            .order(audit_entries::id)
            .load(conn)
    })
    .await;
    assert_eq!(audited, vec!["bulk.submit", "bulk.batch"]);

    // The result file lists every row.
    let csv = manager
        .client
        .get(manager.url(&format!(
            "/partner/acme/catalogs/{}/bulk/{id}/results.csv",
            s.catalog_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["cache-control"], "no-store");
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "line,email,external_user_key,full_name,planned,outcome,detail"
    );
    assert_eq!(lines.len(), 7);
    assert!(
        lines[2].starts_with("3,not an address,,Bad,invalid_email,invalid_email,"),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        "4,new.one@example.org,,Again,duplicate_in_file,duplicate_in_file,also on line 2"
    );
}

#[tokio::test]
async fn a_file_with_old_mac_line_endings_is_read_row_by_row() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let page = upload(
        &manager,
        s.catalog_id,
        "invite",
        b"email,full_name\rcr1@example.org,One\rcr2@example.org,Two\r",
        "",
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let preview = manager.get(page.location.as_deref().unwrap()).await;
    preview.assert_contains("cr1@example.org");
    preview.assert_contains("cr2@example.org");
    assert_eq!(app.count("bulk_job_rows").await, 2);
}

#[tokio::test]
async fn every_kind_of_bad_file_is_named_with_its_line_and_nothing_is_stored() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let mut too_many = b"email\n".to_vec();
    for i in 0..100_001 {
        too_many.extend_from_slice(format!("u{i}@example.org\n").as_bytes());
    }
    let too_large = vec![b'a'; 10 * 1024 * 1024 + 10];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"name,mail\nAda,ada@example.org\n".to_vec(),
            "Line 1: the header has no &#34;email&#34; column",
        ),
        (
            b"email\nada@example.org\n\x00\x01\x02\x03".to_vec(),
            "Line 3 holds binary data",
        ),
        (
            b"email\nada@example.org\nb\xe9b@example.org\n".to_vec(),
            "Line 3 is not UTF-8 text",
        ),
        (b"email\n".to_vec(), "There is nothing to invite"),
        (too_many, "Line 100002 is past the limit of 100,000 rows"),
        (too_large, "larger than 10 MiB"),
        (
            b"email,full_name\na1@example.org,A\n\"a2@example.org,A\nb2@example.org,B\n".to_vec(),
            "Line 3: a quote (&#34;) opens a field that is never closed",
        ),
    ];
    for (file, message) in cases {
        let page = upload(&manager, s.catalog_id, "invite", &file, "", &[]).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{message}: {}",
            page.body
        );
        page.assert_contains(message);
    }
    // Neither a file nor addresses; a kind that does not exist; a course of no catalog.
    let nothing = upload(&manager, s.catalog_id, "invite", b"", "", &[]).await;
    nothing.assert_contains("choose a CSV file, or paste addresses");
    let kind = upload(
        &manager,
        s.catalog_id,
        "delete_all",
        b"",
        "a@example.org",
        &[],
    )
    .await;
    kind.assert_contains("choose invitations or pre-enrolments");
    let course = upload(
        &manager,
        s.catalog_id,
        "invite",
        b"",
        "a@example.org",
        &[999_999],
    )
    .await;
    course.assert_contains("only courses of this catalog");
    // What was typed stays.
    course.assert_contains(">a@example.org</textarea>");
    // A file and pasted addresses: one of them would be ignored, so neither is read.
    let both = upload(
        &manager,
        s.catalog_id,
        "invite",
        b"email\nfile@example.org\n",
        "pasted@example.org",
        &[],
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    both.assert_contains("send either a file or pasted addresses, not both");
    both.assert_contains(">pasted@example.org</textarea>");
    assert_eq!(app.count("bulk_jobs").await, 0);
    assert_eq!(app.count("bulk_job_rows").await, 0);
}

#[tokio::test]
async fn above_the_threshold_a_managers_list_waits_for_staff_who_approve_or_reject_with_a_reason() {
    let app = spawn_app_with(|s| s.bulk_approval_threshold = 3).await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let pasted = "a@example.org, b@example.org; c@example.org\nd@example.org";
    let first = job_id_of(&upload(&manager, s.catalog_id, "invite", b"", pasted, &[]).await);
    let page = manager
        .get(&format!(
            "/partner/acme/catalogs/{}/bulk/{first}",
            s.catalog_id
        ))
        .await;
    page.assert_contains("it will wait for the platform");
    manager
        .post(
            &format!(
                "/partner/acme/catalogs/{}/bulk/{first}/submit",
                s.catalog_id
            ),
            &[],
        )
        .await;
    assert_eq!(job(&app, first).await.status, "pending_approval");
    run_jobs(&app).await;
    assert_eq!(
        job(&app, first).await.status,
        "pending_approval",
        "nothing runs before approval"
    );

    let staff = app.another_browser();
    staff
        .sign_in("staff@example.org", "staff password 1")
        .await
        .assert_redirect_to("/");
    let queue = staff.get("/staff/bulk").await;
    queue.assert_contains("aria-label=\"1 waiting\"");
    queue.assert_contains(&format!("/staff/bulk/{first}"));
    // A rejection needs a reason; what was typed is kept.
    let refused = staff
        .post(&format!("/staff/bulk/{first}/reject"), &[("reason", "  ")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("is required");
    assert_eq!(job(&app, first).await.status, "pending_approval");
    staff
        .post(
            &format!("/staff/bulk/{first}/reject"),
            &[("reason", "These are not your employees.")],
        )
        .await
        .assert_redirect_to(&format!("/staff/bulk/{first}"));
    let rejected = job(&app, first).await;
    assert_eq!(rejected.status, "rejected");
    assert_eq!(
        rejected.decision_reason.as_deref(),
        Some("These are not your employees.")
    );
    let (email, _) = last_email_to_kind(&app, "manager@acme.example", "bulk_decision").await;
    assert!(
        email.text_body.contains("These are not your employees."),
        "{}",
        email.text_body
    );
    manager
        .get(&format!(
            "/partner/acme/catalogs/{}/bulk/{first}",
            s.catalog_id
        ))
        .await
        .assert_contains("These are not your employees.");
    // Once decided, it cannot be decided again.
    staff
        .post(&format!("/staff/bulk/{first}/approve"), &[])
        .await;
    assert_eq!(job(&app, first).await.status, "rejected");

    let second = job_id_of(&upload(&manager, s.catalog_id, "invite", b"", pasted, &[]).await);
    manager
        .post(
            &format!(
                "/partner/acme/catalogs/{}/bulk/{second}/submit",
                s.catalog_id
            ),
            &[],
        )
        .await;
    staff
        .post(&format!("/staff/bulk/{second}/approve"), &[])
        .await
        .assert_redirect_to(&format!("/staff/bulk/{second}"));
    assert_eq!(job(&app, second).await.status, "approved");
    run_jobs(&app).await;
    assert_eq!(job(&app, second).await.status, "done");
    assert_eq!(app.count("invitations").await, 4);
    let decisions: Vec<String> = count_where(&app, |conn| {
        audit_entries::table
            .filter(audit_entries::action.eq_any(["bulk.approve", "bulk.reject"]))
            .select(audit_entries::action)
            .order(audit_entries::id)
            .load(conn)
    })
    .await;
    assert_eq!(decisions, vec!["bulk.reject", "bulk.approve"]);

    // Staff's own lists start at once, whatever their size.
    let staff_list = job_id_of(
        &upload(
            &staff,
            s.catalog_id,
            "invite",
            b"",
            "e@example.org\nf@example.org\ng@example.org\nh@example.org",
            &[],
        )
        .await,
    );
    staff
        .post(
            &format!(
                "/partner/acme/catalogs/{}/bulk/{staff_list}/submit",
                s.catalog_id
            ),
            &[],
        )
        .await;
    assert_eq!(job(&app, staff_list).await.status, "approved");
}

async fn last_email_to_kind(
    app: &TestApp,
    to: &str,
    kind: &str,
) -> (partner_catalog::models::outbox::OutboundEmail, ()) {
    let (to, kind) = (to.to_string(), kind.to_string());
    let email = app
        .db
        .run(move |conn| {
            Ok(outbound_emails::table
                .filter(outbound_emails::to_address.eq(to))
                .filter(outbound_emails::kind.eq(kind))
                .order(outbound_emails::id.desc())
                .select(partner_catalog::models::outbox::OutboundEmail::as_select())
                .first(conn)?)
        })
        .await
        .unwrap();
    (email, ())
}

#[tokio::test]
async fn a_list_can_be_discarded_before_and_cancelled_after_submitting() {
    let app = spawn_app_with(|s| s.bulk_approval_threshold = 1).await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let base = format!("/partner/acme/catalogs/{}/bulk", s.catalog_id);
    let draft =
        job_id_of(&upload(&manager, s.catalog_id, "invite", b"", "a@example.org", &[]).await);
    manager
        .post(&format!("{base}/{draft}/discard"), &[])
        .await
        .assert_redirect_to(&base);
    assert_eq!(app.count("bulk_jobs").await, 0);

    let waiting = job_id_of(
        &upload(
            &manager,
            s.catalog_id,
            "invite",
            b"",
            "a@example.org\nb@example.org",
            &[],
        )
        .await,
    );
    manager.post(&format!("{base}/{waiting}/submit"), &[]).await;
    // Cancelling asks first, and keeps the reason in the audit log.
    let page = manager.get(&format!("{base}/{waiting}")).await;
    page.assert_contains(&format!(
        "href=\"{base}/{waiting}/cancel\">Cancel the list…</a>"
    ));
    let question = manager.get(&format!("{base}/{waiting}/cancel")).await;
    question.assert_contains("Rows already handled (0 of 2) stay as they are");
    assert_eq!(job(&app, waiting).await.status, "pending_approval");
    manager
        .post(
            &format!("{base}/{waiting}/cancel"),
            &[("reason", "wrong team")],
        )
        .await
        .assert_redirect_to(&format!("{base}/{waiting}"));
    let cancelled = job(&app, waiting).await;
    assert_eq!(cancelled.status, "cancelled");
    let reason: Option<String> = count_where(&app, |conn| {
        audit_entries::table
            .filter(audit_entries::action.eq("bulk.cancel"))
            .select(audit_entries::reason)
            .first(conn)
    })
    .await;
    assert_eq!(reason.as_deref(), Some("wrong team"));
    run_jobs(&app).await;
    assert_eq!(
        app.count("invitations").await,
        0,
        "a cancelled list sends nothing"
    );
    // Cancelled stays cancelled.
    let again = manager.post(&format!("{base}/{waiting}/cancel"), &[]).await;
    again.assert_redirect_to(&format!("{base}/{waiting}"));
    manager
        .get(&format!("{base}/{waiting}"))
        .await
        .assert_contains("can no longer be cancelled");
}

#[tokio::test]
async fn a_preview_names_the_courses_offers_every_row_and_stays_listed_until_submitted() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let rows: String = (0..15).map(|i| format!("p{i}@example.org\n")).collect();
    let draft = job_id_of(
        &upload(
            &manager,
            s.catalog_id,
            "invite",
            b"",
            &rows,
            &[s.paid_course, s.open_course],
        )
        .await,
    );
    let base = format!("/partner/acme/catalogs/{}/bulk", s.catalog_id);
    let preview = manager.get(&format!("{base}/{draft}")).await;
    preview.assert_contains("<dt>Prepared by</dt>");
    preview.assert_contains(
        "<li>Course course-v1:ACMEx+PAID+1 <span class=\"badge\">takes a paid seat</span></li>",
    );
    preview.assert_contains("<li>Course course-v1:ACMEx+OPEN+1</li>");
    preview.assert_contains("And 5 more: every row is in the CSV file above.");
    // Every row, with what will happen to it, before anything happened.
    let csv = manager
        .client
        .get(manager.url(&format!("{base}/{draft}/results.csv")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 16, "{csv}");
    assert!(csv.contains("\n14,p13@example.org,,,invited,,"), "{csv}");
    // The unsubmitted preview is listed for its author, with how long it is kept.
    let list = manager.get(&base).await;
    list.assert_contains("Your previews not submitted yet");
    list.assert_contains(&format!("#{draft} pasted list</a>"));
    list.assert_contains("deleted 24 hours after");
}

#[tokio::test]
async fn other_partners_managers_and_learners_find_no_bulk_list() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let id = job_id_of(&upload(&manager, s.catalog_id, "invite", b"", "a@example.org", &[]).await);
    manager
        .post(
            &format!("/partner/acme/catalogs/{}/bulk/{id}/submit", s.catalog_id),
            &[],
        )
        .await;

    // A manager of another partner.
    let staff = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap())
        })
        .await
        .unwrap();
    app.create_user("other@beta.example", "other password 1", false)
        .await;
    let ctx = app.ctx();
    let beta = app
        .db
        .transaction(move |conn| {
            let actor = partner_catalog::policies::Actor::for_user(&staff, None);
            let org =
                partner_catalog::models::organisations::find_by_short_name(conn, "ACMEx")?.unwrap();
            let partner = partner_catalog::services::partners::create(
                conn,
                &actor,
                &partner_catalog::services::partners::PartnerInput {
                    organisation_id: org.id.to_string(),
                    code: "beta".into(),
                    name: "Beta".into(),
                    time_zone: "UTC".into(),
                    ..Default::default()
                },
            )?;
            partner_catalog::services::partners::assign_manager(
                conn,
                &ctx,
                &actor,
                partner.id,
                "other@beta.example",
            )?;
            Ok(partner)
        })
        .await
        .unwrap();
    let other = app.another_browser();
    other
        .sign_in("other@beta.example", "other password 1")
        .await
        .assert_redirect_to("/");
    let c = s.catalog_id;
    for path in [
        format!("/partner/acme/catalogs/{c}/bulk/{id}"),
        format!("/partner/acme/catalogs/{c}/bulk/{id}/results.csv"),
        format!("/partner/acme/catalogs/{c}/bulk/{id}/progress"),
        format!("/partner/beta/catalogs/{c}/bulk/{id}"),
        format!("/partner/acme/catalogs/{c}/pre-enrolments"),
    ] {
        assert_eq!(
            other.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for path in [
        format!("/partner/acme/catalogs/{c}/bulk/{id}/cancel"),
        format!("/partner/beta/catalogs/{c}/bulk/{id}/cancel"),
    ] {
        assert_eq!(
            other.post(&path, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(other.get("/staff/bulk").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.get(&format!("/staff/bulk/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        other
            .get(&format!("/staff/bulk/{id}/progress"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The list's own manager reads its progress.
    let progress = manager
        .get(&format!("/partner/acme/catalogs/{c}/bulk/{id}/progress"))
        .await;
    assert_eq!(progress.status, StatusCode::OK);
    let progress: serde_json::Value = serde_json::from_str(&progress.body).unwrap();
    assert_eq!(progress["total"], 1);
    assert_eq!(progress["processed"], 0);
    let _ = beta;
    // A learner finds nothing either.
    app.signed_in_learner().await;
    for path in [
        format!("/partner/acme/catalogs/{c}/bulk/{id}"),
        format!("/partner/acme/catalogs/{c}/bulk/{id}/results.csv"),
        format!("/partner/acme/catalogs/{c}/pre-enrolments"),
    ] {
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        app.post(&format!("/partner/acme/catalogs/{c}/bulk/{id}/cancel"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/staff/bulk/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(job(&app, id).await.status, "approved", "nothing changed");
}

/// A list of `n` fresh addresses, as a CSV file.
pub fn csv_of(n: usize, domain: &str) -> Vec<u8> {
    let mut csv = b"email,full_name\n".to_vec();
    for i in 0..n {
        csv.extend_from_slice(format!("person{i:05}@{domain},Person {i}\n").as_bytes());
    }
    csv
}

async fn submitted(app: &TestApp, manager: &TestApp, catalog_id: i64, csv: &[u8]) -> i64 {
    let id = job_id_of(&upload(manager, catalog_id, "invite", csv, "", &[]).await);
    manager
        .post(
            &format!("/partner/acme/catalogs/{catalog_id}/bulk/{id}/submit"),
            &[],
        )
        .await;
    assert_eq!(job(app, id).await.status, "approved");
    id
}

/// Every row done exactly once: one invitation and one email per address.
async fn assert_each_row_done_once(app: &TestApp, id: i64, rows: usize) {
    let done = job(app, id).await;
    assert_eq!(done.status, "done");
    assert_eq!(done.processed_rows as usize, rows);
    let outcomes = outcomes(app, id).await;
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| o.as_deref() == Some("invited"))
    );
    let emails: Vec<String> = count_where(app, |conn| {
        outbound_emails::table
            .filter(outbound_emails::kind.eq("invitation"))
            .select(outbound_emails::to_address)
            .load(conn)
    })
    .await;
    assert_eq!(emails.len(), rows, "one email per row");
    assert_eq!(
        emails.iter().collect::<HashSet<_>>().len(),
        rows,
        "no address twice"
    );
    assert_eq!(app.count("invitations").await as usize, rows);
}

#[tokio::test]
async fn a_run_stopped_mid_way_resumes_at_the_first_unprocessed_row() {
    let app = spawn_app_with(|s| {
        s.bulk_approval_threshold = 100_000;
        s.invitation_emails_per_partner_per_hour = 0;
    })
    .await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let rows = 1_200;
    let id = submitted(&app, &manager, s.catalog_id, &csv_of(rows, "example.org")).await;
    // A runner claims the job, does one batch, and dies without a word: its lease stays.
    let token = uuid::Uuid::new_v4();
    let ctx = app.ctx();
    app.db
        .transaction(move |conn| {
            let lease = chrono::Utc::now() + chrono::Duration::minutes(2);
            partner_catalog::models::bulk::claim_runnable(conn, lease, token)?;
            partner_catalog::services::bulk::run_batch(conn, &ctx, id, token, lease)
        })
        .await
        .unwrap();
    let half = job(&app, id).await;
    assert_eq!(half.processed_rows, 500);
    assert_eq!(half.status, "running");
    // While its lease lasts, nobody else runs the job.
    assert_eq!(run_jobs(&app).await, 0);
    assert_eq!(job(&app, id).await.processed_rows, 500);
    // The lease ends; another runner takes over where it stopped.
    app.db
        .run(move |conn| {
            diesel::update(bulk_jobs::table.find(id))
                .set(
                    bulk_jobs::locked_until
                        .eq(Some(chrono::Utc::now() - chrono::Duration::seconds(1))),
                )
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(run_jobs(&app).await, rows - 500);
    assert_each_row_done_once(&app, id, rows).await;
    // The dead runner's lease token no longer writes anything.
    let ctx = app.ctx();
    let late = app
        .db
        .transaction(move |conn| {
            partner_catalog::services::bulk::run_batch(conn, &ctx, id, token, chrono::Utc::now())
        })
        .await
        .unwrap();
    assert_eq!(late, partner_catalog::services::bulk::Batch::NotOurs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_at_once_never_run_one_job_twice() {
    let app = spawn_app_with(|s| {
        s.database_pool_size = 8;
        s.bulk_approval_threshold = 100_000;
        s.invitation_emails_per_partner_per_hour = 0;
    })
    .await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let rows = 2_000;
    let first = submitted(
        &app,
        &manager,
        s.catalog_id,
        &csv_of(rows / 2, "one.example"),
    )
    .await;
    let second = submitted(
        &app,
        &manager,
        s.catalog_id,
        &csv_of(rows / 2, "two.example"),
    )
    .await;
    let mut runners = Vec::new();
    for _ in 0..2 {
        let (settings, db) = (app.settings.clone(), app.db.clone());
        runners.push(tokio::spawn(async move {
            let runner = BulkJobs::from_settings(&settings, db);
            let mut handled = 0;
            while let Some((n, _)) = runner.turn(&Stop::never()).await.unwrap() {
                handled += n;
            }
            handled
        }));
    }
    let mut total = 0;
    for runner in runners {
        total += runner.await.unwrap();
    }
    assert_eq!(total, rows, "every row handled once across both runners");
    for id in [first, second] {
        assert_eq!(job(&app, id).await.status, "done");
    }
    let emails: Vec<String> = count_where(&app, |conn| {
        outbound_emails::table
            .filter(outbound_emails::kind.eq("invitation"))
            .select(outbound_emails::to_address)
            .load(conn)
    })
    .await;
    assert_eq!(emails.len(), rows);
    assert_eq!(emails.iter().collect::<HashSet<_>>().len(), rows);
}

#[tokio::test]
async fn courses_chosen_for_a_list_are_given_when_its_invitation_is_accepted() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let id = job_id_of(
        &upload(
            &manager,
            s.catalog_id,
            "invite",
            b"",
            "newcomer@example.org",
            &[s.open_course],
        )
        .await,
    );
    manager
        .post(
            &format!("/partner/acme/catalogs/{}/bulk/{id}/submit", s.catalog_id),
            &[],
        )
        .await;
    run_jobs(&app).await;
    let (_, secret) = last_email_to(&app, "newcomer@example.org").await;
    let newcomer = app.another_browser();
    newcomer
        .post(
            &format!("/invitations/{secret}/register"),
            &[
                ("full_name", "New Comer"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ],
        )
        .await
        .assert_redirect_to("/my");
    let enrolled: Vec<(i64, String)> = count_where(&app, |conn| {
        use partner_catalog::models::schema::platform_enrollments as e;
        e::table.select((e::course_id, e::mode)).load(conn)
    })
    .await;
    assert_eq!(enrolled, vec![(s.open_course, "audit".to_string())]);
}
