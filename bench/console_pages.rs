//! Latency of the partner console's list pages for one catalog with 100,000
//! invitations and 20,000 learners, under concurrent load.
//!
//! Run with `cargo bench --bench console_pages` (PostgreSQL on 127.0.0.1:5432, or set
//! `TEST_DATABASE_ADMIN_URL`). It creates and drops its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use partner_catalog::configuration::Settings;
use partner_catalog::db::Db;
use partner_catalog::startup::Application;

const INVITATIONS: i64 = 100_000;
const LEARNERS: i64 = 20_000;
const REQUESTS_PER_CLIENT_PER_PAGE: usize = 25;

fn main() {
    common::block_on(run());
}

async fn run() {
    let (name, url) = common::fresh_database("console");
    let started = Instant::now();
    common::seed_big_catalog(&url, INVITATIONS, LEARNERS);
    println!(
        "seeded {INVITATIONS} invitations, {LEARNERS} learners in {:.1?}",
        started.elapsed()
    );

    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.database_pool_size = 16;
    let db = Db::connect(&settings).unwrap();
    common::set_password(&db, 2, "bench manager password").await;
    let app = Application::build(settings, db).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let client =
        common::signed_in(&base, "bench-manager@example.org", "bench manager password").await;

    let deep = common::invitations_page_2000(&url);

    let pages = [
        ("dashboard", "/partner/bench".to_string()),
        (
            "invitations, first page",
            "/partner/bench/catalogs/1/invitations".to_string(),
        ),
        (
            "invitations, status=sent",
            "/partner/bench/catalogs/1/invitations?status=sent".to_string(),
        ),
        (
            "invitations, status=expired",
            "/partner/bench/catalogs/1/invitations?status=expired".to_string(),
        ),
        (
            "invitations, search",
            "/partner/bench/catalogs/1/invitations?q=person9999".to_string(),
        ),
        ("invitations, page 2000", deep),
        (
            "invitations, last page",
            "/partner/bench/catalogs/1/invitations?last=1".to_string(),
        ),
        (
            "learners, first page",
            "/partner/bench/catalogs/1/learners".to_string(),
        ),
        (
            "learners, search",
            "/partner/bench/catalogs/1/learners?q=learner1999".to_string(),
        ),
        (
            "licences, first page",
            "/partner/bench/catalogs/1/licences".to_string(),
        ),
        ("audit log", "/partner/bench/audit".to_string()),
    ];
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    println!(
        "\n{clients} concurrent clients, {REQUESTS_PER_CLIENT_PER_PAGE} requests each per page\n"
    );
    println!("| page | requests | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (label, path) in pages {
        // Warm-up.
        let warm = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(warm.status(), 200, "{path}");
        let _ = warm.text().await;
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, url) = (client.clone(), format!("{base}{path}"));
            tasks.push(tokio::spawn(async move {
                let mut timings = Vec::with_capacity(REQUESTS_PER_CLIENT_PER_PAGE);
                for _ in 0..REQUESTS_PER_CLIENT_PER_PAGE {
                    let t = Instant::now();
                    let response = client.get(&url).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    let _ = response.bytes().await.unwrap();
                    timings.push(t.elapsed());
                }
                timings
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort();
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            all.len(),
            ms(common::percentile(&all, 0.50)),
            ms(common::percentile(&all, 0.95)),
            ms(common::percentile(&all, 0.99)),
            ms(*all.last().unwrap())
        );
    }

    // The export is read chunk by chunk and never kept, so any growth of the process's
    // peak memory is the server holding rows.
    let peak_before = common::memory_kib("VmHWM:");
    let t = Instant::now();
    let mut export = client
        .get(format!(
            "{base}/partner/bench/catalogs/1/export/invitations.csv"
        ))
        .send()
        .await
        .unwrap();
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(chunk) = export.chunk().await.unwrap() {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        bytes += chunk.len();
    }
    println!(
        "\nexport of {INVITATIONS} invitations: {lines} lines, {:.1} MiB in {:.0?}; \
         peak memory of the process grew by {} KiB",
        bytes as f64 / 1_048_576.0,
        t.elapsed(),
        common::memory_kib("VmHWM:").saturating_sub(peak_before)
    );
    drop(client);
    common::drop_database(&name);
}
