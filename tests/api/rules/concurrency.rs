//! Rules 4, 5 and 7 under load: joining and quota checks are serialised per catalog,
//! so no number of simultaneous requests exceeds a limit.

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use partner_catalog::db::Db;
use partner_catalog::domain::invitation_status::Channel;
use partner_catalog::services;
use partner_catalog::services::enrollments::{CourseAccess, RefusalReason};
use tokio::sync::Barrier;

use super::*;
use crate::helpers::{admin_url, spawn_app_with};

/// Enough connections for every request of a test to hold one at the same time.
const POOL: u32 = 52;

/// Held while a test with a large pool runs, so that such tests (in this process
/// or another) take turns and the server's connection limit is never reached.
struct Turn {
    _conn: PgConnection,
}

async fn take_turn() -> Turn {
    tokio::task::spawn_blocking(|| {
        let mut conn = PgConnection::establish(&admin_url()).expect("admin connection");
        conn.batch_execute("SELECT pg_advisory_lock(5043525245)")
            .expect("advisory lock");
        Turn { _conn: conn }
    })
    .await
    .expect("lock task")
}

async fn big_app() -> (Turn, TestApp) {
    let turn = take_turn().await;
    let app = spawn_app_with(|s| s.database_pool_size = POOL).await;
    (turn, app)
}

/// Runs every job in its own transaction, each on its own task, all released at once.
async fn at_once<T, F>(db: &Db, jobs: Vec<F>) -> Vec<Result<T>>
where
    F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(jobs.len()));
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let (db, barrier) = (db.clone(), barrier.clone());
            // Run once: the pool's retry after a lost connection does not apply here.
            let job = Arc::new(std::sync::Mutex::new(Some(job)));
            tokio::spawn(async move {
                barrier.wait().await;
                db.transaction(move |conn| {
                    let job = job.lock().expect("job").take().expect("runs once");
                    job(conn)
                })
                .await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.expect("task"));
    }
    results
}

/// `n` new accounts, each with an invitation into the catalog; accepted when `accept`.
async fn invited(
    app: &TestApp,
    w: &World,
    catalog_id: i64,
    n: usize,
    accept: bool,
) -> Vec<(User, String)> {
    let (ctx, staff) = (ctx(app), w.staff());
    app.db
        .transaction(move |conn| {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let email = EmailAddress::parse(&format!("learner{i}@example.org"))
                    .map_err(|e| Error::invalid("email", e.to_string()))?;
                let u = accounts::create_account(
                    conn,
                    &NewAccount {
                        email,
                        full_name: String::new(),
                        password_hash: None,
                        email_verified: true,
                        is_staff: false,
                    },
                )?;
                let sent = services::invitations::create(
                    conn,
                    &ctx,
                    &staff,
                    catalog_id,
                    &u.email,
                    Channel::Manual,
                )?;
                let token = sent.token.into_string();
                if accept {
                    services::invitations::accept(conn, &Actor::for_user(&u, None), &token)?;
                }
                out.push((u, token));
            }
            Ok(out)
        })
        .await
        .expect("invited learners")
}

fn request(
    u: &User,
    catalog_id: i64,
    course_id: i64,
) -> impl FnOnce(&mut PgConnection) -> Result<CourseAccess> + Send + 'static {
    let a = actor(u);
    move |conn| services::enrollments::request_course_access(conn, &a, catalog_id, course_id)
}

async fn count_where(app: &TestApp, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = sql.to_string();
    app.db
        .run(move |conn| Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n))
        .await
        .unwrap()
}

#[tokio::test]
async fn rule_4_fifty_simultaneous_accepts_into_a_catalog_of_ten() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            user_limit: 10,
            ..Default::default()
        },
    )
    .await;
    let people = invited(&app, &w, c.id, 50, false).await;
    let jobs: Vec<_> = people
        .iter()
        .map(|(u, token)| {
            let (a, token) = (actor(u), token.clone());
            move |conn: &mut PgConnection| services::invitations::accept(conn, &a, &token)
        })
        .collect();
    let results = at_once(&app.db, jobs).await;

    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == "user_limit_reached"))
        .count();
    assert_eq!(accepted, 10, "{results:?}");
    assert_eq!(full, 40, "{results:?}");
    assert_eq!(active_learners(&app, c.id).await, 10);
    assert_eq!(app.count("catalog_learners").await, 10);
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM invitations WHERE accepted_at IS NOT NULL"
        )
        .await,
        10
    );
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM audit_entries WHERE action = 'invitation.accept'"
        )
        .await,
        10
    );
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM tracking_events WHERE name = 'invitation.accepted'"
        )
        .await,
        10
    );
    crate::analytics::assert_counters_match_a_recount(&app).await;
}

