//! A schema-based fuzz run of the JSON API: Schemathesis (from PyPI) reads
//! `GET /api/v1/openapi.json`, generates requests for every operation (valid and invalid
//! ones), sends them to the app on 127.0.0.1 and checks each answer: no 5xx, a status
//! code and a content type the description lists, a body that matches the schema it
//! gives for it, and 405 with `Allow` for a method an address does not answer.
//!
//! It runs twice on the demo data, with a staff token and then with a manager's, with a
//! fixed seed, one worker and a bounded number of examples per operation, so that a run
//! is repeatable and short. So that its requests reach more than "404 no such catalog",
//! a `schemathesis.toml` gives it the database's real catalog slugs, course keys,
//! addresses and ids as dictionaries, which it uses for some of the values it generates.
//!
//! `.ci/run` installs Schemathesis and sets `REQUIRE_SCHEMATHESIS=1`, so there a missing
//! Schemathesis fails; elsewhere the test says it was skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use partner_catalog::policies::Actor;

use crate::helpers::{TestApp, spawn_app};

const VENV: &str = ".cache/partner-catalog/schemathesis-4.32.5";
const INSTALL: &str = "python3 -m venv ~/.cache/partner-catalog/schemathesis-4.32.5 && \
     ~/.cache/partner-catalog/schemathesis-4.32.5/bin/pip install 'schemathesis==4.32.5', \
     then put its bin/ on PATH (bash .ci/run does both)";
/// Schemathesis's random seed: the same requests on every run.
const SEED: &str = "20250101";
/// Test cases per operation and phase: enough to reach every documented answer, few
/// enough for both runs to take well under two minutes on two cores.
const MAX_EXAMPLES: &str = "50";
/// A run that takes longer than this is stopped and fails.
const RUN_WITHIN: Duration = Duration::from_secs(300);
const CHECKS: &str = "not_a_server_error,status_code_conformance,unsupported_method,\
     content_type_conformance,response_schema_conformance";

/// The `schemathesis` command on PATH, or in the virtualenv `.ci/run` makes.
fn schemathesis_command() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("schemathesis"))
        .chain([home.join(VENV).join("bin/schemathesis")])
        .find(|candidate| candidate.is_file())
}

/// Schemathesis, if installed; with `REQUIRE_SCHEMATHESIS` set, panics when it is not.
fn schemathesis_available() -> Option<PathBuf> {
    let found = schemathesis_command();
    if found.is_none() && std::env::var_os("REQUIRE_SCHEMATHESIS").is_some() {
        panic!("schema fuzzing required: `schemathesis` is not on PATH; install it: {INSTALL}");
    }
    if found.is_none() {
        eprintln!("skipped: `schemathesis` is not on PATH; {INSTALL}");
    }
    found
}

