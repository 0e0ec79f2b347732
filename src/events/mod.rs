//! Tracking events (rule 12), written in the same transaction as the change they
//! describe, and their xAPI statements.

pub mod xapi;

use diesel::PgConnection;
use uuid::Uuid;

use crate::error::Result;
use crate::models::events::{self, NewTrackingEvent};

pub const INVITATION_SENT: &str = "invitation.sent";
pub const INVITATION_ACCEPTED: &str = "invitation.accepted";
pub const INVITATION_DECLINED: &str = "invitation.declined";
pub const INVITATION_REMOVED: &str = "invitation.removed";
pub const ENROLLMENT_ACTIVATED: &str = "enrollment.activated";
pub const ENROLLMENT_DEACTIVATED: &str = "enrollment.deactivated";
pub const ENROLLMENT_BLOCKED: &str = "enrollment.blocked";

/// One event, built up with what it is about.
#[derive(Debug, Clone)]
pub struct Event(NewTrackingEvent);

impl Event {
    pub fn new(name: &str, partner_id: i64, catalog_id: i64) -> Self {
        Self(NewTrackingEvent {
            id: Uuid::new_v4(),
            name: name.to_string(),
            partner_id: Some(partner_id),
            catalog_id: Some(catalog_id),
            course_id: None,
            user_id: None,
            invitation_id: None,
            channel: None,
            reason: None,
            data: serde_json::json!({}),
        })
    }

    pub fn course(mut self, course_id: i64) -> Self {
        self.0.course_id = Some(course_id);
        self
    }

    pub fn user(mut self, user_id: Option<i64>) -> Self {
        self.0.user_id = user_id;
        self
    }

    pub fn invitation(mut self, invitation_id: i64, channel: &str) -> Self {
        self.0.invitation_id = Some(invitation_id);
        self.0.channel = Some(channel.to_string());
        self
    }

    pub fn channel(mut self, channel: &str) -> Self {
        self.0.channel = Some(channel.to_string());
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.0.reason = Some(reason.to_string());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.0.data = data;
        self
    }

    pub fn record(self, conn: &mut PgConnection) -> Result<()> {
        events::insert(conn, &self.0)?;
        Ok(())
    }

    /// Records many events in a few statements.
    pub fn record_all(conn: &mut PgConnection, all: Vec<Event>) -> Result<()> {
        let rows: Vec<NewTrackingEvent> = all.into_iter().map(|e| e.0).collect();
        events::insert_many(conn, &rows)?;
        Ok(())
    }
}
