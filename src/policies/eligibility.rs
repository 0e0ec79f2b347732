//! Which courses a catalog may hold: its partner's organisation's, or the shared pool's.

use diesel::PgConnection;

use crate::error::Result;
use crate::models::courses::{self, Course};
use crate::models::partners::Partner;

pub fn course_is_eligible(
    conn: &mut PgConnection,
    partner: &Partner,
    course: &Course,
) -> Result<bool> {
    Ok(course.organisation_id == partner.organisation_id
        || courses::is_in_shared_pool(conn, course.id)?)
}
