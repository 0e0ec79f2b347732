//! Regression tests for holes found by probing the running application as an attacker
//! and as an operator would: each test failed before its fix.

mod processes;
mod requests;
mod sessions;
mod worker;

use diesel::prelude::*;
use partner_catalog::models::schema::{invitations, outbound_emails};

use crate::helpers::TestApp;

/// How many emails of a kind went to an address.
pub async fn emails_of_kind(app: &TestApp, to: &str, kind: &str) -> i64 {
    let (to, kind) = (to.to_string(), kind.to_string());
    app.db
        .run(move |conn| {
            Ok(outbound_emails::table
                .filter(outbound_emails::to_address.eq(to))
                .filter(outbound_emails::kind.eq(kind))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap()
}

/// The id and linked user of the invitation to an address.
pub async fn invitation_to(app: &TestApp, email: &str) -> (i64, Option<i64>) {
    let email = email.to_string();
    app.db
        .run(move |conn| {
            Ok(invitations::table
                .filter(invitations::email.eq(email))
                .select((invitations::id, invitations::user_id))
                .first(conn)?)
        })
        .await
        .unwrap()
}

/// A verified manager of the ACME partner that `journey::setup` creates, signed in in a
/// browser of its own.
pub async fn signed_in_manager(app: &TestApp) -> TestApp {
    use partner_catalog::policies::Actor;
    app.create_user("manager@acme.example", "manager password 1", false)
        .await;
    let ctx = app.ctx();
    app.db
        .transaction(move |conn| {
            let staff =
                partner_catalog::models::users::find_by_email(conn, "staff@example.org")?.unwrap();
            let partner = partner_catalog::models::partners::find_by_code(conn, "acme")?.unwrap();
            partner_catalog::services::partners::assign_manager(
                conn,
                &ctx,
                &Actor::for_user(&staff, None),
                partner.id,
                "manager@acme.example",
            )
        })
        .await
        .unwrap();
    let manager = app.another_browser();
    manager
        .sign_in("manager@acme.example", "manager password 1")
        .await
        .assert_redirect_to("/");
    manager
}
