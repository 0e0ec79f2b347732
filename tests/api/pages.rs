//! What people see: feedback after each action, warnings before sending, refusals that
//! say where to go next.

use diesel::prelude::*;
use partner_catalog::models::schema::catalogs;
use reqwest::StatusCode;

use crate::hardening::signed_in_manager;
use crate::helpers::spawn_app;
use crate::journey::setup;

#[tokio::test]
async fn before_sending_a_manager_is_warned_of_addresses_outside_the_patterns_and_past_the_places()
{
    let app = spawn_app().await;
    let s = setup(&app, Some(r".*@example\.org")).await;
    let catalog_id = s.catalog_id;
    app.db
        .run(move |conn| {
            diesel::update(catalogs::table.find(catalog_id))
                .set(catalogs::user_limit.eq(1))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let manager = signed_in_manager(&app).await;
    let page = format!("/partner/acme/catalogs/{catalog_id}/invitations");
    let warned = manager
        .post(&page, &[("emails", "a@example.org\nb@elsewhere.com")])
        .await;
    assert_eq!(warned.status, StatusCode::OK);
    warned.assert_contains("Before sending, please check");
    warned.assert_contains("match none of the catalog's email patterns: b@elsewhere.com");
    warned.assert_contains("1 place left and you are inviting 2 people");
    warned.assert_contains("name=\"confirmed\" value=\"1\"");
    warned.assert_contains("a@example.org\nb@elsewhere.com</textarea>");
    assert_eq!(
        app.count("invitations").await,
        0,
        "nothing sent before confirming"
    );

    let sent = manager
        .post(
            &page,
            &[
                ("emails", "a@example.org\nb@elsewhere.com"),
                ("confirmed", "1"),
            ],
        )
        .await;
    sent.assert_contains("2 invitations sent.");
    sent.assert_contains("<strong>a@example.org</strong>: invitation sent");
    sent.assert_contains(
        "<strong>b@elsewhere.com</strong>: invitation sent, but the catalog has no place left",
    );
    assert_eq!(app.count("invitations").await, 2);
}

#[tokio::test]
async fn a_refusal_keeps_the_navigation_of_the_person_signed_in_and_says_where_to_go() {
    let app = spawn_app().await;
    setup(&app, None).await;
    app.signed_in_learner().await;
    let refused = app.get("/staff").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("href=\"/my\">My catalogs</a>");
    refused.assert_contains("Signed in as");
    refused.assert_contains("Go to your start page");
    let missing = app.get("/nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_contains("Signed in as");
    // Anonymous visitors are offered to sign in.
    let anonymous = app.another_browser().get("/nowhere").await;
    anonymous.assert_contains("href=\"/login\">Sign in</a>");
}

#[tokio::test]
async fn an_invitation_into_a_full_catalog_says_so_before_any_form() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let token = crate::journey::invite(&app, s.catalog_id, "late@example.org").await;
    let catalog_id = s.catalog_id;
    app.db
        .run(move |conn| {
            diesel::update(catalogs::table.find(catalog_id))
                .set(catalogs::user_limit.eq(1))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let first = crate::journey::invite(&app, s.catalog_id, "first@example.org").await;
    app.another_browser()
        .post(
            &format!("/invitations/{first}/register"),
            &[
                ("full_name", "First"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ],
        )
        .await
        .assert_redirect_to("/my");
    let page = app.get(&format!("/invitations/{token}")).await;
    page.assert_contains("has no place left right now");
    assert!(
        !page.body.contains("Create account and accept"),
        "no form that can only fail"
    );
    page.assert_contains("Decline the invitation");
}

#[tokio::test]
async fn go_to_course_follows_the_learning_platform_address_when_one_is_set() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.course_url_template = Some("https://lms.example.org/courses/{course_key}/".into())
    })
    .await;
    let s = setup(&app, None).await;
    let token = crate::journey::invite(&app, s.catalog_id, "ada@example.org").await;
    app.post(
        &format!("/invitations/{token}/register"),
        &[
            ("full_name", "Ada"),
            ("password", "a long password 1"),
            ("confirm_password", "a long password 1"),
        ],
    )
    .await;
    app.post(
        &format!(
            "/my/catalogs/{}/courses/{}/enrol",
            s.catalog_id, s.open_course
        ),
        &[],
    )
    .await;
    app.get("/my").await.assert_contains(
        "href=\"https://lms.example.org/courses/course-v1%3AACMEx%2BOPEN%2B1/\">Go to course",
    );
}

/// The reason given for the newest audit entry of an action.
async fn reason_of(app: &crate::helpers::TestApp, action: &str) -> Option<String> {
    let action = action.to_string();
    app.db
        .run(move |conn| {
            use partner_catalog::models::schema::audit_entries as a;
            Ok(a::table
                .filter(a::action.eq(action))
                .order(a::id.desc())
                .select(a::reason)
                .first(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn changes_that_are_hard_to_undo_ask_first_and_keep_the_reason() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let courses = format!("/partner/acme/catalogs/{}/courses", s.catalog_id);
    let removal = format!("{courses}/{}/remove", s.open_course);
    let confirm = manager.get(&removal).await;
    confirm.assert_contains("Remove Course course-v1:ACMEx+OPEN+1 from Sales Academy?");
    let too_long = "x".repeat(501);
    let refused = manager.post(&removal, &[("reason", &too_long)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("Remove Course course-v1:ACMEx+OPEN+1");
    manager
        .post(&removal, &[("reason", "Replaced by the new edition")])
        .await
        .assert_redirect_to(&courses);
    assert_eq!(
        reason_of(&app, "catalog.course_remove").await.as_deref(),
        Some("Replaced by the new edition")
    );

    let staff = app.another_browser();
    staff
        .sign_in("staff@example.org", "staff password 1")
        .await
        .assert_redirect_to("/");
    let (partner_id, manager_id) = app
        .db
        .run(|conn| {
            let partner = partner_catalog::models::partners::find_by_code(conn, "acme")?.unwrap();
            let manager =
                partner_catalog::models::users::find_by_email(conn, "manager@acme.example")?
                    .unwrap();
            Ok((partner.id, manager.id))
        })
        .await
        .unwrap();
    let unassign = format!("/staff/partners/{partner_id}/managers/{manager_id}/remove");
    staff
        .get(&unassign)
        .await
        .assert_contains("Remove manager@acme.example as a manager of ACME Corporation?");
    staff
        .post(&unassign, &[("reason", "Moved to another team")])
        .await
        .assert_redirect_to(&format!("/staff/partners/{partner_id}/edit"));
    assert_eq!(
        reason_of(&app, "partner.manager_unassign").await.as_deref(),
        Some("Moved to another team")
    );

    let make_staff = staff
        .get(&format!("/staff/users/{manager_id}/staff/confirm?value=1"))
        .await;
    make_staff.assert_contains("Make manager@acme.example staff?");
    make_staff.assert_contains("name=\"is_staff\" value=\"1\"");
    let deactivate = staff
        .get(&format!("/staff/users/{manager_id}/active/confirm?value=0"))
        .await;
    deactivate.assert_contains("Deactivate manager@acme.example?");
    assert_eq!(
        staff
            .get(&format!(
                "/staff/users/{manager_id}/nonsense/confirm?value=1"
            ))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_audit_log_reads_as_sentences_and_staff_filter_it_and_download_it() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let catalog_id = s.catalog_id;
    manager
        .post(
            &format!("/partner/acme/catalogs/{catalog_id}/invitations"),
            &[("emails", "ada@example.org")],
        )
        .await
        .assert_contains("invitation sent");

    // Who (and as what), did what, to what, where, when, in the partner's time zone.
    let log = manager.get("/partner/acme/audit").await;
    log.assert_contains(
        "<strong>manager@acme.example</strong> <span class=\"muted\">(partner manager)</span> invited someone: ada@example.org, in Sales Academy.",
    );
    log.assert_contains(" UTC</time>");
    assert!(!log.body.contains("invitation #"), "{}", log.body);
    manager
        .get("/partner/acme")
        .await
        .assert_contains("invited someone: ada@example.org");

    // Staff see the whole platform, filter it and download it.
    let staff = app.another_browser();
    staff
        .sign_in("staff@example.org", "staff password 1")
        .await
        .assert_redirect_to("/");
    let all = staff.get("/staff/audit").await;
    all.assert_contains("created the catalog Sales Academy (ACME Corporation).");
    all.assert_contains("invited someone: ada@example.org, in Sales Academy (ACME Corporation).");
    let only_invitations = staff
        .get("/staff/audit?partner=ACME&action=invitation.create&from=2000-01-01")
        .await;
    only_invitations.assert_contains("ada@example.org");
    assert!(
        !only_invitations
            .body
            .contains("created the catalog Sales Academy")
    );
    let nobody = staff.get("/staff/audit?actor=nobody@example.org").await;
    nobody.assert_contains("No entry matches.");
    let future = staff.get("/staff/audit?from=2999-01-01").await;
    future.assert_contains("No entry matches.");

    let bad = staff
        .get("/staff/audit?from=25.11.2026&until=2000-01-01&action=made.up")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    bad.assert_contains("href=\"#f-from\">From</a>: is not a date");
    bad.assert_contains("href=\"#f-action\">Action</a>: is not an action the log records");
    bad.assert_contains("value=\"25.11.2026\"");

    let csv = staff
        .client
        .get(staff.url("/staff/audit.csv?action=invitation.create"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"audit-")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("occurred_at_utc,who,who_email,role,action,what_happened"));
    assert!(lines[1].contains(",partner manager,invitation.create,invited someone,invitation,"));
    assert!(lines[1].contains("ada@example.org,ACME Corporation,Sales Academy"));

    // Managers and learners cannot read it.
    assert_eq!(
        manager.get("/staff/audit").await.status,
        StatusCode::FORBIDDEN
    );
    let download = manager
        .client
        .get(manager.url("/staff/audit.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn managers_see_who_the_limits_turned_away_in_the_last_30_days() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let catalog_id = s.catalog_id;
    app.db
        .run(move |conn| {
            diesel::update(catalogs::table.find(catalog_id))
                .set(catalogs::user_limit.eq(2))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    // Two learners fill the catalog; both ask for the one paid seat.
    for email in ["first@example.org", "second@example.org"] {
        let token = crate::journey::invite(&app, catalog_id, email).await;
        let browser = app.another_browser();
        browser
            .post(
                &format!("/invitations/{token}/register"),
                &[
                    ("full_name", "L"),
                    ("password", "a long password 1"),
                    ("confirm_password", "a long password 1"),
                ],
            )
            .await
            .assert_redirect_to("/my");
        browser
            .post(
                &format!("/my/catalogs/{catalog_id}/courses/{}/enrol", s.paid_course),
                &[],
            )
            .await;
    }
    // A third person cannot join: the learner limit is reached.
    let token = crate::journey::invite(&app, catalog_id, "third@example.org").await;
    let refused = app
        .another_browser()
        .post(
            &format!("/invitations/{token}/register"),
            &[
                ("full_name", "L"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ],
        )
        .await;
    assert_ne!(refused.location.as_deref(), Some("/my"));
    assert_eq!(app.count("refused_joins").await, 1, "{}", refused.body);

    let manager = signed_in_manager(&app).await;
    let dashboard = manager.get("/partner/acme").await;
    dashboard.assert_contains(">1 turned away</a> in 30 days");
    dashboard.assert_contains(">1 refused a seat</a> in 30 days");
    let settings = manager
        .get(&format!("/partner/acme/catalogs/{catalog_id}"))
        .await;
    settings.assert_contains(
        "In the last 30 days, 1 attempt to join was refused because the learner limit was reached, and 1 request for a paid seat was refused because no paid seat was left.",
    );
}

#[tokio::test]
async fn signing_in_from_an_invitation_offers_its_address_and_a_list_offers_its_name() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    // A list gives the invitee's name: their sign-up form offers it.
    let uploaded = crate::bulk::upload(
        &manager,
        s.catalog_id,
        "invite",
        b"email,full_name\nnamed@example.org,Ada Lovelace\n",
        "",
        &[],
    )
    .await;
    let id: i64 = uploaded
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    manager
        .post(
            &format!("/partner/acme/catalogs/{}/bulk/{id}/submit", s.catalog_id),
            &[],
        )
        .await;
    crate::bulk::run_jobs(&app).await;
    let (_, secret) = crate::journey::last_email_to(&app, "named@example.org").await;
    let page = app
        .another_browser()
        .get(&format!("/invitations/{secret}"))
        .await;
    page.assert_contains("name=\"full_name\" type=\"text\" value=\"Ada Lovelace\"");

    // Someone with an account is offered to sign in, with the invited address filled in.
    app.create_user("member@example.org", "member password 1", false)
        .await;
    let token = crate::journey::invite(&app, s.catalog_id, "member@example.org").await;
    let browser = app.another_browser();
    let invitation = browser.get(&format!("/invitations/{token}")).await;
    let login = format!("/login?next=/invitations/{token}&amp;email=member%40example.org");
    invitation.assert_contains(&login);
    let form = browser
        .get(&format!(
            "/login?next=/invitations/{token}&email=member%40example.org"
        ))
        .await;
    form.assert_contains("value=\"member@example.org\"");

    // Signing out says so.
    let signed_out = manager.sign_out().await;
    signed_out.assert_redirect_to("/login");
    manager
        .get("/login")
        .await
        .assert_contains("You are signed out.");
}

#[tokio::test]
async fn a_catalog_is_previewed_duplicated_archived_and_restored() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let catalog_id = s.catalog_id;
    // A member, and someone invited but not yet joined.
    let token = crate::journey::invite(&app, catalog_id, "member@example.org").await;
    let member = app.another_browser();
    member
        .post(
            &format!("/invitations/{token}/register"),
            &[
                ("full_name", "M"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ],
        )
        .await
        .assert_redirect_to("/my");
    let waiting = crate::journey::invite(&app, catalog_id, "waiting@example.org").await;
    let manager = signed_in_manager(&app).await;
    let base = format!("/partner/acme/catalogs/{catalog_id}");

    // Preview: the catalog as learners see it, access in words, nothing to click.
    let preview = manager.get(&format!("{base}/preview")).await;
    preview.assert_contains("This is how learners of Sales Academy see it");
    preview.assert_contains("free access or full access with certificate");
    preview.assert_contains("<span class=\"badge\">paid seat</span>");
    preview.assert_contains("disabled>Enrol");

    // Duplicate: settings and courses, nobody in it.
    let copied = manager.post(&format!("{base}/duplicate"), &[]).await;
    let copy_path = copied.location.clone().unwrap();
    let copy_id: i64 = copy_path.rsplit('/').next().unwrap().parse().unwrap();
    let copy = manager.get(&copy_path).await;
    copy.assert_contains("Copy of Sales Academy was created with the same settings");
    manager
        .get(&format!("{copy_path}/courses"))
        .await
        .assert_contains("Course course-v1:ACMEx+OPEN+1");
    let people: i64 = app
        .db
        .run(move |conn| {
            use partner_catalog::models::schema::{catalog_learners, invitations};
            let invited: i64 = invitations::table
                .filter(invitations::catalog_id.eq(copy_id))
                .count()
                .get_result(conn)?;
            let learners: i64 = catalog_learners::table
                .filter(catalog_learners::catalog_id.eq(copy_id))
                .count()
                .get_result(conn)?;
            Ok(invited + learners)
        })
        .await
        .unwrap();
    assert_eq!(people, 0);

    // Archive asks first, then hides the catalog from learners and lists.
    manager
        .get(&format!("{base}/archive"))
        .await
        .assert_contains("Archive Sales Academy?");
    manager
        .post(&format!("{base}/archive"), &[("reason", "season over")])
        .await
        .assert_redirect_to("/partner/acme");
    let dashboard = manager.get("/partner/acme").await;
    dashboard.assert_contains("Sales Academy is archived.");
    assert!(!dashboard.body.contains(&format!(
        "catalogs/{catalog_id}/invitations\">Sales Academy</a>"
    )));
    dashboard.assert_contains("Archived catalogs (1)");
    manager
        .get("/partner/acme/archived")
        .await
        .assert_contains(">Sales Academy</a>");
    let my = member.get("/my").await;
    assert!(!my.body.contains("Sales Academy"), "{}", my.body);
    let enrol = member
        .post(
            &format!("/my/catalogs/{catalog_id}/courses/{}/enrol", s.open_course),
            &[],
        )
        .await;
    assert_ne!(enrol.status, StatusCode::OK);
    assert_eq!(
        app.count("platform_enrollments").await,
        0,
        "nobody enrols through an archived catalog"
    );
    assert!(
        !app.another_browser()
            .get(&format!("/invitations/{waiting}"))
            .await
            .body
            .contains("Create account and accept")
    );
    manager
        .get("/partner/acme/audit")
        .await
        .assert_contains("archived the catalog Sales Academy.");

    // Restored, it is as it was.
    manager
        .post(&format!("{base}/restore"), &[])
        .await
        .assert_redirect_to(&base);
    member.get("/my").await.assert_contains("Sales Academy");
    manager.get("/partner/acme").await.assert_contains(&format!(
        "catalogs/{catalog_id}/invitations\">Sales Academy</a>"
    ));
}

#[tokio::test]
async fn the_staff_user_list_shows_each_persons_roles_and_last_sign_in() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let _manager = signed_in_manager(&app).await;
    crate::journey::invite(&app, s.catalog_id, "never@example.org").await;
    let token = crate::journey::invite(&app, s.catalog_id, "member@example.org").await;
    app.another_browser()
        .post(
            &format!("/invitations/{token}/register"),
            &[
                ("full_name", "M"),
                ("password", "a long password 1"),
                ("confirm_password", "a long password 1"),
            ],
        )
        .await
        .assert_redirect_to("/my");
    app.create_user("idle@example.org", "idle password 1", false)
        .await;
    let staff = app.another_browser();
    staff
        .sign_in("staff@example.org", "staff password 1")
        .await
        .assert_redirect_to("/");
    let list = staff.get("/staff/users").await;
    list.assert_contains("partner manager of <a href=\"/partner/acme\">ACME Corporation</a>");
    list.assert_contains("<li>learner in 1 catalog</li>");
    list.assert_contains("<span class=\"muted\">never</span>");
    list.assert_contains("Open<span class=\"visually-hidden\"> idle@example.org</span>");
}

#[tokio::test]
async fn allowed_email_domains_become_exact_patterns_and_read_back_as_domains() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let path = format!("/partner/acme/catalogs/{}", s.catalog_id);
    let form = |domains: &'static str, patterns: &'static str| {
        vec![
            ("name", "Sales Academy"),
            ("available_start", "2000-01-01T00:00"),
            ("available_end", "2999-01-01T00:00"),
            ("user_limit", "0"),
            ("course_enrollments_limit", "1"),
            ("allowed_domains", domains),
            ("email_patterns", patterns),
        ]
    };
    // A domain that is not one, and a pattern starting with "*", are explained.
    let refused = manager
        .post(&path, &form("acme.com\nacme", "*@partner.org"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("line 2 (acme) is not a domain such as acme.com");
    refused.assert_contains("it starts with “*”, which repeats nothing");
    refused.assert_contains("acme.com\nacme</textarea>");

    manager
        .post(
            &path,
            &form(
                "@ACME.com\nmail.acme.co.uk",
                r".*@(sales|support)\.partner\.org",
            ),
        )
        .await
        .assert_redirect_to(&path);
    let stored: Vec<String> = app
        .db
        .run(move |conn| {
            Ok(partner_catalog::models::catalogs::patterns_of(
                conn,
                s.catalog_id,
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![
            r".*@acme\.com".to_string(),
            r".*@mail\.acme\.co\.uk".to_string(),
            r".*@(sales|support)\.partner\.org".to_string(),
        ]
    );
    let page = manager.get(&path).await;
    page.assert_contains("acme.com\nmail.acme.co.uk</textarea>");
    page.assert_contains(r">.*@(sales|support)\.partner\.org</textarea>");
    page.assert_contains(r"Stored as the patterns <code>.*@acme\.com</code>");
    // The address test agrees.
    manager
        .get(&format!("{path}?test_email=ada%40acme.com"))
        .await
        .assert_contains(r"matches <code>.*@acme\.com</code>");
}
