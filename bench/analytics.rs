//! Latency of the analytics pages (partner, catalog, platform, one CSV) over a catalog
//! with 100,000 invitations spread over the last 120 days, about 21,000 learners, and
//! the tracking events the application would have written for them, under concurrent
//! load.
//!
//! Run with `cargo bench --bench analytics` (PostgreSQL on 127.0.0.1:5432, or set
//! `TEST_DATABASE_ADMIN_URL`). It creates its own database and drops it at the end,
//! unless `BENCH_KEEP_DB=1` (to `EXPLAIN ANALYZE` the report's queries on it afterwards).
//! `BENCH_CLIENTS` sets the number of concurrent clients (8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use partner_catalog::configuration::Settings;
use partner_catalog::db::Db;
use partner_catalog::startup::Application;

const INVITATIONS: i64 = 100_000;
const REQUESTS_PER_CLIENT_PER_PAGE: usize = 25;
const TIME_ZONE: &str = "Europe/Zurich";

// One partner, one catalog of 10 courses (the even ones paid). Invitations are created
// evenly over the last 120 days through every channel; those sent by email (manual, bulk,
// api) are accepted (15 %) minutes to ten days later, declined (8 %) or left open, a few
// removed; self- and pre-enrolments are accepted at once without an email. Each learner
// then asks for 0–4 courses, the first minutes to days after joining: free courses are
// enrolments without a licence, paid ones a licence (a paid seat) — or, one in ten, a
// refusal because the seats are used up — some seats released later. The events are
// those the application writes for each of these steps, with the same columns and data.
const SEED: &str = r#"
SELECT setseed(0.26);
INSERT INTO users (id, email, is_staff, email_verified_at, password_hash)
    VALUES (1, 'bench-staff@example.org', true, now(), NULL), (2, 'bench-manager@example.org', false, now(), NULL);
INSERT INTO organisations (id, short_name, name) VALUES (1, 'BENCHx', 'Bench');
INSERT INTO partners (id, organisation_id, code, name, time_zone) VALUES (1, 1, 'bench', 'Bench Partner', '{time_zone}');
INSERT INTO partner_managers (user_id, partner_id, claimed_at) VALUES (2, 1, now());
INSERT INTO courses (id, key, organisation_id, title, modes)
    SELECT n, 'course-v1:BENCHx+C' || n || '+1', 1, 'Course ' || n, CASE WHEN n % 2 = 0 THEN '{audit,verified}'::text[] ELSE '{audit}'::text[] END
    FROM generate_series(1, 10) n;
INSERT INTO catalogs (id, partner_id, slug, name, available_start, available_end, user_limit, course_enrollments_limit)
    VALUES (1, 1, 'bench-big', 'Big catalog', now() - interval '150 days', now() + interval '300 days', 21000, 16000);
INSERT INTO catalog_courses (catalog_id, course_id, position) SELECT 1, n, n - 1 FROM generate_series(1, 10) n;

-- Invitations: when, through which channel, and what came of them.
CREATE TEMP TABLE plan AS
    SELECT n, invited_at,
        CASE WHEN r_channel < 0.48 THEN 'manual' WHEN r_channel < 0.78 THEN 'bulk'
             WHEN r_channel < 0.92 THEN 'api' WHEN r_channel < 0.97 THEN 'self_enrollment'
             ELSE 'pre_enrollment' END AS channel,
        r_outcome, r_delay, r_removed,
        NULL::timestamptz AS accepted_at, NULL::timestamptz AS declined_at, NULL::timestamptz AS removed_at
    FROM (SELECT n,
              now() - interval '120 days' + (n - 1) * interval '103.68 seconds' + random() * interval '90 seconds' AS invited_at,
              random() AS r_channel, random() AS r_outcome, random() AS r_delay, random() AS r_removed
          FROM generate_series(1, {invitations}) n) drawn;
UPDATE plan SET accepted_at = invited_at WHERE channel IN ('self_enrollment', 'pre_enrollment');
-- Answers come 5 minutes to 10 days after the email, most within hours.
UPDATE plan SET accepted_at = invited_at + 300 * exp(r_delay * 8) * interval '1 second'
    WHERE channel IN ('manual', 'bulk', 'api') AND r_outcome < 0.15;
