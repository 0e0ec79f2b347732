//! Database connections per request: one checkout however many units of work a page
//! runs, no ping on checkout, and a connection closed under the pool replaced without
//! the visitor noticing.

use diesel::prelude::*;
use diesel::sql_types::Text;
use reqwest::StatusCode;

use crate::hardening::signed_in_manager;
use crate::helpers::{admin_url, spawn_app};
use crate::journey::setup;

#[tokio::test]
async fn a_page_takes_one_connection_however_many_units_of_work_it_runs() {
    let app = spawn_app().await;
    setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    // Each loads the signed-in person, then the page's own data in one or more steps.
    for path in [
        "/partner/acme",
        "/partner/acme/analytics?period=30",
        "/account",
    ] {
        let before = app.db.checkouts();
        let page = manager.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(app.db.checkouts() - before, 1, "{path}");
    }
}

#[tokio::test]
async fn console_lists_load_the_signed_in_person_with_their_data_in_one_unit_of_work() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let catalog = format!("/partner/acme/catalogs/{}", s.catalog_id);
    for path in [
        "/partner/acme".to_string(),
        "/partner/acme/audit".to_string(),
        format!("{catalog}/invitations"),
        format!("{catalog}/invitations?status=sent&q=example"),
        format!("{catalog}/learners"),
        format!("{catalog}/licences"),
    ] {
        let before = app.db.units_of_work();
        let page = manager.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.contains("href=\"/partner/acme\">My partner"),
            "{path}: the navigation knows who is signed in"
        );
        assert_eq!(app.db.units_of_work() - before, 1, "{path}");
    }
}

