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

/// Tables whose rows are never deleted (people are deactivated; invitations, courses and
/// tokens end with a timestamp): a reference to them needs no index for deletes to stay
/// cheap.
const NEVER_DELETED: [&str; 4] = ["users", "invitations", "courses", "api_tokens"];

#[derive(QueryableByName)]
struct Reference {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    referenced_table: String,
}

#[test]
fn every_reference_to_rows_that_get_deleted_is_indexed() {
    let name = empty_database();
    let mut conn = PgConnection::establish(&database_url(&name)).unwrap();
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    // Foreign keys whose first column leads no index: deleting a referenced row then
    // scans the whole referencing table.
    let unindexed: Vec<Reference> = diesel::sql_query(
        "SELECT c.conrelid::regclass::text AS table_name, a.attname::text AS column_name, \
                c.confrelid::regclass::text AS referenced_table \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.contype = 'f' AND NOT EXISTS ( \
             SELECT 1 FROM pg_index i \
             WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]) \
         ORDER BY 1, 2",
    )
    .load(&mut conn)
    .unwrap();
    let costly: Vec<String> = unindexed
        .iter()
        .filter(|r| !NEVER_DELETED.contains(&r.referenced_table.as_str()))
        .map(|r| {
            format!(
                "{}.{} → {}",
                r.table_name, r.column_name, r.referenced_table
            )
        })
        .collect();
    assert!(
        costly.is_empty(),
        "references without an index to rows that may be deleted: {costly:?}"
    );
    assert!(
        !unindexed.is_empty(),
        "the query finds the unindexed references to users and invitations"
    );
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
