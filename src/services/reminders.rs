//! One reminder per sent invitation, a configurable number of days before it expires.

use chrono::{Duration, Utc};
use diesel::PgConnection;

use super::ServiceContext;
use super::audit::{self, Subject};
use crate::domain::SecretToken;
use crate::error::Result;
use crate::events::{self, Event};
use crate::mail::{self, messages};
use crate::models::{catalogs, invitations, partners};
use crate::policies::Actor;

/// Reminders queued per run.
pub const BATCH: i64 = 100;

/// Queues the reminders now due; returns how many were queued. Invitations of catalogs
/// that have ended are not due (the query leaves them out, so they never crowd out
/// others). Safe to run from several processes.
pub fn send_due(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    days_before_expiry: i64,
) -> Result<usize> {
    let now = Utc::now();
    // An invitation sent within the last day needs no reminder yet.
    let due = invitations::claim_due_for_reminder(
        conn,
        now,
        now + Duration::days(days_before_expiry),
        now - Duration::days(1),
        BATCH,
    )?;
    let mut queued = 0;
    for invitation in &due {
        let catalog = catalogs::find(conn, invitation.catalog_id)?;
        let partner = partners::find(conn, catalog.partner_id)?;
        // Only the hash of the old link is known, so the reminder carries a new one.
        let token = SecretToken::generate();
        let reminded = invitations::mark_reminded(conn, invitation.id, &token.hash(), now)?;
        let email = messages::invitation(
            &ctx.base_url,
            &partner,
            &catalog,
            &reminded,
            token.as_str(),
            true,
        )?;
        mail::queue(conn, &ctx.sealer, email)?;
        Event::new(events::INVITATION_SENT, catalog.partner_id, catalog.id)
            .invitation(reminded.id, &reminded.channel)
            .user(reminded.user_id)
            .data(serde_json::json!({ "reminder": true }))
            .record(conn)?;
        audit::record(
            conn,
            &Actor::system(),
            "invitation.remind",
            Subject::new("invitation", reminded.id).catalog(catalog.partner_id, catalog.id),
            None,
            Some(serde_json::json!({ "expires_at": reminded.expires_at })),
            None,
        )?;
        queued += 1;
    }
    Ok(queued)
}