#[tokio::test]
async fn rule_4_simultaneous_self_enrolments_never_exceed_the_limit() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            user_limit: 10,
            self_enrollment: true,
            ..Default::default()
        },
    )
    .await;
    let mut jobs = Vec::new();
    for i in 0..30 {
        let u = user(&app, &format!("self{i}@example.org"), true).await;
        let a = actor(&u);
        jobs.push(move |conn: &mut PgConnection| {
            services::invitations::join_self_enrollment(conn, &Default::default(), &a, c.id)
        });
    }
    let results = at_once(&app.db, jobs).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(e) if e.code() == "user_limit_reached")),
        "{results:?}"
    );
    assert_eq!(active_learners(&app, c.id).await, 10);
}

#[tokio::test]
async fn rule_5_simultaneous_invitations_of_one_address_make_one() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let jobs: Vec<_> = (0..10)
        .map(|_| {
            let (ctx, staff) = (ctx(&app), w.staff());
            move |conn: &mut PgConnection| {
                services::invitations::create(
                    conn,
                    &ctx,
                    &staff,
                    c.id,
                    "ada@example.org",
                    Channel::Manual,
                )
                .map(|sent| sent.invitation.id)
            }
        })
        .collect();
    let results = at_once(&app.db, jobs).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(e) if e.code() == "invitation_exists")),
        "{results:?}"
    );
    assert_eq!(app.count("invitations").await, 1);
    assert_eq!(app.count("outbound_emails").await, 1);
}

#[tokio::test]
async fn rule_7_fifty_simultaneous_paid_requests_with_ten_seats() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            course_limit: 10,
            ..Default::default()
        },
    )
    .await;
    let people = invited(&app, &w, c.id, 50, true).await;
    assert_eq!(active_learners(&app, c.id).await, 50);
    let jobs: Vec<_> = people
        .iter()
        .map(|(u, _)| request(u, c.id, w.paid))
        .collect();
    let results = at_once(&app.db, jobs).await;

    let granted = results
        .iter()
        .filter(|r| matches!(r, Ok(CourseAccess::Granted { .. })))
        .count();
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Ok(CourseAccess::Refused(RefusalReason::CourseLimitReached))
            )
        })
        .count();
    assert_eq!(granted, 10, "{results:?}");
    assert_eq!(refused, 40, "{results:?}");
    assert_eq!(seats_used(&app, c.id).await, 10);
    assert_eq!(app.count("licences").await, 10);
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM platform_enrollments WHERE mode = 'verified'"
        )
        .await,
        10
    );
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM tracking_events WHERE name = 'enrollment.blocked' \
             AND reason = 'course_limit_reached'"
        )
        .await,
        40
    );
    crate::analytics::assert_counters_match_a_recount(&app).await;
}

#[tokio::test]
async fn rule_7_the_same_learner_asking_twice_at_once_gets_one_licence() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let c = catalog(
        &app,
        &w,
        Spec {
            course_limit: 10,
            ..Default::default()
        },
    )
    .await;
    // Several rounds, each a new learner asking twice at the same moment.
    let people = invited(&app, &w, c.id, 5, true).await;
    for (u, _) in &people {
        let results = at_once(
            &app.db,
            vec![request(u, c.id, w.paid), request(u, c.id, w.paid)],
        )
        .await;
        let granted = results
            .iter()
            .filter(|r| matches!(r, Ok(CourseAccess::Granted { .. })))
            .count();
        assert_eq!(granted, 1, "{results:?}");
        assert!(
            results.iter().all(|r| matches!(
                r,
                Ok(CourseAccess::Granted { .. } | CourseAccess::AlreadyPaid { .. })
            )),
            "{results:?}"
        );
        assert_eq!(licence_rows(&app, u.id, w.paid).await, 1);
    }
    assert_eq!(seats_used(&app, c.id).await, 5);
}

#[tokio::test]
async fn rule_7_the_same_learner_through_two_catalogs_at_once_gets_one_licence() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let a = catalog(
        &app,
        &w,
        Spec {
            course_limit: 5,
            ..Default::default()
        },
    )
    .await;
    let b = catalog(
        &app,
        &w,
        Spec {
            name: "Beta Academy".into(),
            partner_b: true,
            course_limit: 5,
            ..Default::default()
        },
    )
    .await;
    for i in 0..5 {
        let u = user(&app, &format!("both{i}@example.org"), true).await;
        join(&app, &w, a.id, &u).await;
        join(&app, &w, b.id, &u).await;
        let results = at_once(
            &app.db,
            vec![request(&u, a.id, w.paid), request(&u, b.id, w.paid)],
        )
        .await;
        assert_eq!(
            results
                .iter()
                .filter(|r| matches!(r, Ok(CourseAccess::Granted { .. })))
                .count(),
            1,
            "{results:?}"
        );
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        assert_eq!(licence_rows(&app, u.id, w.paid).await, 1);
    }
    assert_eq!(
        seats_used(&app, a.id).await + seats_used(&app, b.id).await,
        5,
        "one seat per learner, from one catalog"
    );
}

