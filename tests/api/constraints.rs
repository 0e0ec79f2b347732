//! The database itself refuses what the rules forbid.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::helpers::{database_url, fresh_database};

fn connect() -> PgConnection {
    PgConnection::establish(&database_url(&fresh_database())).unwrap()
}

const SETUP: &str = "
INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO organisations (id, short_name, name) VALUES (1, 'ACMEx', 'ACME');
INSERT INTO partners (id, organisation_id, code, name) VALUES (1, 1, 'acme', 'ACME');
INSERT INTO courses (id, key, organisation_id, title, modes) VALUES (1, 'k1', 1, 'T', '{audit,verified}'), (2, 'k2', 1, 'T', '{audit}');
INSERT INTO catalogs (id, partner_id, slug, name, available_start, available_end) VALUES (1, 1, 'acme-c', 'C', now(), now() + interval '1 day');
";

fn refused(conn: &mut PgConnection, sql: &str) -> bool {
    conn.batch_execute(&format!("SAVEPOINT s; {sql}")).is_err()
        && conn.batch_execute("ROLLBACK TO SAVEPOINT s").is_ok()
}

#[test]
fn constraints_enforce_the_rules() {
    let mut conn = connect();
    conn.batch_execute("BEGIN").unwrap();
    conn.batch_execute(SETUP).unwrap();
    let token = |n: u8| format!("decode(repeat('{n:02x}', 32), 'hex')");
    // Emails are stored normalised.
    assert!(refused(
        &mut conn,
        "INSERT INTO users (email) VALUES ('Upper@Example.com')"
    ));
    // Paid is derived from modes.
    let paid: Vec<bool> = diesel::sql_query("SELECT is_paid FROM courses ORDER BY id")
        .load::<Paid>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|p| p.is_paid)
        .collect();
    assert_eq!(paid, vec![true, false]);
    // End before start, negative limits.
    assert!(refused(
        &mut conn,
        "UPDATE catalogs SET available_end = available_start - interval '1 second'"
    ));
    assert!(refused(&mut conn, "UPDATE catalogs SET user_limit = -1"));
    assert!(refused(
        &mut conn,
        "UPDATE catalogs SET course_enrollments_limit = -1"
    ));
    // Positions >= 0 and unique per catalog.
    assert!(refused(
        &mut conn,
        "INSERT INTO catalog_courses (catalog_id, course_id, position) VALUES (1, 1, -1)"
    ));
    conn.batch_execute(
        "INSERT INTO catalog_courses (catalog_id, course_id, position) VALUES (1, 1, 0)",
    )
    .unwrap();
    assert!(refused(
        &mut conn,
        "INSERT INTO catalog_courses (catalog_id, course_id, position) VALUES (1, 1, 1)"
    ));
    // One active invitation per catalog and email; another allowed once declined.
    let invite = |n: u8| {
        format!(
            "INSERT INTO invitations (catalog_id, email, token_hash, channel, expires_at) VALUES (1, 'a@example.com', {}, 'manual', now() + interval '1 day')",
            token(n)
        )
    };
    conn.batch_execute(&invite(1)).unwrap();
    assert!(refused(&mut conn, &invite(2)));
    conn.batch_execute("UPDATE invitations SET declined_at = now()")
        .unwrap();
    conn.batch_execute(&invite(3)).unwrap();
    // Never both accepted and declined.
    assert!(refused(
        &mut conn,
        "UPDATE invitations SET accepted_at = now(), declined_at = now()"
    ));
    // One licence and one platform enrolment per (user, course).
    conn.batch_execute("INSERT INTO licences (user_id, course_id, catalog_id) VALUES (1, 1, 1)")
        .unwrap();
    assert!(refused(
        &mut conn,
        "INSERT INTO licences (user_id, course_id, catalog_id) VALUES (1, 1, 1)"
    ));
    conn.batch_execute(
        "INSERT INTO platform_enrollments (user_id, course_id, mode) VALUES (1, 1, 'audit')",
    )
    .unwrap();
    assert!(refused(
        &mut conn,
        "INSERT INTO platform_enrollments (user_id, course_id, mode) VALUES (1, 1, 'verified')"
    ));
    // One learner row per (catalog, user).
    conn.batch_execute("INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active) SELECT 1, 1, id, true FROM invitations LIMIT 1").unwrap();
    assert!(refused(
        &mut conn,
        "INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active) SELECT 1, 1, id, true FROM invitations LIMIT 1"
    ));
    // A catalog with history is not deleted; a user manages at most one partner.
    assert!(refused(&mut conn, "DELETE FROM catalogs WHERE id = 1"));
    conn.batch_execute("INSERT INTO partner_managers (user_id, partner_id) VALUES (2, 1)")
        .unwrap();
    assert!(refused(
        &mut conn,
        "INSERT INTO partner_managers (user_id, partner_id) VALUES (2, 1)"
    ));
    // A pending enrolment names exactly one identity.
    assert!(refused(
        &mut conn,
        "INSERT INTO pending_enrollments (catalog_id, expires_at) VALUES (1, now())"
    ));
    assert!(refused(
        &mut conn,
        "INSERT INTO pending_enrollments (catalog_id, email, external_provider, external_remote_id, expires_at) VALUES (1, 'x@y.com', 'uni', '1', now())"
    ));
    conn.batch_execute("ROLLBACK").unwrap();
}

#[derive(QueryableByName)]
struct Paid {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_paid: bool,
}
