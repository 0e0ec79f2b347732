//! xAPI (rule 12): the statement stream over the API, in order, paged and scoped, and
//! its forwarding to a real learning record store (Ralph), once each across an outage.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable};
use partner_catalog::jobs::lrs::LrsForwarding;
use partner_catalog::jobs::{Job, Stop};
use reqwest::StatusCode;
use serde_json::Value;

use crate::analytics::other_partner_catalog;
use crate::hardening::signed_in_manager;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::journey::setup;
use crate::ralph::{Ralph, ralph_available};

/// `count` events of one catalog, a second apart from 2026-01-01 (the first `same_second`
/// of them all in one second), cycling through every event with a statement; answers
/// their ids in order of time.
async fn events(
    app: &TestApp,
    (partner_id, catalog_id): (i64, i64),
    user: Option<i64>,
    count: i32,
    same_second: i32,
) -> Vec<uuid::Uuid> {
    app.db
        .run(move |conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = diesel::sql_types::Uuid)]
                id: uuid::Uuid,
            }
            let ids: Vec<Id> = diesel::sql_query(
                "INSERT INTO tracking_events (id, name, occurred_at, partner_id, catalog_id, user_id, channel, reason, data)
                 SELECT gen_random_uuid(),
                     (ARRAY['invitation.sent','invitation.accepted','invitation.declined','invitation.removed',
                            'enrollment.activated','enrollment.deactivated','enrollment.blocked'])[1 + n % 7],
                     timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => GREATEST(n - $5, 0)),
                     $1, $2, $3, 'manual',
                     CASE WHEN n % 7 = 6 THEN 'course_limit_reached' END,
                     jsonb_build_object('licence_id', CASE WHEN n % 2 = 0 THEN 1 END)
                 FROM generate_series(1, $4) n
                 RETURNING id",
            )
            .bind::<BigInt, _>(partner_id)
            .bind::<BigInt, _>(catalog_id)
            .bind::<Nullable<BigInt>, _>(user)
            .bind::<Integer, _>(count)
            .bind::<Integer, _>(same_second)
            .load(conn)?;
            Ok(ids.into_iter().map(|i| i.id).collect())
        })
        .await
        .unwrap()
}

async fn acme(app: &TestApp, catalog_id: i64) -> (i64, i64) {
    let partner = crate::journey::acme_id(app).await;
    (partner, catalog_id)
}

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Option<String>, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let version = response
        .headers()
        .get("X-Experience-API-Version")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.text().await.unwrap();
    let json =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path} answers JSON: {body}"));
    (status, version, json)
}

/// Every statement, following `more` links; asserts every page's shape.
async fn all_statements(app: &TestApp, first: &str) -> Vec<Value> {
    let (mut next, mut all) = (first.to_string(), Vec::new());
    for _ in 0..100 {
        let (status, version, page) = get_json(app, &next).await;
        assert_eq!(status, StatusCode::OK, "{next}: {page}");
        assert_eq!(version.as_deref(), Some("1.0.3"));
        all.extend(page["statements"].as_array().unwrap().iter().cloned());
        match page["more"].as_str().unwrap() {
            "" => return all,
            more => next = more.to_string(),
        }
    }
    panic!("more than 100 pages");
}

