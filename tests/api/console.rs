//! The partner console: rule 10 over every route, forms, actions and exports.

use partner_catalog::domain::invitation_status::Channel;
use partner_catalog::models::users::User;
use partner_catalog::policies::Actor;
use partner_catalog::services::{self, ServiceContext};
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app};

pub struct Console {
    pub staff: User,
    pub partner_a: (i64, String),
    pub partner_b: (i64, String),
    pub catalog_a: i64,
    pub catalog_b: i64,
    pub invitation_b: i64,
    pub learner_b: User,
    pub licence_b: i64,
    pub course_b: i64,
}

/// Two partners, each with a manager and a catalog; partner B's catalog has an
/// invitation, a learner and a licence.
pub async fn console_fixture(app: &TestApp) -> Console {
    let staff = app
        .create_user("staff@example.org", "staff password 1", true)
        .await;
    app.create_user("manager-a@example.org", "manager password a", false)
        .await;
    app.create_user("manager-b@example.org", "manager password b", false)
        .await;
    let learner_b = app
        .create_user("learner-b@example.org", "learner password b", false)
        .await;
    let ctx = ServiceContext::from_settings(&app.settings);
    let (staff_c, learner_c) = (staff.clone(), learner_b.clone());
    app.db
        .transaction(move |conn| {
            let actor = Actor::for_user(&staff_c, None);
            let org = services::organisations::create(
                conn,
                &actor,
                &services::organisations::OrganisationInput {
                    short_name: "ORGx".into(),
                    name: "Org".into(),
                },
            )?;
            let mut partners = Vec::new();
            for (code, manager) in [
                ("alpha", "manager-a@example.org"),
                ("beta", "manager-b@example.org"),
            ] {
                let partner = services::partners::create(
                    conn,
                    &actor,
                    &services::partners::PartnerInput {
                        organisation_id: org.id.to_string(),
                        code: code.into(),
                        name: format!("Partner {code}"),
                        time_zone: "UTC".into(),
                        ..Default::default()
                    },
                )?;
                services::partners::assign_manager(conn, &ctx, &actor, partner.id, manager)?;
                partners.push(partner);
            }
            let course = services::courses::create(
                conn,
                &actor,
                &services::courses::CourseInput {
                    key: "course-v1:ORGx+PAID+1".into(),
                    title: "Paid course".into(),
                    organisation_id: org.id.to_string(),
                    modes: "audit verified".into(),
                    ..Default::default()
                },
            )?;
            let mut catalogs = Vec::new();
            for partner in &partners {
                let catalog = services::catalogs::create(
                    conn,
                    &actor,
                    partner.id,
                    &services::catalogs::CatalogInput {
                        name: format!("Catalog of {}", partner.code),
                        available_start: "2000-01-01T00:00".into(),
                        available_end: "2999-01-01T00:00".into(),
                        ..Default::default()
                    },
                )?;
                services::catalogs::add_course(conn, &actor, catalog.id, course.id, None)?;
                catalogs.push(catalog);
            }
            let sent = services::invitations::create(
                conn,
                &ctx,
                &actor,
                catalogs[1].id,
                &learner_c.email,
                Channel::Manual,
            )?;
            let learner_actor = Actor::for_user(&learner_c, None);
            services::invitations::accept(conn, &learner_actor, sent.token.as_str())?;
            let access = services::enrollments::request_course_access(
                conn,
                &learner_actor,
                catalogs[1].id,
                course.id,
            )?;
            let licence = match access {
                services::enrollments::CourseAccess::Granted { licence_id } => licence_id,
                other => panic!("unexpected {other:?}"),
            };
            Ok(Console {
                staff: staff_c,
                partner_a: (partners[0].id, partners[0].code.clone()),
                partner_b: (partners[1].id, partners[1].code.clone()),
                catalog_a: catalogs[0].id,
                catalog_b: catalogs[1].id,
                invitation_b: sent.invitation.id,
                learner_b: learner_c,
                licence_b: licence,
                course_b: course.id,
            })
        })
        .await
        .unwrap()
}

