use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::schema::tracking_events;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tracking_events)]
pub struct TrackingEvent {
    pub id: Uuid,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
    pub course_id: Option<i64>,
    pub user_id: Option<i64>,
    pub invitation_id: Option<i64>,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub data: Value,
    pub forwarded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = tracking_events)]
pub struct NewTrackingEvent {
    pub id: Uuid,
    pub name: String,
    pub partner_id: Option<i64>,
    pub catalog_id: Option<i64>,
    pub course_id: Option<i64>,
    pub user_id: Option<i64>,
    pub invitation_id: Option<i64>,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub data: Value,
}

pub fn insert(conn: &mut PgConnection, event: &NewTrackingEvent) -> QueryResult<()> {
    diesel::insert_into(tracking_events::table)
        .values(event)
        .execute(conn)
        .map(drop)
}

pub fn insert_many(conn: &mut PgConnection, events: &[NewTrackingEvent]) -> QueryResult<()> {
    for chunk in events.chunks(1_000) {
        diesel::insert_into(tracking_events::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

pub fn for_catalog(conn: &mut PgConnection, catalog_id: i64) -> QueryResult<Vec<TrackingEvent>> {
    tracking_events::table
        .filter(tracking_events::catalog_id.eq(catalog_id))
        .select(TrackingEvent::as_select())
        .order(tracking_events::occurred_at)
        .load(conn)
}

pub fn all(conn: &mut PgConnection) -> QueryResult<Vec<TrackingEvent>> {
    tracking_events::table
        .select(TrackingEvent::as_select())
        .order((tracking_events::occurred_at, tracking_events::id))
        .load(conn)
}
