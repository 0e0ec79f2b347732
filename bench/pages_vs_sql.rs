//! Each console page against its own SQL: on one catalog with 100,000 invitations and
//! 20,000 learners, every page is requested by 8 concurrent clients, then the exact
//! statements that page sent (captured from the PostgreSQL log, with their parameters)
//! are run bare by `pgbench` at the same concurrency, with the same values bound to the
//! same parameters (so both sides run the same cached plans). The ratio of the two rates says how
//! close a page comes to the cost of its SQL.
//!
//! Run with `cargo bench --bench pages_vs_sql` on the machine that runs PostgreSQL: it
//! reads the server's log (`PG_LOG`, by default Debian's
//! `/var/log/postgresql/postgresql-15-main.log`) and needs `pgbench` on the PATH.
//! Page and SQL take turns, `BENCH_ROUNDS` times (3) for `BENCH_SECONDS` each (5), and
//! the medians are reported. `BENCH_CLIENTS` (8) sets the concurrency;
//! `BENCH_PAGES=invitations` measures only the pages whose label holds that text;
//! `BENCH_SHOW_SQL=1` prints each page's statements, `BENCH_KEEP_DB=1` keeps the database,
//! `BENCH_POOL` (16) sets the measured server's pool size.
//!
//! With the kernel's autogroup scheduling on (`kernel.sched_autogroup_enabled`, Debian's
//! default), PostgreSQL — started in a session of its own — and this process with its
//! load generators get equal shares of a busy CPU: while a page is measured, server and
//! wrk hold PostgreSQL to half the machine, while pgbench leaves it nearly all. Figures
//! comparable between the two sides need `sysctl kernel.sched_autogroup_enabled=0`; the
//! benchmark says which way it ran.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use partner_catalog::configuration::Settings;
use partner_catalog::db::Db;
use partner_catalog::startup::Application;

const INVITATIONS: i64 = 100_000;
const LEARNERS: i64 = 20_000;

fn main() {
    common::block_on(run());
}

/// One statement as the server received it: its text, with `$1`, `$2`… where it has
/// parameters, and the values bound to them (as the log writes them: quoted literals or
/// `NULL`).
struct Statement {
    sql: String,
    parameters: Vec<String>,
}

impl Statement {
    /// The statement with its parameters written in, for reading.
    fn with_literals(&self) -> String {
        let mut sql = self.sql.clone();
        // Highest numbers first, so that $1 does not eat into $10.
        for (n, value) in self.parameters.iter().enumerate().rev() {
            sql = sql.replace(&format!("${}", n + 1), value);
        }
        sql
    }

    /// The statement for a pgbench script, its parameters as pgbench variables named
    /// `s{index}_{n}`, which `-M prepared` sends as bound parameters, as the server does
    /// (NULL has no variable form and is written in); and the `-D` definitions.
    fn for_pgbench(&self, index: usize) -> (String, Vec<String>) {
        let mut sql = self.sql.clone();
        let mut definitions = Vec::new();
        for (n, value) in self.parameters.iter().enumerate().rev() {
            let placeholder = format!("${}", n + 1);
            if value == "NULL" {
                sql = sql.replace(&placeholder, "NULL");
                continue;
            }
            let name = format!("s{index}_{}", n + 1);
            sql = sql.replace(&placeholder, &format!(":{name}"));
            let text = value[1..value.len() - 1].replace("''", "'");
            definitions.push(format!("{name}={text}"));
        }
        (sql, definitions)
    }
}

fn statements_in_log(log: &str, database: &str) -> Vec<Statement> {
    // Records start with Debian's prefix: `%m [%p] %q%u@%d `.
    let starts_record = |line: &str| {
        line.len() > 24
            && line.as_bytes()[4] == b'-'
            && line.as_bytes()[10] == b' '
            && line.contains(" [")
    };
    let mut records: Vec<String> = Vec::new();
    for line in log.lines() {
        if starts_record(line) {
            records.push(line.to_string());
        } else if let Some(last) = records.last_mut() {
            last.push('\n');
            last.push_str(line);
        }
    }
    let mine = format!("@{database} ");
    let mut statements: Vec<Statement> = Vec::new();
    for record in records.iter().filter(|r| r.contains(&mine)) {
        if let Some(at) = record.find("LOG:  execute ") {
            let rest = &record[at + "LOG:  execute ".len()..];
            let sql = &rest[rest.find(": ").unwrap() + 2..];
            statements.push(Statement {
                sql: sql.to_string(),
                parameters: Vec::new(),
            });
        } else if let Some(at) = record.find("LOG:  statement: ") {
            statements.push(Statement {
                sql: record[at + "LOG:  statement: ".len()..].to_string(),
                parameters: Vec::new(),
            });
        } else if let Some(at) = record.find("DETAIL:  parameters: ") {
            if let Some(last) = statements.last_mut() {
                last.parameters = parse_parameters(&record[at + "DETAIL:  parameters: ".len()..]);
            }
        }
    }
    statements
}

