//! The analytics pages on a scripted history whose answers are known: the funnel, rates,
//! delays, paid seats, refusals, channels, weeks; empty periods; a catalog with no
//! events; time-zone edges; other partners' events never counted.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use partner_catalog::services::analytics::{self, Period, PeriodInput, Report, Subject};
use reqwest::StatusCode;

use crate::hardening::signed_in_manager;
use crate::helpers::{TestApp, spawn_app};
use crate::journey::{acme_id, setup};

/// An invitation as it stands, with when it was created and answered.
struct Invited<'a> {
    email: &'a str,
    channel: &'a str,
    emailed: bool,
    invited: DateTime<Utc>,
    accepted: Option<DateTime<Utc>>,
    declined: Option<DateTime<Utc>>,
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.create_user(email, "a long password 1", false).await.id
}

/// Writes an invitation, its events (sent when emailed, accepted or declined), and
/// answers its id.
async fn invitation(
    app: &TestApp,
    catalog_id: i64,
    partner_id: i64,
    user: Option<i64>,
    i: Invited<'_>,
) -> i64 {
    let (email, channel) = (i.email.to_string(), i.channel.to_string());
    let (emailed, invited, accepted, declined) = (i.emailed, i.invited, i.accepted, i.declined);
    app.db
        .run(move |conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let row: Id = diesel::sql_query(
                "INSERT INTO invitations (catalog_id, email, user_id, token_hash, channel, invited_at,
                     expires_at, accepted_at, declined_at, send_count, last_sent_at)
                 VALUES ($1, $2, $3, sha256($2::bytea), $4, $5, $5 + interval '30 days', $6, $7,
                     $8, CASE WHEN $8 > 0 THEN $5 END)
                 RETURNING id",
            )
            .bind::<BigInt, _>(catalog_id)
            .bind::<Text, _>(&email)
            .bind::<Nullable<BigInt>, _>(user)
            .bind::<Text, _>(&channel)
            .bind::<Timestamptz, _>(invited)
            .bind::<Nullable<Timestamptz>, _>(accepted)
            .bind::<Nullable<Timestamptz>, _>(declined)
            .bind::<diesel::sql_types::Integer, _>(i32::from(emailed))
            .get_result(conn)?;
            let mut events = Vec::new();
            if emailed {
                events.push(("invitation.sent", invited));
            }
            if let Some(at) = accepted {
                events.push(("invitation.accepted", at));
            }
            if let Some(at) = declined {
                events.push(("invitation.declined", at));
            }
            for (name, at) in events {
                diesel::sql_query(
                    "INSERT INTO tracking_events (id, name, occurred_at, partner_id, catalog_id, user_id, invitation_id, channel)
                     VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7)",
                )
                .bind::<Text, _>(name)
                .bind::<Timestamptz, _>(at)
                .bind::<BigInt, _>(partner_id)
                .bind::<BigInt, _>(catalog_id)
                .bind::<Nullable<BigInt>, _>(user)
                .bind::<BigInt, _>(row.id)
                .bind::<Text, _>(&channel)
                .execute(conn)?;
            }
            Ok(row.id)
        })
        .await
        .unwrap()
}