fn partner_b_pages(f: &Console) -> Vec<String> {
    let (b, c, i, l, u) = (
        &f.partner_b.1,
        f.catalog_b,
        f.invitation_b,
        f.licence_b,
        f.learner_b.id,
    );
    vec![
        format!("/partner/{b}"),
        format!("/partner/{b}/audit"),
        format!("/partner/{b}/catalogs/new"),
        format!("/partner/{b}/catalogs/{c}"),
        format!("/partner/{b}/catalogs/{c}/courses"),
        format!("/partner/{b}/catalogs/{c}/invitations"),
        format!("/partner/{b}/catalogs/{c}/invitations/{i}/remove"),
        format!("/partner/{b}/catalogs/{c}/learners"),
        format!("/partner/{b}/catalogs/{c}/learners/{u}/remove"),
        format!("/partner/{b}/catalogs/{c}/licences"),
        format!("/partner/{b}/catalogs/{c}/licences/{l}/deactivate"),
        format!("/partner/{b}/catalogs/{c}/export/invitations.csv"),
        format!("/partner/{b}/catalogs/{c}/export/learners.csv"),
        format!("/partner/{b}/catalogs/{c}/export/licences.csv"),
    ]
}

fn partner_b_actions(f: &Console) -> Vec<(String, Vec<(&'static str, String)>)> {
    let (b, c, i, l, u, k) = (
        &f.partner_b.1,
        f.catalog_b,
        f.invitation_b,
        f.licence_b,
        f.learner_b.id,
        f.course_b,
    );
    vec![
        (
            format!("/partner/{b}/catalogs"),
            vec![
                ("name", "Sneaky".into()),
                ("available_start", "2020-01-01T00:00".into()),
                ("available_end", "2030-01-01T00:00".into()),
            ],
        ),
        (
            format!("/partner/{b}/catalogs/{c}"),
            vec![
                ("name", "Renamed".into()),
                ("available_start", "2020-01-01T00:00".into()),
                ("available_end", "2030-01-01T00:00".into()),
            ],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/courses"),
            vec![("course_id", k.to_string())],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/courses/{k}/remove"),
            vec![],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/courses/{k}/move"),
            vec![("direction", "down".into())],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/invitations"),
            vec![("emails", "new@example.org".into())],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/invitations/{i}/resend"),
            vec![],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/invitations/{i}/remove"),
            vec![("reason", "x".into())],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/learners/{u}/remove"),
            vec![("reason", "x".into())],
        ),
        (
            format!("/partner/{b}/catalogs/{c}/licences/{l}/deactivate"),
            vec![("reason", "x".into())],
        ),
    ]
}

async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "catalogs",
        "catalog_courses",
        "invitations",
        "audit_entries",
        "outbound_emails",
        "tracking_events",
    ] {
        counts.push(app.count(table).await);
    }
    counts
}

