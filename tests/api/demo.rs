//! The demo data behind `serve --demo` and `seed-demo`.

use diesel::prelude::*;
use partner_catalog::models::schema::{catalog_email_patterns, catalogs, courses, partners};
use reqwest::StatusCode;

use crate::helpers::spawn_app;

const TABLES: [&str; 8] = [
    "users",
    "organisations",
    "partners",
    "partner_managers",
    "courses",
    "catalogs",
    "catalog_courses",
    "catalog_email_patterns",
];

#[tokio::test]
async fn the_demo_holds_what_the_readme_promises_and_seeding_again_changes_nothing() {
    let app = spawn_app().await;
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("first seed");
    let mut first = Vec::new();
    for table in TABLES {
        first.push(app.count(table).await);
    }
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("second seed");
    for (table, before) in TABLES.iter().zip(&first) {
        assert_eq!(app.count(table).await, *before, "{table}");
    }

    let (paid, open, limits, patterns, branded) = app
        .db
        .run(|conn| {
            let paid: i64 = courses::table
                .filter(courses::is_paid.eq(true))
                .count()
                .get_result(conn)?;
            let open: i64 = courses::table
                .filter(courses::is_paid.eq(false))
                .count()
                .get_result(conn)?;
            let limits: Vec<(i32, i32, bool)> = catalogs::table
                .select((
                    catalogs::user_limit,
                    catalogs::course_enrollments_limit,
                    catalogs::is_self_enrollment,
                ))
                .order(catalogs::id)
                .load(conn)?;
            let patterns: Vec<String> = catalog_email_patterns::table
                .select(catalog_email_patterns::pattern)
                .load(conn)?;
            let branded: Vec<(String, String)> = partners::table
                .select((partners::accent_colour, partners::email_sender_name))
                .load(conn)?;
            Ok((paid, open, limits, patterns, branded))
        })
        .await
        .unwrap();
    assert_eq!(paid + open, 12);
    assert!(paid > 0 && open > 0);
    assert!(limits.contains(&(25, 10, false)), "{limits:?}");
    assert!(limits.iter().any(|(_, _, self_enrol)| *self_enrol));
    assert_eq!(patterns, vec![r".*@example\.com".to_string()]);
    assert!(
        branded
            .iter()
            .all(|(logo, sender)| !logo.is_empty() && !sender.is_empty())
    );

    // Eight weeks of history for the analytics: 44 invitations emailed (four more were
    // pre-enrolments), 30 of those accepted, 6 declined; its charts are drawn.
    let manager = app.another_browser();
    manager
        .sign_in("manager@example.com", "demo-manager-password")
        .await;
    let analytics = manager.get("/partner/acme/analytics?period=90").await;
    assert_eq!(analytics.status, StatusCode::OK);
    analytics.assert_contains(
        r#"<span class="stat-value">44</span><span class="stat-label">invitations sent by email"#,
    );
    analytics
        .assert_contains(r#"<span class="stat-value">68%</span><span class="stat-label">accepted"#);
    analytics.assert_contains("<title id=\"funnel-svg-title\">");
    analytics.assert_contains("<title id=\"weekly-svg-title\">");
    let dashboard = manager.get("/partner/acme").await;
    dashboard.assert_contains("Leadership Programme");
    dashboard.assert_contains("34 of 40");

    // The printed sign-ins work and land each person on their own home.
    for (email, password, home) in [
        ("staff@example.com", "demo-staff-password", "/staff"),
        (
            "manager@example.com",
            "demo-manager-password",
            "/partner/acme",
        ),
        ("learner@example.com", "demo-learner-password", "/my"),
    ] {
        let browser = app.another_browser();
        browser.sign_in(email, password).await;
        let home_page = browser.get("/").await;
        assert_eq!(home_page.status, StatusCode::SEE_OTHER, "{email}");
        assert_eq!(home_page.location.as_deref(), Some(home), "{email}");
        assert_eq!(browser.get(home).await.status, StatusCode::OK, "{email}");
    }
}
