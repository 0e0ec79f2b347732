//! What every benchmark needs: a database of its own on the server the tests use, and
//! readings of the process's memory.

#![allow(dead_code)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The server; `TEST_DATABASE_ADMIN_URL` may point elsewhere.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

pub fn with_database(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("admin url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Creates a migrated database named `pc_bench_<what>_<time>`; returns its name and URL.
pub fn fresh_database(what: &str) -> (String, String) {
    let name = format!("pc_bench_{what}_{}", chrono::Utc::now().timestamp());
    let mut admin = PgConnection::establish(&admin_url()).expect("PostgreSQL must be running");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let url = with_database(&name);
    partner_catalog::db::run_migrations(&url).expect("migrate");
    (name, url)
}

pub fn drop_database(name: &str) {
    if let Ok(mut admin) = PgConnection::establish(&admin_url()) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// A line of `/proc/self/status`, in KiB: `VmRSS:` now, `VmHWM:` the peak.
pub fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `run` on a two-thread runtime, then stops the server's tasks before the process
/// tears down its libraries.
pub fn block_on<F: std::future::Future<Output = ()>>(run: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run);
    runtime.shutdown_timeout(Duration::from_secs(2));
}
