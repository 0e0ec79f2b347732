//! Rule 11: every change made by a person or a token leaves an audit entry, written
//! in the same transaction as the change.

use diesel::PgConnection;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEntry};
use crate::policies::Actor;

/// What an entry is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub object_type: &'a str,
    pub object_id: i64,
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
}

impl<'a> Subject<'a> {
    pub fn new(object_type: &'a str, object_id: i64) -> Self {
        Self {
            object_type,
            object_id,
            partner_id: None,
            catalog_id: None,
        }
    }

    pub fn partner(mut self, partner_id: i64) -> Self {
        self.partner_id = Some(partner_id);
        self
    }

    pub fn catalog(mut self, partner_id: i64, catalog_id: i64) -> Self {
        self.partner_id = Some(partner_id);
        self.catalog_id = Some(catalog_id);
        self
    }
}

pub fn to_json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(Error::internal)
}

/// The longest reason a person may give for a change.
pub const MAX_REASON_CHARS: usize = 500;

/// Writes the audit entry of a change. A reason that is too long refuses the whole change
/// (the caller's transaction rolls back).
pub fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    subject: Subject<'_>,
    before: Option<Value>,
    after: Option<Value>,
    reason: Option<&str>,
) -> Result<()> {
    let object_id = subject.object_id.to_string();
    let reason = reason
        .map(|raw| crate::domain::names::optional_text(raw, MAX_REASON_CHARS))
        .transpose()
        .map_err(|message| Error::invalid("reason", message))?
        .filter(|r| !r.is_empty());
    audit::insert(
        conn,
        &NewAuditEntry {
            actor_user_id: actor.user_id,
            actor_role: actor.audit_role(),
            api_token_id: actor.api_token_id,
            action,
            object_type: subject.object_type,
            object_id: &object_id,
            partner_id: subject.partner_id,
            catalog_id: subject.catalog_id,
            before,
            after,
            reason: reason.as_deref(),
        },
    )?;
    Ok(())
}