#[tokio::test]
async fn console_lists_refuse_ended_sessions_and_people_who_manage_nothing() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let pages = [
        "/partner/acme".to_string(),
        format!("/partner/acme/catalogs/{}/invitations", s.catalog_id),
    ];
    // Someone who manages no partner: nothing there for them.
    app.create_user("nobody@example.org", "nobody password 1", false)
        .await;
    let nobody = app.another_browser();
    nobody
        .sign_in("nobody@example.org", "nobody password 1")
        .await
        .assert_redirect_to("/");
    for path in &pages {
        assert_eq!(
            nobody.get(path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // A session ended elsewhere is over on these pages too, and stays over.
    let elsewhere = manager.copy_of_this_browser();
    manager
        .post("/account/sign-out-everywhere", &[])
        .await
        .assert_redirect_to("/login");
    for path in &pages {
        let page = elsewhere.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location
                .as_deref()
                .is_some_and(|to| to.starts_with("/login")),
            "{path}"
        );
    }
    assert_eq!(
        elsewhere.get("/account").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_connection_closed_under_the_pool_is_replaced_and_the_page_still_answers() {
    let app = spawn_app().await;
    setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    assert_eq!(manager.get("/partner/acme").await.status, StatusCode::OK);
    // Every idle connection of the pool is closed by the server, as a restart would.
    let database = app
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let mut admin = PgConnection::establish(&admin_url()).unwrap();
    #[derive(QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ended: bool,
    }
    let ended: Vec<Ended> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<Text, _>(&database)
    .load(&mut admin)
    .unwrap();
    assert!(ended.iter().any(|e| e.ended), "no connection was open");
    for _ in 0..3 {
        let page = manager.get("/partner/acme").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_contains("Sales Academy");
    }
}

#[tokio::test]
async fn the_licence_list_counts_without_its_joins_what_the_joined_list_holds() {
    use partner_catalog::models::enrollments;
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let (catalog, paid, open) = (s.catalog_id, s.paid_course, s.open_course);
    // 10 learners: each a licence for the paid course, every other one also for the open
    // course; a third of the paid ones deactivated.
    app.db
        .transaction(move |conn| {
            diesel::sql_query(
                "WITH people AS (
                     INSERT INTO users (email, full_name, password_hash)
                     SELECT 'holder' || n || '@example.org', 'Holder ' || n, 'x'
                     FROM generate_series(1, 10) n RETURNING id)
                 INSERT INTO licences (user_id, course_id, catalog_id, is_active)
                 SELECT id, $1, $3, id % 3 <> 0 FROM people
                 UNION ALL SELECT id, $2, $3, true FROM people WHERE id % 2 = 0",
            )
            .bind::<diesel::sql_types::BigInt, _>(paid)
            .bind::<diesel::sql_types::BigInt, _>(open)
            .bind::<diesel::sql_types::BigInt, _>(catalog)
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    for (course, active) in [
        (None, None),
        (Some(paid), None),
        (Some(open), None),
        (None, Some(true)),
        (None, Some(false)),
        (Some(paid), Some(false)),
    ] {
        assert_counted_as_recounted(
            &app,
            format!("{course:?} {active:?}"),
            move |conn, page| {
                enrollments::list_owned_by_catalog(conn, catalog, course, active, page)
            },
            move |conn| {
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM licences l
                     JOIN users u ON u.id = l.user_id
                     JOIN courses k ON k.id = l.course_id
                     JOIN catalogs c ON c.id = l.catalog_id
                     WHERE l.catalog_id = $1 AND ($2::bigint IS NULL OR l.course_id = $2)
                       AND ($3::bool IS NULL OR l.is_active = $3)",
                )
                .bind::<diesel::sql_types::BigInt, _>(catalog)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(course)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::Bool>, _>(active)
                .get_result::<Count>(conn)
                .map(|c| c.n)
            },
        )
        .await;
    }
}

#[tokio::test]
async fn the_learner_list_counts_without_its_join_what_the_joined_list_holds() {
    use partner_catalog::models::learners;
    let app = spawn_app().await;
    let catalog = setup(&app, None).await.catalog_id;
    // 12 learners, every third inactive; names and addresses that searches tell apart,
    // and a person of another catalog's who matches every search.
    app.db
        .transaction(move |conn| {
            diesel::sql_query(
                "WITH people AS (
                     INSERT INTO users (email, full_name, password_hash)
                     SELECT 'member' || n || '@example.org',
                            CASE WHEN n % 2 = 0 THEN 'Even Member ' ELSE 'Odd Member ' END || n, 'x'
                     FROM generate_series(1, 12) n RETURNING id, email),
                 invited AS (
                     INSERT INTO invitations (catalog_id, email, user_id, token_hash, channel,
                                              expires_at, accepted_at)
                     SELECT $1, email, id, sha256(email::bytea), 'manual',
                            now() + interval '30 days', now()
                     FROM people RETURNING id, user_id)
                 INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active)
                 SELECT $1, user_id, id, user_id % 3 <> 0 FROM invited",
            )
            .bind::<diesel::sql_types::BigInt, _>(catalog)
            .execute(conn)?;
            diesel::sql_query(
                "INSERT INTO users (email, full_name, password_hash)
                 VALUES ('outsider@example.org', 'Even Odd Member', 'x')",
            )
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    for (active, search) in [
        (None, ""),
        (Some(true), ""),
        (Some(false), ""),
        (None, "member"),
        (None, "EVEN"),
        (Some(true), "odd member"),
        (Some(false), "@example.org"),
        (None, "member1"),
        (None, "MEMBER1"),
    ] {
        assert_counted_as_recounted(
            &app,
            format!("{active:?} {search:?}"),
            move |conn, page| learners::list_for_catalog(conn, catalog, active, search, page),
            move |conn| {
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM catalog_learners l
                     JOIN users u ON u.id = l.user_id
                     WHERE l.catalog_id = $1 AND ($2::bool IS NULL OR l.is_active = $2)
                       AND ($3 = '' OR u.email ILIKE '%' || $3 || '%'
                            OR u.full_name ILIKE '%' || $3 || '%')",
                )
                .bind::<diesel::sql_types::BigInt, _>(catalog)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::Bool>, _>(active)
                .bind::<Text, _>(search)
                .get_result::<Count>(conn)
                .map(|c| c.n)
            },
        )
        .await;
    }
}

/// A list's total, read two to a page so that it is counted rather than read whole,
/// against `recount`, the same rows counted by hand through the list's joins.
async fn assert_counted_as_recounted<T, L, R>(
    app: &crate::helpers::TestApp,
    case: String,
    list: L,
    recount: R,
) where
    T: Send + 'static,
    L: FnOnce(
            &mut PgConnection,
            partner_catalog::models::PageRequest,
        ) -> QueryResult<partner_catalog::models::Paginated<T>>
        + Clone
        + Send
        + 'static,
    R: FnOnce(&mut PgConnection) -> QueryResult<i64> + Clone + Send + 'static,
{
    let (counted, recounted) = app
        .db
        .run(move |conn| {
            let page = list(
                conn,
                partner_catalog::models::PageRequest::new(None, Some(2)),
            )?;
            Ok((page.total, recount(conn)?))
        })
        .await
        .unwrap();
    assert!(recounted > 2, "{case}: a list longer than a page");
    assert_eq!(counted, recounted, "{case}");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
