//! Pages driven by a real browser (Debian's chromium through playwright-core).
//! `.ci/run` installs both and sets `REQUIRE_BROWSER_TESTS=1`, so there a missing browser
//! fails; elsewhere the test says it was skipped.

use std::path::Path;
use std::process::Command;

use crate::helpers::{spawn_app, spawn_app_with};

fn browser_available() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists()
        && Path::new("node_modules/playwright-core").exists()
        && Command::new("node").arg("--version").output().is_ok();
    if !ready && std::env::var_os("REQUIRE_BROWSER_TESTS").is_some() {
        panic!("browser tests required: install chromium (apt) and run `npm ci`");
    }
    if !ready {
        eprintln!("skipped: chromium, node or node_modules/playwright-core is missing");
    }
    ready
}

async fn run_script(script: &str, app_url: &str) {
    run_script_with(script, app_url, &[]).await;
}

async fn run_script_with(script: &str, app_url: &str, env: &[(&str, String)]) {
    let script = script.to_string();
    let app_url = app_url.to_string();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .env("APP_URL", &app_url)
            .env("SHOTS", "target/browser")
            .envs(env)
            .output()
            .expect("node runs")
    })
    .await
    .expect("script finished");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser script failed\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_builds_a_catalog_invites_revokes_exports_and_audits_in_a_browser() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("demo data");
    run_script("tests/browser/manager_console.mjs", &app.address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_partners_courses_and_users_and_manage_them_in_a_browser() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("demo data");
    run_script("tests/browser/staff_admin.mjs", &app.address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_list_runs_from_upload_through_staff_approval_to_its_results_in_a_browser() {
    if !browser_available() {
        return;
    }
    let app = spawn_app_with(|s| {
        s.run_worker = true;
        s.worker_poll_ms = 100;
    })
    .await;
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("demo data");
    run_script("tests/browser/bulk_journey.mjs", &app.address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_every_person_passes_axe_at_both_widths_and_no_link_is_broken() {
    if !browser_available() {
        return;
    }
    let app = spawn_app_with(|s| {
        s.run_worker = true;
        s.worker_poll_ms = 100;
    })
    .await;
    partner_catalog::demo::seed(&app.db, &app.ctx())
        .await
        .expect("demo data");
    let mail_dir = app.settings.mail_dir.display().to_string();
    run_script_with(
        "tests/browser/every_page.mjs",
        &app.address,
        &[("MAIL_DIR", mail_dir)],
    )
    .await;
}