UPDATE plan SET declined_at = invited_at + 600 * exp(r_delay * 7) * interval '1 second'
    WHERE channel IN ('manual', 'bulk', 'api') AND r_outcome >= 0.15 AND r_outcome < 0.23;
UPDATE plan SET accepted_at = NULL WHERE accepted_at > now();
UPDATE plan SET declined_at = NULL WHERE declined_at > now();
-- A few open invitations withdrawn, and a few learners removed, days later.
UPDATE plan SET removed_at = invited_at + r_removed * interval '20 days'
    WHERE accepted_at IS NULL AND declined_at IS NULL AND r_outcome >= 0.23 AND r_outcome < 0.26
      AND invited_at + r_removed * interval '20 days' < now();
UPDATE plan SET removed_at = accepted_at + r_removed * interval '40 days'
    WHERE accepted_at IS NOT NULL AND r_removed < 0.04 AND accepted_at + r_removed * interval '40 days' < now();

-- Each acceptance made an account a learner of the catalog.
CREATE TEMP TABLE accepted AS
    SELECT n, 100 + row_number() OVER (ORDER BY n) AS user_id, accepted_at, removed_at FROM plan WHERE accepted_at IS NOT NULL;
INSERT INTO users (id, email, full_name, email_verified_at)
    SELECT user_id, 'person' || n || '@corp' || (n % 50) || '.example', 'Person ' || n, accepted_at FROM accepted;
INSERT INTO invitations (id, catalog_id, email, user_id, token_hash, channel, invited_at, invited_by, expires_at,
                         accepted_at, declined_at, removed_at, removed_by, send_count, last_sent_at)
    SELECT p.n, 1, 'person' || p.n || '@corp' || (p.n % 50) || '.example', a.user_id, sha256(('bench' || p.n)::bytea),
        p.channel, p.invited_at,
        CASE WHEN p.channel IN ('manual', 'bulk') THEN 2 END,
        CASE WHEN p.channel IN ('manual', 'bulk', 'api') THEN p.invited_at + interval '30 days' ELSE p.invited_at END,
        p.accepted_at, p.declined_at, p.removed_at, CASE WHEN p.removed_at IS NOT NULL THEN 2 END,
        CASE WHEN p.channel IN ('manual', 'bulk', 'api') THEN 1 ELSE 0 END,
        CASE WHEN p.channel IN ('manual', 'bulk', 'api') THEN p.invited_at END
    FROM plan p LEFT JOIN accepted a USING (n);
SELECT setval('invitations_id_seq', {invitations});
INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active, joined_at, removed_at, updated_at)
    SELECT 1, user_id, n, removed_at IS NULL, accepted_at, removed_at, COALESCE(removed_at, accepted_at) FROM accepted;

-- Course requests of each learner: distinct courses, the first minutes to days after
-- joining, the next ones up to five days apart; none after now or after removal.
CREATE TEMP TABLE enrol AS
    SELECT a.n, a.user_id, a.removed_at, 1 + (a.user_id * 3 + j * 7) % 10 AS course_id,
        a.accepted_at + (60 * exp(random() * 9) + j * random() * 432000) * interval '1 second' AS at,
        random() AS r_block, random() AS r_release, random() AS r_release_at,
        NULL::bigint AS licence_id, NULL::timestamptz AS released_at, NULL::text AS release_reason
    FROM (SELECT *, CASE WHEN r < 0.10 THEN 0 WHEN r < 0.35 THEN 1 WHEN r < 0.65 THEN 2 WHEN r < 0.90 THEN 3 ELSE 4 END AS k
          FROM (SELECT *, random() AS r FROM accepted) drawn) a
    CROSS JOIN LATERAL generate_series(0, a.k - 1) j;
DELETE FROM enrol WHERE at > now() OR at >= removed_at;
UPDATE enrol e SET licence_id = s.id
    FROM (SELECT user_id, course_id, row_number() OVER (ORDER BY at, user_id, course_id) AS id
          FROM enrol WHERE course_id % 2 = 0 AND r_block >= 0.1) s
    WHERE e.user_id = s.user_id AND e.course_id = s.course_id;
