//! Rule 7's paid-seat quota: `course_enrollments_limit` (0 = unlimited) counts the
//! active licences a catalog owns for paid courses.

pub fn has_seat_left(course_enrollments_limit: i32, active_owned_licences: i64) -> bool {
    course_enrollments_limit == 0 || active_owned_licences < i64::from(course_enrollments_limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_7_quota() {
        assert!(has_seat_left(0, 99));
        assert!(has_seat_left(10, 9));
        assert!(!has_seat_left(10, 10));
    }
}