fn ids(statements: &[Value]) -> Vec<String> {
    statements
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn statements_come_in_order_a_page_at_a_time_to_staff_and_to_a_partners_own_managers() {
    let app = spawn_app().await;
    let s = setup(&app, None).await;
    let learner = app
        .create_user("lee@example.org", "a long password 1", false)
        .await;
    let acme = acme(&app, s.catalog_id).await;
    // 40 of them in one second: the pages must still neither skip nor repeat one.
    let mine: Vec<String> = events(&app, acme, Some(learner.id), 250, 40)
        .await
        .iter()
        .map(|id| id.to_string())
        .collect();
    let beta = other_partner_catalog(&app).await;
    let theirs: Vec<String> = events(&app, beta, None, 5, 0)
        .await
        .iter()
        .map(|id| id.to_string())
        .collect();

    // Nobody signed in: a JSON 401, not a sign-in page.
    let (status, _, body) = get_json(&app, "/api/v1/xapi/statements").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");

    // A learner: not theirs to read.
    let learner_browser = app.another_browser();
    learner_browser
        .sign_in("lee@example.org", "a long password 1")
        .await;
    let (status, _, body) = get_json(&learner_browser, "/api/v1/xapi/statements").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");

    // Staff: every partner's, in time order, 100 at a time, each once.
    app.sign_in("staff@example.org", "staff password 1").await;
    let all = all_statements(&app, "/api/v1/xapi/statements?limit=100").await;
    let got = ids(&all);
    assert_eq!(got.len(), 255);
    assert_eq!(
        got.iter().collect::<HashSet<_>>().len(),
        255,
        "no statement twice"
    );
    let expected: HashSet<&String> = mine.iter().chain(theirs.iter()).collect();
    assert_eq!(got.iter().collect::<HashSet<_>>(), expected);
    let times: Vec<&str> = all
        .iter()
        .map(|s| s["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    assert!(times.iter().all(|t| t.ends_with('Z')), "UTC");

    // What a statement says: the event's id, an account on the platform, no address.
    let first = all.iter().find(|s| s["id"] == mine[45]).unwrap();
    assert_eq!(
        first["actor"]["account"]["homePage"],
        app.settings.base_url.as_str()
    );
    assert_eq!(
        first["actor"]["account"]["name"],
        format!("user:{}", learner.id)
    );
    assert!(
        !serde_json::to_string(&all)
            .unwrap()
            .contains("lee@example.org")
    );
    let ext = &first["context"]["extensions"];
    let key = |k: &str| format!("{}/xapi/extensions/{k}", app.settings.base_url);
    assert_eq!(ext[key("partner")], "acme");
    assert_eq!(ext[key("channel")], "manual");
    assert!(
        ext[key("catalog")]
            .as_str()
            .unwrap()
            .contains("sales-academy")
    );

    // `since`: after that moment (exclusive, as in xAPI).
    let (status, _, page) = get_json(
        &app,
        "/api/v1/xapi/statements?since=2026-01-01T00:01:00Z&limit=500",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Event n is at 00:00:00 + max(n - 40, 0) s: 00:01:00 is the 100th, and the other
    // partner's five are in the first seconds.
    assert_eq!(page["statements"].as_array().unwrap().len(), 150);
    assert_eq!(page["more"], "");

    // The partner's manager: their own partner's only.
    let manager = signed_in_manager(&app).await;
    let seen = ids(&all_statements(&manager, "/api/v1/xapi/statements?limit=60").await);
    let acme_in_order: Vec<String> = got.iter().filter(|id| mine.contains(id)).cloned().collect();
    assert_eq!(seen, acme_in_order);

    // Bad input names the field and changes nothing.
    for (query, field) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("since=2026-01-01T00:00:00Z&after=not-an-id", "after"),
        ("after=9d1c0b7e-8a52-4c47-9a51-0d4f6b1e2a33", "since"),
    ] {
        let (status, _, body) = get_json(&app, &format!("/api/v1/xapi/statements?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"], "invalid_input", "{query}");
        assert!(body["fields"][field].is_string(), "{query}: {body}");
    }
}

async fn forwarded(app: &TestApp) -> i64 {
    app.db
        .run(|conn| {
            use partner_catalog::models::schema::tracking_events::dsl::*;
            Ok(tracking_events
                .filter(forwarded_at.is_not_null())
                .count()
                .get_result::<i64>(conn)?)
        })
        .await
        .unwrap()
}

/// Posts statements to the store directly, as another system would.
async fn post_to_lrs(lrs: &Ralph, statements: &[&Value]) {
    let response = crate::helpers::plain_client()
        .post(format!("{}/xAPI/statements", lrs.url()))
        .basic_auth(lrs.username(), Some(lrs.password()))
        .header("X-Experience-API-Version", "1.0.3")
        .json(&statements)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

fn with_lrs(
    lrs: &Ralph,
    batch: usize,
) -> impl FnOnce(&mut partner_catalog::configuration::Settings) {
    let (url, username, password) = (
        lrs.url(),
        lrs.username().to_string(),
        lrs.password().to_string(),
    );
    move |s| {
        s.xapi_lrs_url = Some(url);
        s.xapi_lrs_username = Some(username);
        s.xapi_lrs_password = Some(password.into());
        s.xapi_lrs_batch_size = batch;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_reaches_a_real_lrs_exactly_once_across_an_outage() {
    if !ralph_available() {
        return;
    }
    let mut lrs = Ralph::start().await;
    let app = spawn_app_with(with_lrs(&lrs, 50)).await;
    let s = setup(&app, None).await;
    let acme = acme(&app, s.catalog_id).await;
    let all: Vec<String> = events(&app, acme, None, 230, 0)
        .await
        .iter()
        .map(|id| id.to_string())
        .collect();
    let job = LrsForwarding::from_settings(&app.settings, app.db.clone())
        .unwrap()
        .unwrap();
    let stop = Stop::never();

    // The store already holds two of them: one as we would send it, one with different
    // content under the same id. Neither may stall the stream or be held twice.
    app.sign_in("staff@example.org", "staff password 1").await;
    let ours = all_statements(&app, "/api/v1/xapi/statements?limit=500").await;
    let same = ours.iter().find(|st| st["id"] == all[120]).unwrap();
    let mut different = ours.iter().find(|st| st["id"] == all[30]).unwrap().clone();
    different["verb"]["display"]["en-US"] = Value::from("something else");
    post_to_lrs(&lrs, &[same, &different]).await;

    // A batch, then the store goes away mid-stream: nothing counts while it is away.
    let first = job.run_batch(&stop).await.unwrap();
    assert_eq!((first.handled, first.more), (50, true));
    assert_eq!(forwarded(&app).await, 50);
    lrs.stop().await;
    assert!(
        job.run_batch(&stop).await.is_err(),
        "an unreachable store is a failure to back off from"
    );
    assert_eq!(forwarded(&app).await, 50);
    let outbox = app.get("/staff/outbox").await;
    outbox.assert_contains("<dt>Waiting</dt><dd>180</dd>");
    outbox.assert_contains("the store could not be reached");

    // Back again; and the marks of ten that it took were lost (a crash after the post).
    lrs.restart().await;
    let lost: Vec<uuid::Uuid> = all[..10].iter().map(|id| id.parse().unwrap()).collect();
    app.db
        .run(move |conn| {
            diesel::sql_query("UPDATE tracking_events SET forwarded_at = NULL WHERE id = ANY($1)")
                .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(lost)
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    for _ in 0..20 {
        if job.run_batch(&stop).await.unwrap().handled == 0 {
            break;
        }
    }
    assert_eq!(forwarded(&app).await, 230);

    // The store holds each exactly once.
    let held = lrs.statements().await;
    let held_ids: Vec<String> = ids(&held);
    assert_eq!(held_ids.len(), 230, "each statement once");
    assert_eq!(
        held_ids.iter().collect::<HashSet<_>>(),
        all.iter().collect::<HashSet<_>>()
    );
    let outbox = app.get("/staff/outbox").await;
    outbox.assert_contains("<dt>Forwarded</dt><dd>230");
    outbox.assert_contains("<dt>Waiting</dt><dd>0</dd>");
    outbox.assert_contains("forwarding has worked since");
    outbox.assert_contains(
        &format!("<code>{}/xAPI/statements</code>", lrs.url()).replace("/xAPI/statements", ""),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_sent_from_the_console_arrives_at_the_lrs_through_the_worker() {
    if !ralph_available() {
        return;
    }
    let lrs = Ralph::start().await;
    let app = spawn_app_with(|s| {
        with_lrs(&lrs, 100)(s);
        s.run_worker = true;
        s.worker_poll_ms = 100;
    })
    .await;
    let s = setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    manager
        .post(
            &format!("/partner/acme/catalogs/{}/invitations", s.catalog_id),
            &[("emails", "newcomer@example.org")],
        )
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let held = lrs.statements().await;
        if let Some(invited) = held
            .iter()
            .find(|st| st["verb"]["display"]["en-US"] == "invited")
        {
            assert!(!invited.to_string().contains("newcomer@example.org"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no statement reached the store"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