/// `$1 = '5', $2 = NULL, $3 = 'it''s'` → the literals, in order.
fn parse_parameters(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = text.trim();
    while let Some(eq) = rest.find(" = ") {
        rest = &rest[eq + 3..];
        if let Some(after) = rest.strip_prefix("NULL") {
            values.push("NULL".to_string());
            rest = after;
        } else {
            // A quoted literal; '' inside it is a quote.
            let bytes = rest.as_bytes();
            let mut end = 1;
            loop {
                if bytes[end] == b'\'' {
                    if bytes.get(end + 1) == Some(&b'\'') {
                        end += 2;
                        continue;
                    }
                    break;
                }
                end += 1;
            }
            values.push(rest[..=end].to_string());
            rest = &rest[end + 1..];
        }
        rest = rest.trim_start_matches(", ");
    }
    values
}

/// Requests `url` with `wrk` (a C load generator in a process of its own, as pgbench is
/// for the SQL side) from `clients` connections for `seconds`; answers requests/s and
/// p95. Every answer must be a full page: a redirect to sign-in would be small.
fn load_page(
    url: &str,
    cookie: &str,
    page_bytes: usize,
    clients: usize,
    seconds: u64,
) -> (u64, f64, Duration) {
    let dir = std::env::temp_dir().join(format!("pc_wrk_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("report.lua");
    std::fs::write(
        &script,
        "done = function(summary, latency, requests)\n\
         local e = summary.errors\n\
         io.write(string.format(\"RESULT %d %d %d %d %d\\n\", summary.requests, \
         summary.duration, summary.bytes, latency:percentile(95), \
         e.connect + e.read + e.write + e.status + e.timeout))\n\
         end\n",
    )
    .unwrap();
    let output = Command::new("wrk")
        .args([
            "-t",
            // wrk needs a connection per thread.
            &clients.min(2).to_string(),
            "-c",
            &clients.to_string(),
            "-d",
            &format!("{seconds}s"),
        ])
        .args(["--latency", "-H", &format!("Cookie: {cookie}")])
        .args(["-s", script.to_str().unwrap(), url])
        .output()
        .expect("wrk must be installed (Debian's wrk package)");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {stdout}");
    if std::env::var("BENCH_SHOW_WRK").is_ok_and(|v| v == "1") {
        println!("{stdout}");
    }
    let numbers: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let [requests, duration_us, bytes, p95_us, errors] = numbers[..] else {
        panic!("wrk's report: {stdout}")
    };
    assert_eq!(errors, 0, "{url}: wrk saw errors: {stdout}");
    assert!(
        bytes / requests.max(1) >= page_bytes as u64,
        "{url}: answers smaller than the page ({} bytes each)",
        bytes / requests.max(1)
    );
    (
        requests,
        requests as f64 / (duration_us as f64 / 1e6),
        Duration::from_micros(p95_us),
    )
}

/// One turn of a page and its SQL.
struct Round {
    page_rate: f64,
    page_p95: Duration,
    server_cpu_us: u64,
    sql_rate: f64,
    sql_p95: Duration,
}

/// CPU time this process (the server; the benchmark itself waits meanwhile) has used, in
/// microseconds.
fn process_cpu_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // utime and stime, in clock ticks (100 a second), after the command's parenthesis.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ticks * 10_000
}

/// Runs the statements as one pgbench transaction script, with the same parameters
/// bound, over connections set up as the server's are (no TLS, the same lock and
/// statement timeouts); answers transactions/s and p95.
fn pgbench(
    database: &str,
    settings: &Settings,
    statements: &[Statement],
    clients: usize,
    seconds: u64,
) -> (f64, Duration) {
    let dir = std::env::temp_dir().join(format!("pc_pgbench_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("page.sql");
    let mut body = String::new();
    let mut definitions = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        let (sql, defined) = statement.for_pgbench(index);
        // pgbench reads one statement per line unless it ends with `;`.
        body.push_str(&format!("{};\n", sql.trim_end_matches(';')));
        definitions.extend(defined);
    }
    std::fs::write(&script, body).unwrap();
    let admin = url::Url::parse(&common::admin_url()).unwrap();
    let output = Command::new("pgbench")
        .current_dir(&dir)
        .env("PGSSLMODE", "disable")
        .env(
            "PGOPTIONS",
            format!(
                "-c lock_timeout={} -c statement_timeout={}",
                settings.database_lock_timeout_ms, settings.database_statement_timeout_ms
            ),
        )
        .args(["-n", "-M", "prepared", "-l", "--log-prefix", "tx"])
        .args(definitions.iter().flat_map(|d| ["-D", d.as_str()]))
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &seconds.to_string(),
        ])
        .args(["-h", admin.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &admin.port().unwrap_or(5432).to_string()])
        .args([
            "-U",
            if admin.username().is_empty() {
                "postgres"
            } else {
                admin.username()
            },
        ])
        .args(["-f", script.to_str().unwrap(), database])
        .output()
        .expect("pgbench must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps: f64 = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next()?.parse().ok())
        .unwrap();
    // Per-transaction logs: `client transaction latency_us script epoch epoch_us`.
    let mut latencies: Vec<Duration> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tx")
        {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                    latencies.push(Duration::from_micros(us));
                }
            }
        }
    }
    latencies.sort();
    let _ = std::fs::remove_dir_all(&dir);
    (tps, common::percentile(&latencies, 0.95))
}