/// An enrolment event (activated, deactivated or blocked) of a user in a catalog.
async fn enrolment_event(
    app: &TestApp,
    (partner_id, catalog_id, course_id): (i64, i64, i64),
    user: i64,
    name: &'static str,
    at: DateTime<Utc>,
    paid_seat: bool,
    reason: Option<&'static str>,
) {
    app.db
        .run(move |conn| {
            diesel::sql_query(
                "INSERT INTO tracking_events (id, name, occurred_at, partner_id, catalog_id, course_id, user_id, reason, data)
                 VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7,
                     CASE WHEN $8 THEN jsonb_build_object('licence_id', 1) ELSE jsonb_build_object('licence_id', NULL) END)",
            )
            .bind::<Text, _>(name)
            .bind::<Timestamptz, _>(at)
            .bind::<BigInt, _>(partner_id)
            .bind::<BigInt, _>(catalog_id)
            .bind::<BigInt, _>(course_id)
            .bind::<BigInt, _>(user)
            .bind::<Nullable<Text>, _>(reason)
            .bind::<diesel::sql_types::Bool, _>(paid_seat)
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn report(app: &TestApp, subject: &str, period: Period) -> Report {
    let subject = subject.to_string();
    app.db
        .run(move |conn| {
            let staff =
                partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap();
            let actor = partner_catalog::policies::Actor::for_user(&staff, None);
            let partner = partner_catalog::models::partners::find_by_code(conn, "acme")?.unwrap();
            let catalogs = partner_catalog::models::catalogs::for_partner(conn, partner.id)?;
            match subject.as_str() {
                "partner" => analytics::report(conn, &actor, Subject::Partner(&partner), &period),
                "platform" => analytics::report(conn, &actor, Subject::Platform, &period),
                name => {
                    let catalog = catalogs.iter().find(|c| c.name == name).unwrap();
                    analytics::report(conn, &actor, Subject::Catalog(&partner, catalog), &period)
                }
            }
        })
        .await
        .unwrap()
}

fn last_30_days(tz: chrono_tz::Tz) -> Period {
    analytics::period(
        &PeriodInput {
            period: "30".into(),
            ..Default::default()
        },
        tz,
        analytics::today_in(tz),
    )
    .unwrap()
}

fn days(from: &str, until: &str, tz: chrono_tz::Tz) -> Period {
    analytics::period(
        &PeriodInput {
            period: "custom".into(),
            from: from.into(),
            until: until.into(),
        },
        tz,
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn every_measure_matches_a_scripted_history() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let catalog_id = s.catalog_id;
    let partner_id = acme_id(&app).await;
    let course = (partner_id, catalog_id, s.paid_course);
    let now = Utc::now();
    let ago = |days: i64, hours: i64| now - Duration::days(days) + Duration::hours(hours);
    let (u1, u2, u3, u4) = (
        user_id(&app, "u1@example.org").await,
        user_id(&app, "u2@example.org").await,
        user_id(&app, "u3@example.org").await,
        user_id(&app, "u4@example.org").await,
    );
    // Emailed: accepted after 2 h, enrolled 1 h later with a paid seat, released later.
    invitation(
        &app,
        catalog_id,
        partner_id,
        Some(u1),
        Invited {
            email: "u1@example.org",
            channel: "manual",
            emailed: true,
            invited: ago(10, 0),
            accepted: Some(ago(10, 2)),
            declined: None,
        },
    )
    .await;
    enrolment_event(
        &app,
        course,
        u1,
        "enrollment.activated",
        ago(10, 3),
        true,
        None,
    )
    .await;
    enrolment_event(
        &app,
        course,
        u1,
        "enrollment.deactivated",
        ago(5, 0),
        true,
        Some("learner_removed"),
    )
    .await;
    // Emailed: accepted after 4 h, enrolled 3 h later without a paid seat, then refused one.
    invitation(
        &app,
        catalog_id,
        partner_id,
        Some(u2),
        Invited {
            email: "u2@example.org",
            channel: "manual",
            emailed: true,
            invited: ago(9, 0),
            accepted: Some(ago(9, 4)),
            declined: None,
        },
    )
    .await;
    enrolment_event(
        &app,
        course,
        u2,
        "enrollment.activated",
        ago(9, 7),
        false,
        None,
    )
    .await;
    enrolment_event(
        &app,
        course,
        u2,
        "enrollment.blocked",
        ago(8, 0),
        false,
        Some("course_limit_reached"),
    )
    .await;
    // A bulk list: one declined after 6 h, one unanswered.
    invitation(
        &app,
        catalog_id,
        partner_id,
        None,
        Invited {
            email: "b1@example.org",
            channel: "bulk",
            emailed: true,
            invited: ago(8, 0),
            accepted: None,
            declined: Some(ago(8, 6)),
        },
    )
    .await;
    invitation(
        &app,
        catalog_id,
        partner_id,
        None,
        Invited {
            email: "b2@example.org",
            channel: "bulk",
            emailed: true,
            invited: ago(8, 0),
            accepted: None,
            declined: None,
        },
    )
    .await;
    // Self-enrolment: joined at once, no email, no course.
    invitation(
        &app,
        catalog_id,
        partner_id,
        Some(u3),
        Invited {
            email: "u3@example.org",
            channel: "self_enrollment",
            emailed: false,
            invited: ago(7, 0),
            accepted: Some(ago(7, 0)),
            declined: None,
        },
    )
    .await;
    // Before the period: not in the cohort.
    invitation(
        &app,
        catalog_id,
        partner_id,
        Some(u4),
        Invited {
            email: "u4@example.org",
            channel: "manual",
            emailed: true,
            invited: ago(40, 0),
            accepted: Some(ago(40, 1)),
            declined: None,
        },
    )
    .await;
    // A join the learner limit refused.
    app.db
        .run(move |conn| {
            diesel::sql_query("INSERT INTO refused_joins (catalog_id, occurred_at) VALUES ($1, now() - interval '3 days')")
                .bind::<BigInt, _>(catalog_id)
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    // Another partner's busy history, never counted.
    let other = other_partner_catalog(&app).await;
    for n in 0..5 {
        let email = format!("other{n}@example.org");
        let id = user_id(&app, &email).await;
        invitation(
            &app,
            other.1,
            other.0,
            Some(id),
            Invited {
                email: &email,
                channel: "manual",
                emailed: true,
                invited: ago(3, 0),
                accepted: Some(ago(3, 1)),
                declined: None,
            },
        )
        .await;
        enrolment_event(
            &app,
            (other.0, other.1, s.open_course),
            id,
            "enrollment.blocked",
            ago(3, 2),
            false,
            Some("course_limit_reached"),
        )
        .await;
    }

    let r = report(&app, "partner", last_30_days(chrono_tz::UTC)).await;
    let funnel: Vec<(&str, i64)> = r.funnel.iter().map(|s| (s.label, s.count)).collect();
    assert_eq!(
        funnel,
        vec![
            ("sent", 4),
            ("accepted", 2),
            ("enrolled in a course", 2),
            ("given a paid seat", 1)
        ]
    );
    assert_eq!(r.declined, 1);
    assert_eq!(
        (r.acceptance_rate(), r.decline_rate()),
        (Some(50), Some(25))
    );
    // Answers after 2, 4 and 6 h; first enrolments 1 and 3 h after joining.
    let answer = r.answer_delay.unwrap();
    assert_eq!(
        (answer.median / 3600.0, (answer.p90 / 360.0).round() / 10.0),
        (4.0, 5.6)
    );
    let enrolment = r.enrolment_delay.unwrap();
    assert_eq!(
        (
            enrolment.median / 3600.0,
            (enrolment.p90 / 360.0).round() / 10.0
        ),
        (2.0, 2.8)
    );
    assert_eq!(
        (r.accepted_all, r.enrolled_all, r.enrolled_share()),
        (3, 2, Some(67))
    );
    assert_eq!((r.seats_activated, r.seats_released), (1, 1));
    assert_eq!(
        r.blocked,
        vec![
            ("learner limit reached".to_string(), 1),
            ("no paid seat left".to_string(), 1)
        ]
    );
    let channels: Vec<(&str, i64, i64, i64, i64, i64)> = r
        .channels
        .iter()
        .map(|c| {
            (
                c.channel.as_str(),
                c.created,
                c.accepted,
                c.declined,
                c.enrolled,
                c.licensed,
            )
        })
        .collect();
    assert_eq!(
        channels,
        vec![
            ("bulk", 2, 0, 1, 0, 0),
            ("manual", 2, 2, 0, 2, 1),
            ("self_enrollment", 1, 1, 0, 0, 0)
        ]
    );
    let totals = r.weeks.iter().fold((0, 0, 0), |t, w| {
        (t.0 + w.sent, t.1 + w.accepted, t.2 + w.enrolments)
    });
    assert_eq!(totals, (4, 3, 2));
    assert!((5..=6).contains(&r.weeks.len()), "{} weeks", r.weeks.len());
    let seats: Vec<(&str, i64, i64)> = r
        .seats
        .iter()
        .map(|s| (s.catalog.as_str(), s.seats_used, s.seat_limit))
        .collect();
    assert_eq!(seats, vec![("Sales Academy", 0, 1)]);

    // The platform counts both partners.
    let platform = report(&app, "platform", last_30_days(chrono_tz::UTC)).await;
    assert_eq!(platform.funnel[0].count, 9);
    assert_eq!(platform.blocked.iter().map(|(_, n)| n).sum::<i64>(), 7);

    // A period with nothing in it says so.
    let empty = report(
        &app,
        "partner",
        days("2020-01-01", "2020-01-31", chrono_tz::UTC),
    )
    .await;
    assert!(empty.is_empty());
    assert_eq!(empty.funnel[0].count, 0);
    assert_eq!(empty.acceptance_rate(), None);
    assert_eq!(empty.weeks.len(), 5);
    assert!(empty.weeks.iter().all(|w| w.active_learners == 0));
}

/// A second partner with a catalog: (partner id, catalog id).
pub(crate) async fn other_partner_catalog(app: &TestApp) -> (i64, i64) {
    app.db
        .transaction(|conn| {
            let staff =
                partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap();
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
            let catalog = partner_catalog::services::catalogs::create(
                conn,
                &actor,
                partner.id,
                &partner_catalog::services::catalogs::CatalogInput {
                    name: "Beta School".into(),
                    available_start: "2000-01-01T00:00".into(),
                    available_end: "2999-01-01T00:00".into(),
                    ..Default::default()
                },
            )?;
            Ok((partner.id, catalog.id))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn days_are_the_partners_own_and_a_quiet_catalog_reads_as_empty() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let zurich: chrono_tz::Tz = "Europe/Zurich".parse().unwrap();
    let partner_id = app
        .db
        .run(|conn| {
            diesel::sql_query(
                "UPDATE partners SET time_zone = 'Europe/Zurich' WHERE code = 'acme'",
            )
            .execute(conn)?;
            Ok(
                partner_catalog::models::partners::find_by_code(conn, "acme")?
                    .unwrap()
                    .id,
            )
        })
        .await
        .unwrap();
    // 23:30 on 15 January in Zurich is 22:30 UTC; 00:30 on the 16th is 23:30 UTC on the 15th.
    let late = zurich
        .with_ymd_and_hms(2026, 1, 15, 23, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    let after_midnight = zurich
        .with_ymd_and_hms(2026, 1, 16, 0, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(after_midnight.to_rfc3339(), "2026-01-15T23:30:00+00:00");
    invitation(
        &app,
        s.catalog_id,
        partner_id,
        None,
        Invited {
            email: "late@example.org",
            channel: "manual",
            emailed: true,
            invited: late,
            accepted: None,
            declined: None,
        },
    )
    .await;
    invitation(
        &app,
        s.catalog_id,
        partner_id,
        None,
        Invited {
            email: "early@example.org",
            channel: "manual",
            emailed: true,
            invited: after_midnight,
            accepted: None,
            declined: None,
        },
    )
    .await;
    let on_15th = report(&app, "partner", days("2026-01-15", "2026-01-15", zurich)).await;
    let on_16th = report(&app, "partner", days("2026-01-16", "2026-01-16", zurich)).await;
    assert_eq!((on_15th.sent(), on_16th.sent()), (1, 1));
    // 15 and 16 January 2026 are a Thursday and a Friday: one week, starting Monday the 12th.
    assert_eq!(on_16th.weeks.len(), 1);
    assert_eq!(on_16th.weeks[0].week.to_string(), "2026-01-12");
    assert_eq!(on_16th.weeks[0].sent, 1);

    // A catalog with no events at all.
    let staff = app
        .db
        .run(|conn| {
            Ok(partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap())
        })
        .await
        .unwrap();
    app.db
        .transaction(move |conn| {
            partner_catalog::services::catalogs::create(
                conn,
                &partner_catalog::policies::Actor::for_user(&staff, None),
                partner_id,
                &partner_catalog::services::catalogs::CatalogInput {
                    name: "Quiet".into(),
                    available_start: "2000-01-01T00:00".into(),
                    available_end: "2999-01-01T00:00".into(),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    let quiet = report(&app, "Quiet", days("2026-01-01", "2026-01-31", zurich)).await;
    assert!(quiet.is_empty());
    assert_eq!(quiet.sent(), 0);
}

/// The text of each `<text>` and the `<desc>` of the page's charts, parsed as XML.
fn charts(body: &str) -> Vec<roxmltree::Document<'_>> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("a closed svg") + start + "</svg>".len();
        found.push(roxmltree::Document::parse(&rest[start..end]).expect("well-formed SVG"));
        rest = &rest[end..];
    }
    found
}

#[tokio::test]
async fn the_page_draws_well_formed_charts_whose_numbers_match_its_tables_and_csv() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let partner_id = acme_id(&app).await;
    let now = Utc::now();
    for n in 0..6 {
        let email = format!("p{n}@example.org");
        let accepted = (n % 2 == 0).then(|| now - Duration::days(2));
        let user = if accepted.is_some() {
            Some(user_id(&app, &email).await)
        } else {
            None
        };
        invitation(
            &app,
            s.catalog_id,
            partner_id,
            user,
            Invited {
                email: &email,
                channel: if n < 4 { "bulk" } else { "manual" },
                emailed: true,
                invited: now - Duration::days(3),
                accepted,
                declined: None,
            },
        )
        .await;
    }
    let manager = signed_in_manager(&app).await;
    let page = manager.get("/partner/acme/analytics?period=7").await;
    assert_eq!(page.status, StatusCode::OK);
    let svgs = charts(&page.body);
    assert_eq!(svgs.len(), 3, "funnel, weekly and channels (no refusals)");
    let funnel = &svgs[0];
    let desc = funnel
        .descendants()
        .find(|n| n.has_tag_name("desc"))
        .and_then(|n| n.text())
        .unwrap();
    assert_eq!(
        desc,
        "sent: 6; accepted: 3; enrolled in a course: 0; given a paid seat: 0."
    );
    let values: Vec<&str> = funnel
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("class") == Some("chart-value"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(values, vec!["6", "3", "0", "0"]);
    page.assert_contains("<tr><td>sent</td><td>6</td><td>100%</td></tr>");
    page.assert_contains("<tr><td>accepted</td><td>3</td><td>50%</td></tr>");
    page.assert_contains("Nobody was refused in this period.");
    // The same numbers as CSV.
    let csv = manager
        .client
        .get(manager.url("/partner/acme/analytics/funnel.csv?period=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(
        csv.text().await.unwrap(),
        "step,invitations,of_those_sent\nsent,6,100%\naccepted,3,50%\nenrolled in a course,0,0%\ngiven a paid seat,0,0%\ndeclined,0,0%\n"
    );
    let channels = manager
        .get("/partner/acme/analytics/channels.csv?period=7")
        .await;
    assert!(
        channels.body.contains("bulk lists,4,2,0,0,0"),
        "{}",
        channels.body
    );

    // A bad period is explained and keeps what was typed.
    let bad = manager
        .get("/partner/acme/analytics?period=custom&from=2026-02-30&until=2026-03-01")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    bad.assert_contains("href=\"#f-from\">From</a>: is not a date");
    bad.assert_contains("value=\"2026-02-30\"");

    // The catalog's page, and no one else's.
    manager
        .get(&format!(
            "/partner/acme/catalogs/{}/analytics?period=7",
            s.catalog_id
        ))
        .await
        .assert_contains("Analytics · Sales Academy");
    let other = other_partner_catalog(&app).await;
    assert_eq!(
        manager.get("/partner/beta/analytics").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        manager
            .get(&format!("/partner/acme/catalogs/{}/analytics", other.1))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        manager.get("/staff/analytics").await.status,
        StatusCode::FORBIDDEN
    );
    let staff = app.another_browser();
    staff.sign_in("staff@example.org", "staff password 1").await;
    let platform = staff.get("/staff/analytics?period=7").await;
    platform.assert_contains("Analytics · the whole platform");
    // The platform adds up each partner's own days.
    platform.assert_contains("in each partner&#39;s own time zone");
    // Across partners, each catalog is named with its partner.
    platform.assert_contains("<th>Partner</th><th>Catalog</th>");
    platform.assert_contains("<td>Beta</td>");
    staff
        .get("/partner/beta/analytics")
        .await
        .assert_contains("Analytics · Beta");
}

/// Everything the analytics roll-ups and catalog counts hold (deltas summed) and the
/// invitations' first enrolments, as sorted lines.
fn roll_up_lines(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        line: String,
    }
    let lines: Vec<Line> = diesel::sql_query(
        "SELECT line FROM (
             SELECT format('event %s %s %s %s %s: %s', catalog_id, day, name, reason, paid_seat, SUM(n)) AS line
             FROM analytics_event_days GROUP BY catalog_id, day, name, reason, paid_seat HAVING SUM(n) <> 0
             UNION ALL
             SELECT format('cohort %s %s %s %s: %s %s %s %s %s', catalog_id, day, channel, emailed,
                           SUM(created), SUM(accepted), SUM(declined), SUM(enrolled), SUM(licensed))
             FROM analytics_cohort_days GROUP BY catalog_id, day, channel, emailed
             HAVING (SUM(created), SUM(accepted), SUM(declined), SUM(enrolled), SUM(licensed)) <> (0, 0, 0, 0, 0)
             UNION ALL
             SELECT format('active day %s %s %s', catalog_id, day, user_id) FROM analytics_active_days
             UNION ALL
             SELECT format('active week %s %s %s %s', level, scope_id, week, user_id) FROM analytics_active_weeks
             UNION ALL
             SELECT format('active count %s %s %s: %s', level, scope_id, week, SUM(n))
             FROM analytics_active_week_counts GROUP BY level, scope_id, week HAVING SUM(n) <> 0
             UNION ALL
             SELECT format('invitation %s: %s %s', id, first_enrolment_at, given_paid_seat) FROM invitations
             UNION ALL
             SELECT format('catalog %s: %s learners, %s paid seats', catalog_id, SUM(learners), SUM(paid_seats))
             FROM catalog_counts GROUP BY catalog_id HAVING (SUM(learners), SUM(paid_seats)) <> (0, 0)
         ) all_lines ORDER BY line",
    )
    .load(conn)?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}

/// The roll-ups and catalog counts as the triggers left them equal those counted again
/// from the events, invitations, learners and licences (in a transaction rolled back
/// afterwards).
pub(crate) async fn assert_counters_match_a_recount(app: &TestApp) {
    let (kept, recounted) = app
        .db
        .run(|conn| {
            let mut found = None;
            let outcome = conn.transaction::<(), diesel::result::Error, _>(|conn| {
                let kept = roll_up_lines(conn)?;
                diesel::sql_query(
                    "UPDATE invitations SET accepted_at = accepted_at WHERE accepted_at IS NOT NULL",
                )
                .execute(conn)?;
                diesel::sql_query("SELECT analytics_rebuild(id) FROM partners").execute(conn)?;
                diesel::sql_query("DELETE FROM catalog_counts").execute(conn)?;
                diesel::sql_query(
                    "INSERT INTO catalog_counts (catalog_id, learners, paid_seats)
                     SELECT c.id,
                         (SELECT COUNT(*) FROM catalog_learners l WHERE l.catalog_id = c.id AND l.is_active),
                         (SELECT COUNT(*) FROM licences s JOIN courses k ON k.id = s.course_id
                          WHERE s.catalog_id = c.id AND s.is_active AND k.is_paid)
                     FROM catalogs c",
                )
                .execute(conn)?;
                found = Some((kept, roll_up_lines(conn)?));
                Err(diesel::result::Error::RollbackTransaction)
            });
            assert!(matches!(
                outcome,
                Err(diesel::result::Error::RollbackTransaction)
            ));
            Ok(found.expect("counted"))
        })
        .await
        .unwrap();
    let missing: Vec<&String> = recounted.iter().filter(|l| !kept.contains(l)).collect();
    let extra: Vec<&String> = kept.iter().filter(|l| !recounted.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "counters differ from a recount:\n  missing {missing:#?}\n  extra {extra:#?}"
    );
}

async fn sql(app: &TestApp, statement: &'static str) {
    app.db
        .run(move |conn| Ok(diesel::sql_query(statement).execute(conn)?))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_roll_ups_equal_a_recount_after_every_kind_of_change_and_folding_changes_no_answer() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let catalog_id = s.catalog_id;
    let partner_id = acme_id(&app).await;
    let paid = (partner_id, catalog_id, s.paid_course);
    let free = (partner_id, catalog_id, s.open_course);
    let now = Utc::now();
    let ago = |days: i64, hours: i64| now - Duration::days(days) + Duration::hours(hours);
    let mut people = Vec::new();
    for n in 0..8 {
        people.push(user_id(&app, &format!("r{n}@example.org")).await);
    }
    // Eight invitations over two weeks, through several channels, in every state.
    // Channel, emailed, created days ago, answered (accepted or declined) hours later.
    type State = (&'static str, bool, i64, Option<i64>, Option<i64>);
    let states: [State; 8] = [
        ("manual", true, 13, Some(2), None),
        ("manual", true, 12, None, Some(5)),
        ("bulk", true, 11, Some(30), None),
        ("bulk", true, 9, None, None),
        ("api", true, 8, Some(1), None),
        ("self_enrollment", false, 6, Some(0), None),
        ("pre_enrollment", false, 5, Some(0), None),
        ("manual", true, 2, None, None),
    ];
    for (n, (channel, emailed, days, accepted, declined)) in states.into_iter().enumerate() {
        let invited = ago(days, 0);
        let email = format!("r{n}@example.org");
        invitation(
            &app,
            catalog_id,
            partner_id,
            accepted.map(|_| people[n]),
            Invited {
                email: &email,
                channel,
                emailed,
                invited,
                accepted: accepted.map(|h| invited + Duration::hours(h)),
                declined: declined.map(|h| invited + Duration::hours(h)),
            },
        )
        .await;
    }
    // Enrolments before an acceptance (not counted for it), after it, paid and free;
    // refusals; a release.
    let activated = "enrollment.activated";
    enrolment_event(&app, free, people[0], activated, ago(13, 1), false, None).await;
    enrolment_event(&app, paid, people[0], activated, ago(13, 5), true, None).await;
    enrolment_event(&app, free, people[2], activated, ago(9, 0), false, None).await;
    enrolment_event(&app, paid, people[4], activated, ago(7, 0), true, None).await;
    enrolment_event(&app, paid, people[5], activated, ago(6, 3), false, None).await;
    let blocked = "enrollment.blocked";
    enrolment_event(
        &app,
        paid,
        people[6],
        blocked,
        ago(5, 1),
        false,
        Some("course_limit_reached"),
    )
    .await;
    enrolment_event(
        &app,
        paid,
        people[3],
        blocked,
        ago(4, 0),
        false,
        Some("not_a_learner"),
    )
    .await;
    enrolment_event(
        &app,
        paid,
        people[4],
        "enrollment.deactivated",
        ago(3, 0),
        true,
        Some("deactivated_by_manager"),
    )
    .await;
    assert_counters_match_a_recount(&app).await;

    // Later changes, as any writer may make them: an open invitation accepted after an
    // enrolment already recorded for its person; an acceptance moved later than its first
    // enrolment; a decline; a withdrawal; a first email to an invitation never sent; a
    // change of channel; an invitation deleted; a person's account gone.
    sql(&app, "UPDATE invitations SET user_id = (SELECT id FROM users WHERE email = 'r3@example.org'), accepted_at = invited_at + interval '6 days' WHERE email = 'r3@example.org'").await;
    enrolment_event(&app, free, people[3], activated, ago(2, 0), false, None).await;
    sql(&app, "UPDATE invitations SET accepted_at = accepted_at + interval '8 days' WHERE email = 'r0@example.org'").await;
    sql(&app, "UPDATE invitations SET declined_at = invited_at + interval '1 hour' WHERE email = 'r7@example.org'").await;
    sql(
        &app,
        "UPDATE invitations SET removed_at = now() WHERE email = 'r1@example.org'",
    )
    .await;
    sql(
        &app,
        "UPDATE invitations SET send_count = 1 WHERE email = 'r6@example.org'",
    )
    .await;
    sql(
        &app,
        "UPDATE invitations SET channel = 'api' WHERE email = 'r2@example.org'",
    )
    .await;
    sql(
        &app,
        "DELETE FROM invitations WHERE email = 'r5@example.org'",
    )
    .await;
    assert_counters_match_a_recount(&app).await;

    // Folding the deltas changes no answer, for the partner, a catalog and the platform.
    let period = last_30_days(chrono_tz::UTC);
    let before = [
        report(&app, "partner", period.clone()).await,
        report(&app, "platform", period.clone()).await,
        report(&app, "Sales Academy", period.clone()).await,
    ];
    let unfolded = count(
        &app,
        "SELECT COUNT(*) AS n FROM analytics_event_days WHERE NOT folded",
    )
    .await;
    assert!(unfolded > 1, "{unfolded}");
    let folded = app
        .db
        .transaction(|conn| Ok(partner_catalog::models::analytics::fold(conn)?))
        .await
        .unwrap();
    assert!(folded >= unfolded, "{folded} < {unfolded}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM analytics_event_days WHERE NOT folded"
        )
        .await,
        0
    );
    let after = [
        report(&app, "partner", period.clone()).await,
        report(&app, "platform", period.clone()).await,
        report(&app, "Sales Academy", period.clone()).await,
    ];
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    assert_counters_match_a_recount(&app).await;

    // New deltas over folded rows, then the partner moves to another time zone: every
    // day is counted again in its calendar.
    enrolment_event(&app, paid, people[2], activated, ago(1, 0), true, None).await;
    sql(
        &app,
        "UPDATE partners SET time_zone = 'Pacific/Kiritimati' WHERE code = 'acme'",
    )
    .await;
    assert_counters_match_a_recount(&app).await;
    enrolment_event(&app, free, people[6], activated, ago(0, -1), false, None).await;
    assert_counters_match_a_recount(&app).await;
}

async fn count(app: &TestApp, query: &'static str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    app.db
        .run(move |conn| Ok(diesel::sql_query(query).get_result::<Count>(conn)?.n))
        .await
        .unwrap()
}

#[tokio::test]
async fn catalog_counts_follow_learners_licences_and_courses_that_become_paid_or_free() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let partner_id = acme_id(&app).await;
    let mut people = Vec::new();
    for n in 0..4 {
        let user = user_id(&app, &format!("c{n}@example.org")).await;
        let email = format!("c{n}@example.org");
        let invitation = invitation(
            &app,
            s.catalog_id,
            partner_id,
            Some(user),
            Invited {
                email: &email,
                channel: "manual",
                emailed: true,
                invited: Utc::now() - Duration::days(2),
                accepted: Some(Utc::now() - Duration::days(1)),
                declined: None,
            },
        )
        .await;
        people.push((user, invitation));
    }
    // Joins, one of them later removed; licences of the paid and the open course, one
    // released, one handed to another catalog.
    for (user, invitation) in &people {
        let (user, invitation, catalog) = (*user, *invitation, s.catalog_id);
        app.db
            .run(move |conn| {
                diesel::sql_query(
                    "INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active) VALUES ($1, $2, $3, true)",
                )
                .bind::<BigInt, _>(catalog)
                .bind::<BigInt, _>(user)
                .bind::<BigInt, _>(invitation)
                .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
    }
    let licence = |user: i64, course: i64| {
        let catalog = s.catalog_id;
        let app = &app;
        async move {
            app.db
                .run(move |conn| {
                    diesel::sql_query(
                        "INSERT INTO licences (user_id, course_id, catalog_id) VALUES ($1, $2, $3)",
                    )
                    .bind::<BigInt, _>(user)
                    .bind::<BigInt, _>(course)
                    .bind::<BigInt, _>(catalog)
                    .execute(conn)?;
                    Ok(())
                })
                .await
                .unwrap()
        }
    };
    for (user, _) in &people {
        licence(*user, s.paid_course).await;
    }
    licence(people[0].0, s.open_course).await;
    licence(people[1].0, s.open_course).await;
    let counts = || async {
        let catalog = s.catalog_id;
        app.db
            .run(move |conn| {
                Ok(partner_catalog::models::catalog_counts::figures(
                    conn,
                    partner_catalog::models::catalog_counts::FiguresOf::Catalog(catalog),
                    0,
                    1,
                )?)
            })
            .await
            .unwrap()
            .first()
            .map(|c| (c.learners, c.paid_seats))
    };
    assert_eq!(counts().await, Some((4, 4)));
    sql(&app, "UPDATE catalog_learners SET is_active = false, removed_at = now() WHERE user_id = (SELECT id FROM users WHERE email = 'c3@example.org')").await;
    sql(&app, "UPDATE licences SET is_active = false WHERE user_id = (SELECT id FROM users WHERE email = 'c2@example.org')").await;
    assert_eq!(counts().await, Some((3, 3)));
    assert_counters_match_a_recount(&app).await;
    // The open course becomes paid: its two active licences take paid seats; the paid
    // one becomes free: its three leave them.
    sql(&app, "UPDATE courses SET modes = '{audit,verified}' WHERE id = (SELECT course_id FROM licences l JOIN courses k ON k.id = l.course_id WHERE NOT k.is_paid LIMIT 1)").await;
    assert_eq!(counts().await, Some((3, 5)));
    sql(&app, "UPDATE courses SET modes = '{audit}' WHERE id IN (SELECT course_id FROM licences GROUP BY course_id HAVING COUNT(*) = 4)").await;
    assert_eq!(counts().await, Some((3, 2)));
    assert_counters_match_a_recount(&app).await;
    let folded = app
        .db
        .transaction(|conn| Ok(partner_catalog::models::catalog_counts::fold(conn)?))
        .await
        .unwrap();
    assert!(folded > 1, "{folded}");
    assert_eq!(counts().await, Some((3, 2)));
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM catalog_counts").await,
        1
    );
    assert_counters_match_a_recount(&app).await;
}
