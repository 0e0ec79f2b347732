use diesel::PgConnection;

use crate::error::Result;
use crate::models::outbox::{self, NewOutboundEmail, OutboundEmail};

/// Stands in the bodies for the link secret until the moment of sending.
pub const SECRET_MARKER: &str = "PCSECRET-7d3f9a";

/// An email to queue; its bodies may hold `SECRET_MARKER` where `secret` goes.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub kind: &'static str,
    pub to: String,
    pub from_name: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub secret: Option<String>,
    pub partner_id: Option<i64>,
    pub invitation_id: Option<i64>,
}

/// Writes many emails to the outbox in the caller's transaction, a few hundred a statement.
pub fn queue_many(
    conn: &mut PgConnection,
    sealer: &super::Sealer,
    emails: Vec<OutgoingEmail>,
) -> Result<()> {
    let rows: Vec<NewOutboundEmail> = emails.into_iter().map(|e| new_row(sealer, e)).collect();
    for chunk in rows.chunks(500) {
        outbox::insert_many(conn, chunk)?;
    }
    Ok(())
}

fn new_row(sealer: &super::Sealer, email: OutgoingEmail) -> NewOutboundEmail {
    NewOutboundEmail {
        kind: email.kind.to_string(),
        sealed_secret: email.secret.as_deref().map(|s| sealer.seal(s)),
        to_address: email.to,
        from_name: email.from_name,
        reply_to: email.reply_to.filter(|r| !r.is_empty()),
        subject: email.subject,
        text_body: email.text_body,
        html_body: email.html_body,
        partner_id: email.partner_id,
        invitation_id: email.invitation_id,
    }
}

/// Writes the email to the outbox in the caller's transaction.
pub fn queue(
    conn: &mut PgConnection,
    sealer: &super::Sealer,
    email: OutgoingEmail,
) -> Result<OutboundEmail> {
    Ok(outbox::insert(conn, &new_row(sealer, email))?)
}
