//! A bulk invitation of 100,000 rows (new, duplicate, invalid and already-invited
//! addresses) into a catalog: the time to read and preview it, the time to run it to the
//! end, and the process's peak memory growth — against the floor of PostgreSQL loading
//! exactly the rows the job wrote with `COPY FROM`.
//!
//! Run with `cargo bench --bench bulk_job` (PostgreSQL on 127.0.0.1:5432 with `psql` on
//! the path, or set `TEST_DATABASE_ADMIN_URL`). It creates and drops its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use partner_catalog::configuration::Settings;
use partner_catalog::db::Db;
use partner_catalog::jobs::Stop;
use partner_catalog::jobs::bulk::BulkJobs;
use partner_catalog::policies::Actor;
use partner_catalog::services::bulk::{self, Source, Upload};

use common::memory_kib;

const ROWS: usize = 100_000;
/// Of every 20 rows: 17 new addresses, 1 repeated, 1 invalid, 1 already invited.
const PATTERN: usize = 20;

const SEED: &str = r#"
INSERT INTO users (id, email, is_staff, email_verified_at) VALUES (1, 'bench-staff@example.org', true, now());
INSERT INTO organisations (id, short_name, name) VALUES (1, 'BENCHx', 'Bench');
INSERT INTO partners (id, organisation_id, code, name) VALUES (1, 1, 'bench', 'Bench Partner');
INSERT INTO catalogs (id, partner_id, slug, name, available_start, available_end)
    VALUES (1, 1, 'bench-bulk', 'Bulk catalog', now() - interval '1 day', now() + interval '300 days');
INSERT INTO invitations (catalog_id, email, token_hash, channel, invited_at, expires_at, send_count, last_sent_at)
    SELECT 1, 'invited' || n || '@corp.example', sha256(('seed' || n)::bytea), 'manual', now(), now() + interval '20 days', 1, now()
    FROM generate_series(0, {invited}) n;
"#;

/// The CSV: 100,000 rows in a repeating mix.
fn csv() -> Vec<u8> {
    let mut csv = String::from("email,full_name\n");
    for i in 0..ROWS {
        let round = i / PATTERN;
        let line = match i % PATTERN {
            17 => format!("person{}.0@corp.example,Again", round * 17),
            18 => format!("not an address {i},Broken"),
            19 => format!("invited{round}@corp.example,Invited"),
            k => format!("person{}.{k}@corp.example,Person {i}", round * 17),
        };
        csv.push_str(&line);
        csv.push('\n');
    }
    csv.into_bytes()
}

/// Resets the peak resident memory to the current one, so that growth can be measured.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn psql(url: &str, command: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new("psql")
        .arg(url)
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-q")
        .arg("-c")
        .arg(command)
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql failed: {command}");
    started.elapsed()
}

fn main() {
    common::block_on(run());
}