UPDATE enrol SET released_at = removed_at, release_reason = 'learner_removed'
    WHERE licence_id IS NOT NULL AND removed_at IS NOT NULL;
UPDATE enrol SET released_at = at + r_release_at * interval '20 days', release_reason = 'deactivated_by_manager'
    WHERE licence_id IS NOT NULL AND released_at IS NULL AND r_release < 0.15
      AND at + r_release_at * interval '20 days' < now();
INSERT INTO licences (id, user_id, course_id, catalog_id, is_active, created_at, updated_at)
    SELECT licence_id, user_id, course_id, 1, released_at IS NULL, at, COALESCE(released_at, at) FROM enrol WHERE licence_id IS NOT NULL;
SELECT setval('licences_id_seq', (SELECT max(id) FROM licences));
INSERT INTO platform_enrollments (user_id, course_id, mode, is_active, created_at, updated_at)
    SELECT user_id, course_id, CASE WHEN licence_id IS NOT NULL AND released_at IS NULL THEN 'verified' ELSE 'audit' END,
        true, at, COALESCE(released_at, at)
    FROM enrol WHERE NOT (course_id % 2 = 0 AND r_block < 0.1);

-- The tracking events of all of this, written as they happened (in time order) and
-- forwarded a minute later.
CREATE TEMP TABLE ev AS
    SELECT 'invitation.sent' AS name, invited_at AS occurred_at, NULL::bigint AS course_id, user_id, id AS invitation_id,
        channel, NULL::text AS reason, '{}'::jsonb AS data
    FROM invitations WHERE send_count > 0
    UNION ALL
    SELECT 'invitation.accepted', accepted_at, NULL, user_id, id, channel, NULL, '{}' FROM invitations WHERE accepted_at IS NOT NULL
    UNION ALL
    SELECT 'invitation.declined', declined_at, NULL, user_id, id, channel, NULL, '{}' FROM invitations WHERE declined_at IS NOT NULL
    UNION ALL
    SELECT 'invitation.removed', removed_at, NULL, user_id, id, channel, NULL, '{}' FROM invitations WHERE removed_at IS NOT NULL
    UNION ALL
    SELECT 'enrollment.activated', at, course_id, user_id, NULL, NULL, NULL,
        jsonb_build_object('mode', CASE WHEN licence_id IS NULL THEN 'audit' ELSE 'verified' END, 'licence_id', licence_id)
    FROM enrol WHERE NOT (course_id % 2 = 0 AND r_block < 0.1)
    UNION ALL
    SELECT 'enrollment.blocked', at, course_id, user_id, NULL, NULL, 'course_limit_reached', '{}'
    FROM enrol WHERE course_id % 2 = 0 AND r_block < 0.1
    UNION ALL
    SELECT 'enrollment.deactivated', released_at, course_id, user_id, NULL, NULL, release_reason,
        jsonb_build_object('licence_id', licence_id)
    FROM enrol WHERE released_at IS NOT NULL
    UNION ALL
    -- Other refusals: people who are not (or no longer) learners, and courses not offered.
    SELECT 'enrollment.blocked', t, 1 + n % 10, 101 + n % 15000, NULL, NULL,
        CASE WHEN n % 3 = 0 THEN 'course_not_in_catalog' ELSE 'not_a_learner' END, '{}'
    FROM (SELECT n, now() - random() * interval '120 days' AS t FROM generate_series(1, 3000) n) drawn;
INSERT INTO tracking_events (id, name, occurred_at, partner_id, catalog_id, course_id, user_id, invitation_id, channel, reason, data, forwarded_at)
    SELECT gen_random_uuid(), name, occurred_at, 1, 1, course_id, user_id, invitation_id, channel, reason, data,
        occurred_at + interval '1 minute'
    FROM ev ORDER BY occurred_at;
