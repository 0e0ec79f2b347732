use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use partner_catalog::db::MIGRATIONS;

use crate::helpers::{database_url, empty_database};

fn table_count(conn: &mut PgConnection) -> i64 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations')",
    ))
    .get_result(conn)
    .unwrap()
}

#[test]
fn every_migration_reverts_cleanly_and_applies_again() {
    let name = empty_database();
    let mut conn = PgConnection::establish(&database_url(&name)).unwrap();
    let applied = conn.run_pending_migrations(MIGRATIONS).unwrap();
    assert!(applied.len() >= 7);
    let tables = table_count(&mut conn);
    assert!(
        tables >= 20,
        "expected every entity's table, found {tables}"
    );
    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(table_count(&mut conn), 0, "reverting leaves nothing behind");
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    assert_eq!(table_count(&mut conn), tables);
}

#[test]
fn every_entity_has_its_table() {
    let name = empty_database();
    let mut conn = PgConnection::establish(&database_url(&name)).unwrap();
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    for table in [
        "users",
        "user_tokens",
        "external_identities",
        "organisations",
        "partners",
        "partner_managers",
        "courses",
        "shared_pool_courses",
        "platform_enrollments",
        "catalogs",
        "catalog_email_patterns",
        "catalog_courses",
        "invitations",
        "catalog_learners",
        "licences",
        "pending_enrollments",
        "bulk_jobs",
        "bulk_job_rows",
        "audit_entries",
        "tracking_events",
        "refused_joins",
        "outbound_emails",
        "api_tokens",
    ] {
        let found: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = '{table}')"
        )))
        .get_result(&mut conn)
        .unwrap();
        assert!(found, "table {table} is missing");
    }
}