type Job = Box<dyn FnOnce(&mut PgConnection) -> Result<Option<CourseAccess>> + Send>;

/// A licence of A is deactivated (`remove_learner`: by removing its holder from A;
/// otherwise directly) at the moment its holder asks for the course through B.
async fn deactivation_races_course_access(remove_learner: bool) {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let a = catalog(&app, &w, Spec::default()).await;
    let b = catalog(
        &app,
        &w,
        Spec {
            name: "Beta Academy".into(),
            partner_b: true,
            ..Default::default()
        },
    )
    .await;
    for i in 0..20 {
        let u = user(&app, &format!("race{i}@example.org"), true).await;
        join(&app, &w, a.id, &u).await;
        join(&app, &w, b.id, &u).await;
        let CourseAccess::Granted { licence_id } = access(&app, &u, a.id, w.paid).await else {
            panic!("a seat of A");
        };
        // The platform lost the paid mode: the request through B relies on the licence.
        set_enrollment(&app, u.id, w.paid, "audit").await;
        let (staff, user_id) = (w.staff(), u.id);
        let deactivate: Job = if remove_learner {
            Box::new(move |conn: &mut PgConnection| {
                services::invitations::remove_learner(conn, &staff, a.id, user_id, None)
                    .map(|_| None)
            })
        } else {
            Box::new(move |conn: &mut PgConnection| {
                services::enrollments::deactivate_licence(conn, &staff, licence_id, None)
                    .map(|_| None)
            })
        };
        let job = request(&u, b.id, w.paid);
        let use_it: Job = Box::new(move |conn: &mut PgConnection| job(conn).map(Some));
        let results = at_once(&app.db, vec![deactivate, use_it]).await;
        assert!(results.iter().all(|r| r.is_ok()), "round {i}: {results:?}");
        assert_eq!(licence_rows(&app, u.id, w.paid).await, 1);
        assert_eq!(
            enrollment(&app, u.id, w.paid).await.unwrap().mode == "verified",
            licence(&app, u.id, w.paid).await.unwrap().is_active,
            "round {i}: verified exactly when the licence is active"
        );
    }
}

#[tokio::test]
async fn rule_7_deactivating_a_licence_while_it_is_used_elsewhere_never_fails() {
    deactivation_races_course_access(false).await;
}

#[tokio::test]
async fn rule_6_removing_a_learner_while_their_licence_is_used_elsewhere_never_fails() {
    deactivation_races_course_access(true).await;
}

/// Enrolling and removing lock the same rows in one order (catalog, then learner), so
/// thirty learners enrolling while their manager removes each of them never deadlock.
#[tokio::test]
async fn rule_6_and_7_enrolling_while_being_removed_never_deadlocks() {
    let (_turn, app) = big_app().await;
    let w = world(&app).await;
    let c = catalog(&app, &w, Spec::default()).await;
    let learners = invited(&app, &w, c.id, 25, true).await;
    // Half hold a licence already, so that removing them deactivates it.
    for (u, _) in learners.iter().step_by(2) {
        access(&app, u, c.id, w.paid).await;
    }
    type Job = Box<dyn FnOnce(&mut PgConnection) -> Result<()> + Send>;
    let mut jobs: Vec<Job> = Vec::new();
    for (u, _) in &learners {
        let enrol = request(u, c.id, w.paid2);
        jobs.push(Box::new(move |conn| enrol(conn).map(drop)));
        let enrol_open = request(u, c.id, w.open);
        jobs.push(Box::new(move |conn| enrol_open(conn).map(drop)));
        let (staff, user_id, catalog_id) = (w.staff(), u.id, c.id);
        jobs.push(Box::new(move |conn| {
            services::invitations::remove_learner(conn, &staff, catalog_id, user_id, None).map(drop)
        }));
    }
    let results = at_once(&app.db, jobs).await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        // A learner removed first is refused by rule 7 or finds nothing to remove.
        .filter(|e| !matches!(e, Error::NotAllowedToEnroll | Error::NotFound(_)))
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(active_learners(&app, c.id).await, 0);
    assert_eq!(seats_used(&app, c.id).await, 0, "every licence released");
    crate::analytics::assert_counters_match_a_recount(&app).await;
}