/// How often each statement prepared on one of the server's connections was planned
/// anew (custom) or ran its cached plan (generic).
async fn show_plans(db: &Db) {
    #[derive(QueryableByName)]
    struct Plans {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom_plans: i64,
    }
    let plans: Vec<Plans> = db
        .run(|conn| {
            Ok(diesel::sql_query(
                "SELECT left(regexp_replace(statement, '\\s+', ' ', 'g'), 140) AS statement, \
                 generic_plans, custom_plans FROM pg_prepared_statements ORDER BY statement",
            )
            .load(conn)?)
        })
        .await
        .unwrap();
    for p in plans {
        println!(
            "  generic {:>6} custom {:>6}  {}",
            p.generic_plans, p.custom_plans, p.statement
        );
    }
}

async fn run() {
    let log_path = std::env::var("PG_LOG")
        .unwrap_or_else(|_| "/var/log/postgresql/postgresql-15-main.log".into());
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let (name, url) = common::fresh_database("pages_sql");
    let started = Instant::now();
    common::seed_big_catalog(&url, INVITATIONS, LEARNERS);
    println!(
        "seeded {INVITATIONS} invitations, {LEARNERS} learners in {:.1?}",
        started.elapsed()
    );
    let mut admin = PgConnection::establish(&common::admin_url()).unwrap();

    let deep = common::invitations_page_2000(&url);
    let only = std::env::var("BENCH_PAGES").unwrap_or_default();
    let pages = [
        ("dashboard", "/partner/bench".to_string()),
        (
            "invitations, first page",
            "/partner/bench/catalogs/1/invitations".to_string(),
        ),
        ("invitations, page 2000", deep),
        (
            "invitations, last page",
            "/partner/bench/catalogs/1/invitations?last=1".to_string(),
        ),
        (
            "invitations, search",
            "/partner/bench/catalogs/1/invitations?q=person9999".to_string(),
        ),
        (
            "learners, first page",
            "/partner/bench/catalogs/1/learners".to_string(),
        ),
        (
            "licences, first page",
            "/partner/bench/catalogs/1/licences".to_string(),
        ),
        ("audit log", "/partner/bench/audit".to_string()),
    ];
    let pages: Vec<_> = pages
        .into_iter()
        .filter(|(label, _)| label.contains(only.as_str()))
        .collect();

    // The manager's password is set before any statement is logged: its hash stays out
    // of the server's log.
    let settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    common::set_password(
        &Db::connect(&settings).unwrap(),
        2,
        "bench manager password",
    )
    .await;

    // Capture: a server whose connections log every statement, one request per page.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} SET log_statement = 'all'"))
        .unwrap();
    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.database_pool_size = 4;
    let capture_db = Db::connect(&settings).unwrap();
    let capture = Application::build(settings.clone(), capture_db).unwrap();
    let capture_base = format!("http://127.0.0.1:{}", capture.port());
    tokio::spawn(capture.run_until_stopped());
    let client = common::signed_in(
        &capture_base,
        "bench-manager@example.org",
        "bench manager password",
    )
    .await;
    let mut captured = Vec::new();
    for (label, path) in &pages {
        // Once to prepare what is prepared once per connection, then the captured one.
        let _ = client
            .get(format!("{capture_base}{path}"))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut log = std::fs::File::open(&log_path).expect("the PostgreSQL log (PG_LOG)");
        let from = log.seek(SeekFrom::End(0)).unwrap();
        let response = client
            .get(format!("{capture_base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let _ = response.bytes().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        log.seek(SeekFrom::Start(from)).unwrap();
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        let statements = statements_in_log(&text, &name);
        assert!(!statements.is_empty(), "{label}: nothing in {log_path}");
        captured.push(statements);
    }
    admin
        .batch_execute(&format!("ALTER DATABASE {name} RESET log_statement"))
        .unwrap();

    // Measure: a server whose connections log nothing.
    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.database_pool_size = std::env::var("BENCH_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let db = Db::connect(&settings).unwrap();
    let app = Application::build(settings.clone(), db.clone()).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let (client, cookie) =
        common::signed_in_with_cookie(&base, "bench-manager@example.org", "bench manager password")
            .await;

    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .is_ok_and(|v| v.trim() == "1");
    if autogroup {
        println!(
            "\nnote: autogroup scheduling is on: PostgreSQL gets half the CPU while pages are \
             measured and nearly all of it under pgbench (see this file's header)"
        );
    }
    println!(
        "\n{clients} concurrent clients, {rounds} rounds of {seconds} s per page and per side; \
         SQL: pgbench -M prepared with the page's statements as one transaction. \
         Rates and the ratio: medians of the rounds (the ratio's lowest and highest in \
         brackets); p95: the highest round's\n"
    );
    println!(
        "| page | statements | page req/s | page p95 ms | server CPU µs/page | SQL tx/s | SQL p95 ms | page / SQL (rounds) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut peak_rss = 0;
    for ((label, path), statements) in pages.iter().zip(&captured) {
        let url = format!("{base}{path}");
        let checkouts = db.checkouts();
        let warm = client.get(&url).send().await.unwrap();
        assert_eq!(warm.status(), 200, "{path}");
        let page_bytes = warm.bytes().await.unwrap().len();
        assert_eq!(
            db.checkouts() - checkouts,
            1,
            "{label}: one connection per request"
        );
        // Page and SQL take turns, so that a machine slowing down or speeding up
        // meanwhile moves both sides alike.
        let mut rounds_measured = Vec::new();
        for _ in 0..rounds {
            let cpu_before = process_cpu_us();
            let load = std::thread::spawn({
                let (url, cookie) = (url.clone(), cookie.clone());
                move || load_page(&url, &cookie, page_bytes, clients, seconds)
            });
            while !load.is_finished() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                peak_rss = peak_rss.max(common::memory_kib("VmRSS:"));
            }
            let (requests, page_rate, page_p95) = load.join().unwrap();
            let server_cpu_us = (process_cpu_us() - cpu_before) / requests.max(1);
            if std::env::var("BENCH_SHOW_PLANS").is_ok_and(|v| v == "1") {
                show_plans(&db).await;
            }
            let (sql_rate, sql_p95) = pgbench(&name, &settings, statements, clients, seconds);
            if std::env::var("BENCH_SHOW_ROUNDS").is_ok_and(|v| v == "1") {
                println!(
                    "  {label}: page {page_rate:.0}/s p95 {page_p95:.1?}, SQL {sql_rate:.0}/s p95 {sql_p95:.1?}"
                );
            }
            rounds_measured.push(Round {
                page_rate,
                page_p95,
                server_cpu_us,
                sql_rate,
                sql_p95,
            });
        }
        let median = |value: fn(&Round) -> f64| {
            let mut values: Vec<f64> = rounds_measured.iter().map(value).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let highest = |value: fn(&Round) -> Duration| {
            rounds_measured
                .iter()
                .map(value)
                .max()
                .unwrap()
                .as_secs_f64()
                * 1000.0
        };
        let ratios: Vec<f64> = rounds_measured
            .iter()
            .map(|r| 100.0 * r.page_rate / r.sql_rate)
            .collect();
        let lowest_ratio = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let highest_ratio = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "| {label} | {} | {:.0} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0} % ({lowest_ratio:.0}–{highest_ratio:.0}) |",
            statements.len(),
            median(|r| r.page_rate),
            highest(|r| r.page_p95),
            median(|r| r.server_cpu_us as f64),
            median(|r| r.sql_rate),
            highest(|r| r.sql_p95),
            median(|r| 100.0 * r.page_rate / r.sql_rate),
        );
    }
    println!(
        "\nserver process RSS under load: peak {} MiB, high-water mark {} MiB",
        peak_rss / 1024,
        common::memory_kib("VmHWM:") / 1024
    );
    if std::env::var("BENCH_SHOW_SQL").is_ok_and(|v| v == "1") {
        for ((label, _), statements) in pages.iter().zip(&captured) {
            println!("\n-- {label}");
            for statement in statements {
                println!("{};", statement.with_literals());
            }
        }
    }
    if std::env::var("BENCH_KEEP_DB").is_ok_and(|v| v == "1") {
        println!("\nkept the database {name} (BENCH_KEEP_DB)");
    } else {
        common::drop_database(&name);
    }
}
