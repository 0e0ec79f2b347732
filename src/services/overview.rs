use diesel::PgConnection;

use crate::error::Result;
use crate::models::audit::{self, AuditFilter};
use crate::models::{PageRequest, outbox, table_counts};
use crate::policies::Actor;
use crate::policies::access::require_staff;
use crate::services::audit::{AuditLine, describe};

pub struct StaffOverview {
    pub organisations: i64,
    pub partners: i64,
    pub courses: i64,
    pub shared_courses: i64,
    pub users: i64,
    pub emails_queued: i64,
    pub emails_failed: i64,
    pub recent: Vec<AuditLine>,
}

pub fn staff_overview(conn: &mut PgConnection, actor: &Actor) -> Result<StaffOverview> {
    require_staff(actor)?;
    let [organisations, partners, courses, shared_courses, users] = table_counts(conn)?;
    let (emails_queued, emails_failed) = outbox::queued_and_failed(conn)?;
    let recent = audit::list(
        conn,
        &AuditFilter::default(),
        PageRequest::new(Some(1), Some(15)),
    )?
    .items;
    let recent = describe(conn, recent)?;
    Ok(StaffOverview {
        organisations,
        partners,
        courses,
        shared_courses,
        users,
        emails_queued,
        emails_failed,
        recent,
    })
}