async fn run() {
    let (name, url) = common::fresh_database("bulk");
    let invited = ROWS / PATTERN;
    PgConnection::establish(&url)
        .unwrap()
        .batch_execute(&SEED.replace("{invited}", &invited.to_string()))
        .unwrap();
    PgConnection::establish(&url)
        .unwrap()
        .batch_execute("VACUUM ANALYZE")
        .unwrap();

    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.bulk_approval_threshold = ROWS;
    settings.invitation_emails_per_partner_per_hour = 0;
    let db = Db::connect(&settings).unwrap();
    let staff = db
        .run(|conn| Ok(partner_catalog::models::users::find(conn, 1)?))
        .await
        .unwrap();
    let actor = Actor::for_user(&staff, None);
    let file = csv();
    println!("{} rows, {:.1} MiB", ROWS, file.len() as f64 / 1048576.0);

    reset_peak_rss();
    let rss_before = memory_kib("VmRSS:");
    let started = Instant::now();
    let upload_actor = actor.clone();
    let job = db
        .transaction(move |conn| {
            bulk::upload(
                conn,
                &upload_actor,
                1,
                &Upload {
                    kind: "invite",
                    source: Source::Csv(&file),
                    source_name: "bench.csv",
                    course_ids: &[],
                },
            )
        })
        .await
        .unwrap();
    let preview = started.elapsed();
    println!("planned: {}", job.planned_counts);
    let ctx = partner_catalog::services::ServiceContext::from_settings(&settings);
    let (submit_actor, job_id) = (actor.clone(), job.id);
    db.transaction(move |conn| bulk::submit(conn, &ctx, &submit_actor, job_id))
        .await
        .unwrap();

    let started = Instant::now();
    let runner = BulkJobs::from_settings(&settings, db.clone());
    let mut handled = 0;
    while let Some((rows, _)) = runner.turn(&Stop::never()).await.unwrap() {
        handled += rows;
    }
    let running = started.elapsed();
    let peak_growth = memory_kib("VmHWM:").saturating_sub(rss_before);
    let finished = db
        .run(move |conn| Ok(partner_catalog::models::bulk::find(conn, job_id)?))
        .await
        .unwrap();
    assert_eq!(finished.status, "done");
    assert_eq!(handled, ROWS);
    println!("outcomes: {}", finished.outcome_counts);

    // The floor: exactly the rows the job wrote, loaded with COPY FROM.
    let dir = std::env::temp_dir().join(format!("{name}_copy"));
    std::fs::create_dir_all(&dir).unwrap();
    let written = [
        ("bulk_jobs", format!("id = {job_id}")),
        ("bulk_job_rows", format!("job_id = {job_id}")),
        ("invitations", "channel = 'bulk'".to_string()),
        ("outbound_emails", "kind = 'invitation'".to_string()),
        ("tracking_events", "channel = 'bulk'".to_string()),
        ("audit_entries", "object_type = 'bulk_job'".to_string()),
    ];
    let mut counts = Vec::new();
    for (table, condition) in &written {
        let path = dir.join(format!("{table}.bin"));
        psql(
            &url,
            &format!(
                "\\copy (SELECT * FROM {table} WHERE {condition}) TO '{}' WITH (FORMAT binary)",
                path.display()
            ),
        );
        let rows: i64 = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))
        .get_result::<Count>(&mut PgConnection::establish(&url).unwrap())
        .unwrap()
        .n;
        counts.push((table, rows));
    }
    // Untimed. Without foreign-key and counter triggers (so the job's rows go by hand):
    // checking each of the 85,000
    // invitations against the unindexed `tracking_events.invitation_id` (which nothing
    // but this clean-up ever needs) would scan that table once per invitation.
    psql(
        &url,
        "SET session_replication_role = replica; \
         DELETE FROM tracking_events WHERE channel = 'bulk'; \
         DELETE FROM outbound_emails WHERE kind = 'invitation'; \
         DELETE FROM bulk_job_rows; DELETE FROM bulk_jobs; DELETE FROM invitations WHERE channel = 'bulk'; \
         DELETE FROM audit_entries WHERE object_type = 'bulk_job';",
    );
    psql(&url, "VACUUM ANALYZE");
    let mut floor = Duration::ZERO;
    for (table, _) in &written {
        let path = dir.join(format!("{table}.bin"));
        floor += psql(
            &url,
            &format!(
                "\\copy {table} FROM '{}' WITH (FORMAT binary)",
                path.display()
            ),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    let job_total = preview + running;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| read and preview | {:.2} s |", preview.as_secs_f64());
    println!("| run to the end | {:.2} s |", running.as_secs_f64());
    println!(
        "| job, all together | {:.2} s ({:.0} rows/s) |",
        job_total.as_secs_f64(),
        ROWS as f64 / job_total.as_secs_f64()
    );
    println!(
        "| floor: COPY FROM of the rows written | {:.2} s |",
        floor.as_secs_f64()
    );
    println!(
        "| job / floor | {:.2} |",
        job_total.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "| peak memory growth | {:.1} MiB |",
        peak_growth as f64 / 1024.0
    );
    println!();
    println!("rows written: {counts:?}");

    let pre_enrolment = pre_enrolment_preview(&db, &url, &actor).await;
    println!(
        "| pre-enrolment preview: {PRE_ROWS} rows against {PRE_OPEN} open pre-enrolments | {:.2} s |",
        pre_enrolment.as_secs_f64()
    );

    drop(db);
    common::drop_database(&name);
}

const PRE_ROWS: usize = 20_000;
const PRE_OPEN: usize = 20_000;

/// Previews a pre-enrolment list in a catalog that already has many open pre-enrolments
/// (by address and by outside identity), half of which the list repeats.
async fn pre_enrolment_preview(db: &Db, url: &str, actor: &Actor) -> Duration {
    PgConnection::establish(url)
        .unwrap()
        .batch_execute(&format!(
            "INSERT INTO pending_enrollments (catalog_id, email, external_provider, external_remote_id, course_ids, expires_at) \
             SELECT 1, CASE WHEN n % 2 = 0 THEN 'open' || n || '@corp.example' END, \
                    CASE WHEN n % 2 = 1 THEN 'sso' END, CASE WHEN n % 2 = 1 THEN 'open' || n END, \
                    '{{}}', now() + interval '30 days' \
             FROM generate_series(0, {}) n; ANALYZE pending_enrollments;",
            PRE_OPEN - 1
        ))
        .unwrap();
    let mut csv = String::from("email,external_user_key\n");
    for i in 0..PRE_ROWS {
        // Half the rows repeat an open pre-enrolment, by address or by identity.
        let line = match i % 4 {
            0 => format!("open{i}@corp.example,"),
            1 => format!("new{i}@corp.example,"),
            2 => format!(",sso:open{}", i + 1),
            _ => format!(",sso:new{i}"),
        };
        csv.push_str(&line);
        csv.push('\n');
    }
    let actor = actor.clone();
    let started = Instant::now();
    let job = db
        .transaction(move |conn| {
            bulk::upload(
                conn,
                &actor,
                1,
                &Upload {
                    kind: "pre_enroll",
                    source: Source::Csv(csv.as_bytes()),
                    source_name: "pre.csv",
                    course_ids: &[],
                },
            )
        })
        .await
        .unwrap();
    let elapsed = started.elapsed();
    println!("pre-enrolment planned: {}", job.planned_counts);
    elapsed
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
