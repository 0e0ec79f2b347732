//! The staff view of the email outbox: every email, its delivery state, and a retry.

use diesel::PgConnection;
use serde_json::json;

use super::audit::{self, Subject};
use crate::error::{Error, Result};
use crate::models::outbox::{self, OutboundEmail, OutboundEmailSummary};
use crate::models::{PageRequest, Paginated};
use crate::policies::Actor;
use crate::policies::access::require_staff;

/// The statuses an email can have, in the order the filter offers them.
pub const STATUSES: [&str; 3] = [outbox::QUEUED, outbox::SENT, outbox::FAILED];

/// Newest first; an unknown status filter shows every email.
pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    status: &str,
    recipient: &str,
    page: PageRequest,
) -> Result<Paginated<OutboundEmailSummary>> {
    require_staff(actor)?;
    let status = STATUSES.iter().copied().find(|s| *s == status);
    Ok(outbox::search(conn, status, recipient, page)?)
}

/// One email; its bodies still hold the secret's placeholder, never the secret.
pub fn find(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<OutboundEmail> {
    require_staff(actor)?;
    outbox::find(conn, id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("the email"),
        other => other.into(),
    })
}

/// Queues a failed email again, with a fresh round of attempts.
pub fn retry(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<OutboundEmail> {
    let before = find(conn, actor, id)?;
    if outbox::requeue(conn, id)? == 0 {
        return Err(Error::Conflict(format!(
            "Only a failed email can be retried; this one is {}.",
            before.status
        )));
    }
    let after = outbox::find(conn, id)?;
    let state = |e: &OutboundEmail| {
        json!({
            "status": e.status,
            "attempts": e.attempts,
            "last_error": e.last_error,
            "next_attempt_at": e.next_attempt_at,
        })
    };
    let mut subject = Subject::new("outbound_email", id);
    if let Some(partner_id) = before.partner_id {
        subject = subject.partner(partner_id);
    }
    audit::record(
        conn,
        actor,
        "email.retry",
        subject,
        Some(state(&before)),
        Some(state(&after)),
        None,
    )?;
    Ok(after)
}