#[tokio::test]
async fn rule_10_a_manager_of_another_partner_gets_404_everywhere_and_changes_nothing() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    app.sign_in("manager-a@example.org", "manager password a")
        .await
        .assert_redirect_to("/");
    let before = snapshot(&app).await;
    for page in partner_b_pages(&f) {
        assert_eq!(
            app.get(&page).await.status,
            StatusCode::NOT_FOUND,
            "GET {page}"
        );
    }
    for (action, fields) in partner_b_actions(&f) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            app.post(&action, &fields).await.status,
            StatusCode::NOT_FOUND,
            "POST {action}"
        );
    }
    // Partner B's catalog under partner A's address is not found either.
    let (a, c) = (&f.partner_a.1, f.catalog_b);
    assert_eq!(
        app.get(&format!("/partner/{a}/catalogs/{c}/invitations"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(snapshot(&app).await, before);
    // Their own console works.
    assert_eq!(
        app.get(&format!("/partner/{a}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/partner/{a}/catalogs/{}", f.catalog_a))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rule_10_a_learner_is_refused_everywhere() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    app.sign_in("learner-b@example.org", "learner password b")
        .await
        .assert_redirect_to("/");
    let before = snapshot(&app).await;
    for page in partner_b_pages(&f) {
        let status = app.get(&page).await.status;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "GET {page}: {status}"
        );
    }
    for (action, fields) in partner_b_actions(&f) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let status = app.post(&action, &fields).await.status;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "POST {action}: {status}"
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn rule_10_staff_open_any_partners_console() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    app.sign_in(&f.staff.email, "staff password 1")
        .await
        .assert_redirect_to("/");
    for page in partner_b_pages(&f) {
        assert_eq!(app.get(&page).await.status, StatusCode::OK, "GET {page}");
    }
}

#[tokio::test]
async fn a_manager_builds_a_catalog_invites_resends_revokes_and_sees_it_audited() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let a = f.partner_a.1.clone();
    app.sign_in("manager-a@example.org", "manager password a")
        .await
        .assert_redirect_to("/");
    let dashboard = app.get(&format!("/partner/{a}")).await;
    dashboard.assert_contains("Catalog of alpha");

    let created = app
        .post(
            &format!("/partner/{a}/catalogs"),
            &[
                ("name", "Winter <School>"),
                ("available_start", "2020-01-01T09:00"),
                ("available_end", "2999-01-01T09:00"),
                ("user_limit", "25"),
                ("course_enrollments_limit", "10"),
                ("email_patterns", ".*@corp\\.example"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let location = created.location.unwrap();
    let catalog_id: i64 = location.split('/').nth(4).unwrap().parse().unwrap();

    // Courses: add, then see them in order.
    app.post(
        &format!("/partner/{a}/catalogs/{catalog_id}/courses"),
        &[("course_id", &f.course_b.to_string())],
    )
    .await
    .assert_redirect_to(&location);
    let courses = app.get(&location).await;
    courses.assert_contains("Paid course");
    courses.assert_contains("Winter &#60;School&#62;");

    // Invite two addresses and a name; each is reported with its outcome, in a notice
    // (not an error) since some were sent, and the one not sent stays in the box.
    let invitations = format!("/partner/{a}/catalogs/{catalog_id}/invitations");
    let response = app
        .post(
            &invitations,
            &[("emails", "one@corp.example, John Smith\nthree@corp.example")],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    response.assert_contains("class=\"flash flash-info\"");
    response.assert_contains("2 invitations sent; 1 not sent");
    response.assert_contains("<strong>one@corp.example</strong>: invitation sent");
    response.assert_contains(
        "<strong>John Smith</strong>: not sent: &#34;John Smith&#34; is not an email address",
    );
    response.assert_contains(">John Smith</textarea>");
    let response = app
        .post(&invitations, &[("emails", "two@corp.example")])
        .await;
    response.assert_contains("class=\"flash flash-success\"");
    response.assert_contains("1 invitation sent.");
    let list = app.get(&invitations).await;
    list.assert_contains("one@corp.example");
    list.assert_contains("two@corp.example");

    // Resend and revoke.
    let id = app
        .db
        .run(move |conn| {
            use diesel::prelude::*;
            use partner_catalog::models::schema::invitations::dsl::*;
            Ok(invitations
                .filter(email.eq("two@corp.example"))
                .select(id)
                .first::<i64>(conn)?)
        })
        .await
        .unwrap();
    // Back to the row that changed.
    app.post(&format!("{invitations}/{id}/resend"), &[])
        .await
        .assert_redirect_to(&format!("{invitations}#invitation-{id}"));
    app.get(&format!("{invitations}/{id}/remove"))
        .await
        .assert_contains("Revoke the invitation sent to two@corp.example");
    app.post(
        &format!("{invitations}/{id}/remove"),
        &[("reason", "sent by mistake")],
    )
    .await
    .assert_redirect_to(&invitations);
    app.get(&format!("{invitations}?status=removed"))
        .await
        .assert_contains("two@corp.example");
    let sent_only = app.get(&format!("{invitations}?status=sent")).await;
    assert!(!sent_only.body.contains("two@corp.example"));

    let audit = app
        .get(&format!("/partner/{a}/audit?catalog={catalog_id}"))
        .await;
    for sentence in [
        "created the catalog Winter &#60;School&#62;.",
        "added a course: Paid course",
        "invited someone: one@corp.example, in Winter &#60;School&#62;.",
        "sent an invitation again: two@corp.example",
        "revoked an invitation: two@corp.example",
    ] {
        audit.assert_contains(sentence);
    }
    audit.assert_contains("Why: <q>sent by mistake</q>");
    let filtered = app
        .get(&format!("/partner/{a}/audit?action=invitation.revoke"))
        .await;
    assert!(!filtered.body.contains("added a course: "));
    filtered.assert_contains("revoked an invitation: two@corp.example");

    // Export.
    let csv = app
        .get(&format!(
            "/partner/{a}/catalogs/{catalog_id}/export/invitations.csv"
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("email,status,channel"));
    assert!(csv.body.contains("two@corp.example,removed,manual"));
}

#[tokio::test]
async fn catalog_form_validation_names_fields_keeps_input_and_writes_nothing() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let a = f.partner_a.1.clone();
    app.sign_in("manager-a@example.org", "manager password a")
        .await;
    let before = snapshot(&app).await;
    let response = app
        .post(
            &format!("/partner/{a}/catalogs"),
            &[
                ("name", ""),
                ("available_start", "2030-01-01T00:00"),
                ("available_end", "2029-01-01T00:00"),
                ("user_limit", "-3"),
                ("course_enrollments_limit", "many"),
                ("support_email", "nope"),
                ("alternative_link", "ftp://x"),
                ("email_patterns", ".*@ok\\.com\n(unclosed\n[z-a]"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    for text in [
        "is required",
        "the end must not be before the start",
        "must be 0 or more",
        "is not a whole number",
        "is not an email address",
        "must be a link starting with https://",
        "Line 2 (<code>(unclosed</code>): a bracket “(” is opened and never closed with “)”.",
        "What the pattern engine says about line 2",
        "Line 3 (<code>[z-a]</code>)",
        "value=\"-3\"",
        "(unclosed\n[z-a]</textarea>",
    ] {
        response.assert_contains(text);
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn pasting_more_than_fifty_addresses_points_to_bulk_and_sends_nothing() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let a = f.partner_a.1.clone();
    app.sign_in("manager-a@example.org", "manager password a")
        .await;
    let many: Vec<String> = (0..51).map(|n| format!("p{n}@example.org")).collect();
    let before = app.count("invitations").await;
    let response = app
        .post(
            &format!("/partner/{a}/catalogs/{}/invitations", f.catalog_a),
            &[("emails", &many.join("\n"))],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("51 addresses were pasted");
    response.assert_contains("Use a bulk list for more");
    assert_eq!(app.count("invitations").await, before);
}

#[tokio::test]
async fn the_address_tester_says_which_pattern_matches() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let a = f.partner_a.1.clone();
    app.sign_in("manager-a@example.org", "manager password a")
        .await;
    let edit = format!("/partner/{a}/catalogs/{}", f.catalog_a);
    let response = app
        .post(
            &edit,
            &[
                ("name", "Catalog of alpha"),
                ("available_start", "2000-01-01T00:00"),
                ("available_end", "2999-01-01T00:00"),
                ("is_self_enrollment", "on"),
                ("email_patterns", ".*@first\\.org\n.*@second\\.org"),
            ],
        )
        .await;
    response.assert_redirect_to(&edit);
    let tested = app
        .get(&format!("{edit}?test_email=Someone@SECOND.org"))
        .await;
    tested.assert_contains("matches <code>.*@second\\.org</code>");
    tested.assert_contains("Could join on their own");
    let tested = app
        .get(&format!("{edit}?test_email=someone@third.org"))
        .await;
    tested.assert_contains("matches no pattern");
    let tested = app.get(&format!("{edit}?test_email=nonsense")).await;
    tested.assert_contains("is not an email address");
}

#[tokio::test]
async fn courses_are_reordered_with_buttons() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let a = f.partner_a.1.clone();
    let staff = f.staff.clone();
    let catalog = f.catalog_a;
    let second = app
        .db
        .transaction(move |conn| {
            let actor = Actor::for_user(&staff, None);
            let org =
                partner_catalog::models::organisations::find_by_short_name(conn, "ORGx")?.unwrap();
            let course = services::courses::create(
                conn,
                &actor,
                &services::courses::CourseInput {
                    key: "course-v1:ORGx+OPEN+1".into(),
                    title: "Open course".into(),
                    organisation_id: org.id.to_string(),
                    modes: "audit".into(),
                    ..Default::default()
                },
            )?;
            services::catalogs::add_course(conn, &actor, catalog, course.id, None)?;
            Ok(course.id)
        })
        .await
        .unwrap();
    app.sign_in("manager-a@example.org", "manager password a")
        .await;
    let page = format!("/partner/{a}/catalogs/{catalog}/courses");
    let listing = app.get(&page).await;
    assert!(listing.body.find("Paid course").unwrap() < listing.body.find("Open course").unwrap());
    app.post(&format!("{page}/{second}/move"), &[("direction", "up")])
        .await
        .assert_redirect_to(&format!("{page}#course-{second}"));
    app.get(&page)
        .await
        .assert_contains(&format!("<tr id=\"course-{second}\" tabindex=\"-1\">"));
    let listing = app.get(&page).await;
    assert!(listing.body.find("Open course").unwrap() < listing.body.find("Paid course").unwrap());
}

#[tokio::test]
async fn removing_a_learner_releases_their_seat_and_is_audited_with_the_reason() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let b = f.partner_b.1.clone();
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    let learners = format!("/partner/{b}/catalogs/{}/learners", f.catalog_b);
    let listing = app.get(&learners).await;
    listing.assert_contains("learner-b@example.org");
    app.post(
        &format!("{learners}/{}/remove", f.learner_b.id),
        &[("reason", "left the team")],
    )
    .await
    .assert_redirect_to(&learners);
    let active_licences = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use partner_catalog::models::schema::licences::dsl::*;
            Ok(licences
                .filter(is_active.eq(true))
                .count()
                .get_result::<i64>(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(active_licences, 0);
    app.get(&format!("{learners}?status=removed"))
        .await
        .assert_contains("learner-b@example.org");
    app.get(&format!("/partner/{b}/audit"))
        .await
        .assert_contains("left the team");
}

#[tokio::test]
async fn csv_exports_neutralise_formulas() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let learner = f.learner_b.id;
    app.db
        .run(move |conn| {
            Ok(partner_catalog::models::users::set_full_name(
                conn,
                learner,
                "=HYPERLINK(\"http://evil\")",
            )?)
        })
        .await
        .unwrap();
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    let b = f.partner_b.1.clone();
    let csv = app
        .get(&format!(
            "/partner/{b}/catalogs/{}/export/learners.csv",
            f.catalog_b
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body
            .starts_with("email,full_name,active,joined_at,removed_at\n"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{}",
        csv.body
    );
    let licences = app
        .get(&format!(
            "/partner/{b}/catalogs/{}/export/licences.csv",
            f.catalog_b
        ))
        .await;
    assert!(
        licences.body.contains(
            "learner-b@example.org,course-v1:ORGx+PAID+1,Paid course,Catalog of beta,yes"
        ),
        "{}",
        licences.body
    );
}

#[tokio::test]
async fn a_large_export_streams_every_row() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    let catalog = f.catalog_b;
    app.db
        .run(move |conn| {
            use diesel::prelude::*;
            diesel::sql_query(
                "INSERT INTO invitations (catalog_id, email, token_hash, channel, expires_at) \
                 SELECT $1, 'bulk' || n || '@example.org', sha256(('t' || n)::bytea), 'bulk', now() + interval '1 day' \
                 FROM generate_series(1, 5000) AS n",
            )
            .bind::<diesel::sql_types::BigInt, _>(catalog)
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    let csv = app
        .get(&format!(
            "/partner/{}/catalogs/{catalog}/export/invitations.csv",
            f.partner_b.1
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.body.lines().count(), 1 + 1 + 5000);
}

async fn add_open_invitations(app: &TestApp, catalog: i64, count: i64) {
    app.db
        .run(move |conn| {
            use diesel::prelude::*;
            diesel::sql_query(
                "INSERT INTO invitations (catalog_id, email, token_hash, channel, expires_at) \
                 SELECT $1, 'many' || n || '@example.org', sha256(('m' || n)::bytea), 'bulk', now() + interval '1 day' \
                 FROM generate_series(1, $2) AS n",
            )
            .bind::<diesel::sql_types::BigInt, _>(catalog)
            .bind::<diesel::sql_types::BigInt, _>(count)
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// Manager B signed in, `count` open invitations added to catalog B; answers the path of
/// that catalog's invitation list.
async fn manager_b_at_invitations(app: &TestApp, count: i64) -> String {
    let f = console_fixture(app).await;
    add_open_invitations(app, f.catalog_b, count).await;
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    format!(
        "/partner/{}/catalogs/{}/invitations",
        f.partner_b.1, f.catalog_b
    )
}

#[tokio::test]
async fn searching_addresses_ignores_case_and_takes_wildcards_literally() {
    let app = spawn_app().await;
    let base = manager_b_at_invitations(&app, 120).await;
    let found = |body: &str| {
        let mut addresses = listed_addresses(body);
        addresses.sort();
        addresses
    };
    for typed in ["MANY11", "many11", "Many11@Example.ORG"] {
        let page = app.get(&format!("{base}?q={}", urlencode(typed))).await;
        assert_eq!(page.status, StatusCode::OK, "{typed}");
        let mut expected: Vec<String> = (1..=120)
            .map(|n| format!("many{n}@example.org"))
            .filter(|address| address.contains(&typed.to_lowercase()))
            .collect();
        expected.sort();
        assert!(!expected.is_empty());
        assert_eq!(found(&page.body), expected, "{typed}");
    }
    // `%` and `_` are letters in a search, not wildcards.
    for typed in ["many%1", "many_1", "%", "_"] {
        let page = app.get(&format!("{base}?q={}", urlencode(typed))).await;
        assert_eq!(page.status, StatusCode::OK, "{typed}");
        assert!(
            found(&page.body).is_empty(),
            "{typed}: {:?}",
            found(&page.body)
        );
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The address of the pager link with this `rel` (or `aria-label`), as a browser reads it.
fn pager_link(body: &str, marker: &str) -> Option<String> {
    let at = body.find(marker)?;
    let tag = &body[body[..at].rfind("<a href=\"")? + 9..at];
    let href = &tag[..tag.find('"')?];
    Some(
        href.replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#x27;", "'")
            .replace("&#39;", "'"),
    )
}

/// The invitation addresses a page of the list shows, in order.
fn listed_addresses(body: &str) -> Vec<String> {
    body.match_indices("@example.org")
        .filter_map(|(at, _)| {
            let start = body[..at].rfind(|c: char| !(c.is_alphanumeric() || c == '.'))? + 1;
            Some(body[start..at + 12].to_string())
        })
        .filter(|a| a.starts_with("many"))
        .fold(Vec::new(), |mut seen, a| {
            if seen.last() != Some(&a) {
                seen.push(a);
            }
            seen
        })
}

#[tokio::test]
async fn long_lists_count_up_to_a_cap_and_page_by_key_to_either_end() {
    let app = spawn_app().await;
    let base = manager_b_at_invitations(&app, 1_100).await;
    let first = app.get(&base).await;
    first.assert_contains("Page 1 · more than 1000 in all");
    assert!(pager_link(&first.body, "rel=\"prev\"").is_none());
    // Page by page to the end: every invitation once, the last page counts them all.
    let mut seen = listed_addresses(&first.body);
    let mut page = first;
    let mut pages = 1;
    while let Some(next) = pager_link(&page.body, "rel=\"next\"") {
        assert!(next.contains("after="), "{next}");
        page = app.get(&next).await;
        assert_eq!(page.status, StatusCode::OK, "{next}");
        pages += 1;
        seen.extend(listed_addresses(&page.body));
        assert!(pages <= 45, "more pages than entries");
    }
    assert_eq!(pages, 45);
    page.assert_contains("Page 45 of 45 · 1101 in all");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 1100, "an address twice or missing");
    assert_eq!(unique.len(), 1100);
    // Straight to the last page, then back page by page: the same entries, in order.
    let last_url = pager_link(&app.get(&base).await.body, "aria-label=\"Last page\"").unwrap();
    let mut page = app.get(&last_url).await;
    page.assert_contains("Last page · more than 1000 in all");
    assert!(pager_link(&page.body, "rel=\"next\"").is_none());
    let mut backwards = vec![listed_addresses(&page.body)];
    while let Some(prev) = pager_link(&page.body, "rel=\"prev\"") {
        assert!(prev.contains("before="), "{prev}");
        page = app.get(&prev).await;
        // Counted back from an uncounted end, a page does not know its number.
        if pager_link(&page.body, "rel=\"prev\"").is_some() {
            assert!(!page.body.contains("Page 1 ·"), "{}", page.body);
            page.assert_contains("More than 1000 in all");
        }
        backwards.push(listed_addresses(&page.body));
        assert!(backwards.len() <= 45, "more pages than entries");
    }
    page.assert_contains("Page 1 · more than 1000 in all");
    let backwards: Vec<String> = backwards.into_iter().rev().flatten().collect();
    assert_eq!(backwards, seen);
    // Links edited by hand or gone stale never fail: an unreadable key starts at the
    // first page; a key past the end says the list changed and offers the first page.
    for edited in [
        "after=%5B%22garbage%22%5D",
        "after=not-json",
        "before=%5B%222026-01-01T00%3A00%3A00Z%22%2C%22x%22%5D",
        "after=%5B%22-infinity%22%2C%221%22%5D",
        "last=2",
    ] {
        let page = app.get(&format!("{base}?{edited}")).await;
        assert_eq!(page.status, StatusCode::OK, "{edited}");
    }
    let beyond = app
        .get(&format!(
            "{base}?after=%5B%221970-01-01T00%3A00%3A00Z%22%2C%220%22%5D&page=99"
        ))
        .await;
    assert_eq!(beyond.status, StatusCode::OK);
    beyond.assert_contains("Nothing more here");
    assert!(!beyond.body.contains("rel=\"next\""));
    assert!(pager_link(&beyond.body, "aria-label=\"First page\"").is_some());
    let unreadable = app.get(&format!("{base}?page=abc")).await;
    assert_eq!(unreadable.status, StatusCode::BAD_REQUEST);
    unreadable.assert_contains("This address has a value that cannot be read");
    // A filtered list under the cap is counted exactly.
    let found = app.get(&format!("{base}?q=many1099")).await;
    found.assert_contains("1 in all");
}

#[tokio::test]
async fn the_dashboard_counts_pending_invitations_up_to_its_cap() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    add_open_invitations(&app, f.catalog_b, 1_001).await;
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    let dashboard = app.get(&format!("/partner/{}", f.partner_b.1)).await;
    dashboard.assert_contains("more than 1000");
}

#[tokio::test]
async fn resending_is_rate_limited_per_invitation() {
    let app = crate::helpers::spawn_app_with(|s| s.resend_interval_seconds = 60).await;
    let f = console_fixture(&app).await;
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    let base = format!(
        "/partner/{}/catalogs/{}/invitations",
        f.partner_b.1, f.catalog_b
    );
    let invite = app.post(&base, &[("emails", "fresh@example.org")]).await;
    assert_eq!(invite.status, StatusCode::OK, "{}", invite.body);
    // The list says when it can be sent again rather than offering a button that fails.
    invite.assert_contains("Can be sent again from");
    let id = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use partner_catalog::models::schema::invitations;
            Ok(invitations::table
                .filter(invitations::email.eq("fresh@example.org"))
                .select(invitations::id)
                .first::<i64>(conn)?)
        })
        .await
        .unwrap();
    let emails_before = app.count("outbound_emails").await;
    let no_fields: &[(&str, &str)] = &[];
    let resend = app.post(&format!("{base}/{id}/resend"), no_fields).await;
    assert_eq!(resend.status, StatusCode::SEE_OTHER);
    app.get(&base)
        .await
        .assert_contains("This invitation was just sent. Wait");
    assert_eq!(app.count("outbound_emails").await, emails_before);
}

#[tokio::test]
async fn an_over_long_reason_is_refused_with_the_confirmation_kept_and_nothing_changed() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    app.sign_in("manager-b@example.org", "manager password b")
        .await;
    let before = snapshot(&app).await;
    let reason = "x".repeat(501);
    let base = format!("/partner/{}/catalogs/{}", f.partner_b.1, f.catalog_b);
    for action in [
        format!("{base}/invitations/{}/remove", f.invitation_b),
        format!("{base}/learners/{}/remove", f.learner_b.id),
        format!("{base}/licences/{}/deactivate", f.licence_b),
    ] {
        let response = app.post(&action, &[("reason", reason.as_str())]).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{action}");
        response.assert_contains("Reason is too long (at most 500 characters)");
        response.assert_contains(&format!("value=\"{reason}\""));
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn malformed_addresses_never_get_a_500() {
    let app = spawn_app().await;
    let f = console_fixture(&app).await;
    app.sign_in("staff@example.org", "staff password 1").await;
    let catalog = format!("/partner/{}/catalogs/{}", f.partner_b.1, f.catalog_b);
    let pages = [
        "/staff/users".to_string(),
        "/staff/partners".to_string(),
        "/staff/courses".to_string(),
        "/staff/organisations".to_string(),
        "/staff/outbox".to_string(),
        format!("/partner/{}/audit", f.partner_b.1),
        format!("{catalog}/invitations"),
        format!("{catalog}/learners"),
        format!("{catalog}/licences"),
        format!("{catalog}/courses"),
    ];
    let queries = [
        "page=-1",
        "page=0",
        "page=99999999999999999999",
        "page=9223372036854775807",
        "page=1.5",
        "q=%00",
        "q=%FF%FE",
        "q=%25%5F%5C",
        "q=<script>alert(1)</script>",
        "status=bogus",
        "course=abc&status=x",
        "catalog=zz&action=%00",
        "shared=2",
    ];
    for page in &pages {
        for query in queries {
            let response = app.get(&format!("{page}?{query}")).await;
            assert!(
                matches!(response.status.as_u16(), 200 | 400 | 404),
                "{page}?{query}: {}",
                response.status
            );
            assert!(
                !response.body.contains("<script>alert(1)"),
                "{page}?{query}"
            );
        }
    }
    for path in [
        format!("{catalog}/invitations/abc/remove"),
        format!("{catalog}/learners/99999999999999999999/remove"),
        "/staff/users/-1".to_string(),
        "/invitations/%2e%2e".to_string(),
    ] {
        let response = app.get(&path).await;
        assert!(
            !response.status.is_server_error(),
            "{path}: {}",
            response.status
        );
    }
    // PostgreSQL text cannot hold NUL: such input is refused, nothing is written.
    let before = app.count("organisations").await;
    let response = app
        .post(
            "/staff/organisations",
            &[("short_name", "NULx"), ("name", "before\0after")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    response.assert_contains("must not contain the NUL character");
    response.assert_contains("value=\"NULx\"");
    assert_eq!(app.count("organisations").await, before);
}