-- Joins the learner limit refused (kept apart: they leave no event).
INSERT INTO refused_joins (catalog_id, user_id, occurred_at)
    SELECT 1, CASE WHEN n % 2 = 0 THEN 101 + n % 15000 END, now() - random() * interval '120 days'
    FROM generate_series(1, 1500) n;
"#;

fn main() {
    common::block_on(run());
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    what: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn run() {
    let (name, url) = common::fresh_database("analytics");
    let keep = std::env::var("BENCH_KEEP_DB").is_ok_and(|v| !v.is_empty() && v != "0");
    let started = Instant::now();
    let seed = SEED
        .replace("{invitations}", &INVITATIONS.to_string())
        .replace("{time_zone}", TIME_ZONE);
    let mut seeding = PgConnection::establish(&url).unwrap();
    seeding.batch_execute(&seed).unwrap();
    // As autovacuum leaves a table in steady use: statistics and visibility map current.
    seeding.batch_execute("VACUUM ANALYZE").unwrap();
    let counts: Vec<Counted> = diesel::sql_query(
        "SELECT 'invitations' AS what, COUNT(*) AS n FROM invitations
         UNION ALL SELECT 'accepted', COUNT(accepted_at) FROM invitations
         UNION ALL SELECT 'learners', COUNT(*) FROM catalog_learners
         UNION ALL SELECT 'licences', COUNT(*) FROM licences
         UNION ALL SELECT 'refused joins', COUNT(*) FROM refused_joins
         UNION ALL SELECT 'events', COUNT(*) FROM tracking_events
         UNION ALL (SELECT '  ' || name, COUNT(*) FROM tracking_events GROUP BY name ORDER BY name)",
    )
    .load(&mut seeding)
    .unwrap();
    drop(seeding);
    println!("seeded in {:.1?}:", started.elapsed());
    for c in &counts {
        println!("  {:<28} {:>8}", c.what, c.n);
    }

    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.database_pool_size = 16;
    let db = Db::connect(&settings).unwrap();
    // The roll-ups as the background runner keeps them: the seed's deltas folded.
    let folded = db
        .transaction(|conn| Ok(partner_catalog::models::analytics::fold(conn)?))
        .await
        .unwrap();
    println!("  {:<28} {:>8}", "roll-up deltas folded", folded);
    common::set_password(&db, 1, "bench staff password").await;
    common::set_password(&db, 2, "bench manager password").await;
    let app = Application::build(settings, db).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let manager =
        common::signed_in(&base, "bench-manager@example.org", "bench manager password").await;
    let staff = common::signed_in(&base, "bench-staff@example.org", "bench staff password").await;

    // A custom 90-day period ending a month ago, in the partner's time zone.
    let today = chrono::Utc::now()
        .with_timezone(&TIME_ZONE.parse::<chrono_tz::Tz>().unwrap())
        .date_naive();
    let (from, until) = (
        today - chrono::Duration::days(119),
        today - chrono::Duration::days(30),
    );
    let pages = [
        (
            "partner, last 90 days",
            &manager,
            "/partner/bench/analytics?period=90".to_string(),
        ),
        (
            "partner, last 30 days",
            &manager,
            "/partner/bench/analytics?period=30".to_string(),
        ),
        (
            "catalog, last 90 days",
            &manager,
            "/partner/bench/catalogs/1/analytics?period=90".to_string(),
        ),
        (
            "partner, custom 90 days",
            &manager,
            format!("/partner/bench/analytics?period=custom&from={from}&until={until}"),
        ),
        (
            "partner, weekly CSV, 90 days",
            &manager,
            "/partner/bench/analytics/weekly.csv?period=90".to_string(),
        ),
        (
            "platform (staff), 90 days",
            &staff,
            "/staff/analytics?period=90".to_string(),
        ),
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
    for (label, client, path) in pages {
        // Warm-up, and a check that the page shows a report rather than an empty one.
        let warm = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(warm.status(), 200, "{path}");
        let body = warm.text().await.unwrap();
        assert!(body.len() > 200, "{path}: {body}");
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
    drop((manager, staff));
    if keep {
        println!("\nkept the database {name} (BENCH_KEEP_DB)");
    } else {
        common::drop_database(&name);
    }
}