/// A new API token of this account.
async fn token_for(app: &TestApp, email: &'static str) -> String {
    app.db
        .transaction(move |conn| {
            let user = partner_catalog::models::users::find_by_email(conn, email)?.unwrap();
            let partner = partner_catalog::models::partners::managed_by(conn, user.id)?;
            let actor = Actor::for_user(&user, partner.map(|p| p.id));
            let (_, secret) =
                partner_catalog::services::api_tokens::create(conn, &actor, "schema fuzz")?;
            Ok(secret)
        })
        .await
        .unwrap()
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

/// What the database holds now, as values for Schemathesis to try.
struct Known {
    slugs: Vec<String>,
    course_keys: Vec<String>,
    emails: Vec<String>,
    ids: Vec<i64>,
}

async fn known(app: &TestApp) -> Known {
    app.db
        .run(|conn| {
            let texts = |conn: &mut PgConnection, sql: &str| -> QueryResult<Vec<String>> {
                Ok(diesel::sql_query(sql)
                    .load::<TextRow>(conn)?
                    .into_iter()
                    .map(|r| r.v)
                    .collect())
            };
            let slugs = texts(conn, "SELECT slug AS v FROM catalogs ORDER BY id")?;
            let course_keys = texts(conn, "SELECT key AS v FROM courses ORDER BY id")?;
            let mut emails = texts(conn, "SELECT email AS v FROM users ORDER BY id")?;
            // Addresses no account has yet (invitations, pre-enrolments).
            emails.extend([
                "new.learner@example.com".into(),
                "someone@acme.example".into(),
            ]);
            let mut ids: Vec<i64> = diesel::sql_query(
                "SELECT id AS v FROM invitations UNION SELECT id FROM pending_enrollments \
                 UNION SELECT id FROM licences ORDER BY v",
            )
            .load::<IdRow>(conn)?
            .into_iter()
            .map(|r| r.v)
            .collect();
            if ids.is_empty() {
                ids.push(1);
            }
            Ok(Known {
                slugs,
                course_keys,
                emails,
                ids,
            })
        })
        .await
        .unwrap()
}

/// A `schemathesis.toml` that binds parameters to the known values (each used for part
/// of the generated cases, the rest generated from the schema as usual).
fn config(known: &Known) -> String {
    let list = |values: &[String]| serde_json::to_string(values).unwrap();
    let csv = |values: &[String]| {
        serde_json::to_string(&[
            values.join(","),
            values.first().cloned().unwrap_or_default(),
        ])
        .unwrap()
    };
    let bind = |dictionary: &str, probability: f64| {
        format!("{{ dictionary = \"{dictionary}\", probability = {probability} }}")
    };
    format!(
        r#"[dictionaries.slugs]
values = {slugs}

[dictionaries.course_keys]
values = {course_keys}

[dictionaries.emails]
values = {emails}

[dictionaries.ids]
values = {ids}

[dictionaries.slug_lists]
values = {slug_lists}

[dictionaries.email_lists]
values = {email_lists}

[dictionaries.course_key_lists]
values = {course_key_lists}

[parameters]
"path.slug" = {slug}
"path.course_key" = {course_key}
"path.id" = {id}
"query.catalog" = {catalog}
"query.email" = {email}

[[operations]]
include-path = "/api/v1/catalogs/{{slug}}/invitations"
include-method = "POST"
parameters = {{ "body.emails[*]" = {email} }}

[[operations]]
include-path = "/api/v1/catalogs/{{slug}}/pending-enrollments"
include-method = "POST"
parameters = {{ "body.email" = {email}, "body.courses[*]" = {course_key} }}

[[operations]]
include-path = "/api/v1/enrollments/bulk_enroll"
include-method = "POST"
parameters = {{ "body.catalogs" = {slug_list}, "body.emails" = {email_list}, "body.courses" = {course_key_list} }}
"#,
        slugs = list(&known.slugs),
        course_keys = list(&known.course_keys),
        emails = list(&known.emails),
        ids = serde_json::to_string(&known.ids).unwrap(),
        slug_lists = csv(&known.slugs),
        email_lists = csv(&known.emails),
        course_key_lists = csv(&known.course_keys),
        slug = bind("slugs", 0.7),
        course_key = bind("course_keys", 0.7),
        id = bind("ids", 0.6),
        catalog = bind("slugs", 0.5),
        email = bind("emails", 0.5),
        slug_list = bind("slug_lists", 0.5),
        email_list = bind("email_lists", 0.5),
        course_key_list = bind("course_key_lists", 0.5),
    )
}

struct Run {
    success: bool,
    output: String,
    took: Duration,
}

/// Runs `schemathesis run` against the app as the bearer of `token`, in a directory of
/// its own (no `schemathesis.toml` or example database of the checkout's), stopped after
/// `RUN_WITHIN`. One worker: Python 3.11's `ast.parse`, which Hypothesis calls while
/// generating, can fail when two threads call it at once ("AST constructor recursion
/// depth mismatch", CPython gh-106905), and one worker keeps the run repeatable.
fn fuzz(schemathesis: &Path, address: &str, token: &str, config: &str) -> Run {
    let dir = std::env::temp_dir().join(format!("pc-fuzz-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a directory for the run");
    let config_file = dir.join("schemathesis.toml");
    std::fs::write(&config_file, config).expect("schemathesis.toml");
    let log = dir.join("schemathesis.log");
    let out = std::fs::File::create(&log).expect("the run's log");
    let err = out.try_clone().expect("the run's log");
    let started = Instant::now();
    let mut child = Command::new(schemathesis)
        .current_dir(&dir)
        .arg("--config-file")
        .arg(&config_file)
        .args(["--no-color", "run"])
        .arg(format!("{address}/api/v1/openapi.json"))
        .args(["--url", address])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--generation-with-security-parameters", "false"])
        // The stateful phase links operations by links it infers from answers, and
        // refuses to run when an inferred link names a parameter the target lacks.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .args(["--workers", "1"])
        .arg("--continue-on-failure")
        .args(["--request-timeout", "20"])
        .args(["--generation-database", "none"])
        .args(["--output-sanitize", "false"])
        .args(["--output-truncate", "false"])
        .env("NO_COLOR", "1")
        .env("COLUMNS", "160")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("schemathesis starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("schemathesis runs") {
            break Some(status);
        }
        if started.elapsed() > RUN_WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    let mut output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        None => output.push_str(&format!("\n(stopped: still running after {RUN_WITHIN:?})")),
        Some(status) if !status.success() => output.push_str(&format!("\n(exit: {status})")),
        Some(_) => {}
    }
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        success: status.is_some_and(|s| s.success()),
        output,
        took,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_schema() {
    let Some(schemathesis) = schemathesis_available() else {
        return;
    };
    let app = spawn_app().await;
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("the demo data");
    let callers = [
        (
            "staff",
            token_for(&app, partner_catalog::demo::STAFF_EMAIL).await,
        ),
        (
            "manager",
            token_for(&app, partner_catalog::demo::MANAGER_EMAIL).await,
        ),
    ];
    let mut failures = Vec::new();
    for (who, token) in callers {
        // What the previous run made (pre-enrolments, invitations) is there to try too.
        let config = config(&known(&app).await);
        let (schemathesis, address) = (schemathesis.clone(), app.address.clone());
        let run =
            tokio::task::spawn_blocking(move || fuzz(&schemathesis, &address, &token, &config))
                .await
                .unwrap();
        eprintln!("schemathesis as {who}: {:.1?}", run.took);
        if !run.success {
            failures.push(format!(
                "==== schemathesis as {who} failed ({:.1?}) ====\n{}",
                run.took, run.output
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
