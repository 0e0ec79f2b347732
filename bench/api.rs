//! The JSON API on the big catalog (100,000 invitations, 20,000 learners): one
//! membership by address under concurrent load, and a `bulk_enroll` of 1,000 addresses
//! (half of them existing accounts, half unknown) timed end to end.
//!
//! Run with `cargo bench --bench api` (PostgreSQL on 127.0.0.1:5432, or set
//! `TEST_DATABASE_ADMIN_URL`). It creates and drops its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use partner_catalog::configuration::Settings;
use partner_catalog::db::Db;
use partner_catalog::startup::Application;

const INVITATIONS: i64 = 100_000;
const LEARNERS: i64 = 20_000;
const REQUESTS_PER_CLIENT: usize = 50;
const BULK: usize = 1_000;

fn main() {
    common::block_on(run());
}

async fn run() {
    let (name, url) = common::fresh_database("api");
    let started = Instant::now();
    common::seed_big_catalog(&url, INVITATIONS, LEARNERS);
    // Accounts that are not learners yet: half of the bulk call.
    let mut seeding = PgConnection::establish(&url).unwrap();
    seeding
        .batch_execute(&format!(
            "SELECT setval('users_id_seq', (SELECT max(id) FROM users));
             INSERT INTO users (email, full_name, email_verified_at)
             SELECT 'colleague' || n || '@bulk.example', 'Colleague ' || n, now()
             FROM generate_series(1, {}) n;
             ANALYZE users;",
            BULK / 2
        ))
        .unwrap();
    println!("seeded in {:.1?}", started.elapsed());

    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.database_pool_size = 16;
    let db = Db::connect(&settings).unwrap();
    let token = db
        .transaction(|conn| {
            let manager = partner_catalog::models::users::find(conn, 2)?;
            let actor = partner_catalog::policies::Actor::for_user(&manager, Some(1));
            Ok(partner_catalog::services::api_tokens::create(conn, &actor, "bench")?.1)
        })
        .await
        .unwrap();
    let app = Application::build(settings, db).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let membership = |n: usize| {
        let learner = 1 + (n * 7919) % LEARNERS as usize;
        format!(
            "{base}/api/v1/catalogs/bench-big/enrollment?email=learner{learner}%40corp{}.example",
            learner % 50
        )
    };
    let warm = client
        .get(membership(1))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200, "{}", warm.text().await.unwrap());
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, token) = (client.clone(), token.clone());
        let urls: Vec<String> = (0..REQUESTS_PER_CLIENT)
            .map(|i| membership(c * REQUESTS_PER_CLIENT + i))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut timings = Vec::with_capacity(urls.len());
            for url in urls {
                let t = Instant::now();
                let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await.unwrap();
                timings.push(t.elapsed());
            }
            timings
        }));
    }
    let t = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = t.elapsed();
    all.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!("\n{clients} concurrent clients, {REQUESTS_PER_CLIENT} requests each\n");
    println!("| request | requests | req/s | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| GET …/enrollment?email= | {} | {:.0} | {} | {} | {} | {} |",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        ms(common::percentile(&all, 0.50)),
        ms(common::percentile(&all, 0.95)),
        ms(common::percentile(&all, 0.99)),
        ms(*all.last().unwrap())
    );

    let emails: Vec<String> = (1..=BULK / 2)
        .map(|n| format!("colleague{n}@bulk.example"))
        .chain((1..=BULK / 2).map(|n| format!("newcomer{n}@bulk.example")))
        .collect();
    let t = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/enrollments/bulk_enroll"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "catalogs": "bench-big", "emails": emails.join(",") }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    let took = t.elapsed();
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let count = |outcome: &str| results.iter().filter(|r| r["outcome"] == outcome).count();
    println!(
        "\nbulk_enroll of {BULK} addresses ({} enrolled, {} pre-enrolled): {:.0} ms end to end",
        count("enrolled"),
        count("pending"),
        took.as_secs_f64() * 1000.0
    );
    drop(client);
    common::drop_database(&name);
}
