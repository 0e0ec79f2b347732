//! Use cases. Each public function is one unit of work: the caller runs it inside
//! one database transaction (see `Db::transaction`), so it commits whole or not at all.

pub mod accounts;
pub mod analytics;
pub mod api;
pub mod api_tokens;
pub mod audit;
pub mod bulk;
pub mod catalogs;
pub mod console;
pub mod courses;
pub mod enrollments;
pub mod exports;
pub mod hashing;
pub mod invitations;
pub mod learning;
pub mod organisations;
pub mod outbox;
pub mod overview;
pub mod partners;
pub mod patterns;
pub mod pre_enrollment;
pub mod profile;
pub mod registration;
pub mod reminders;
pub mod users;
pub mod visibility;
pub mod xapi;

/// Maps a unique-constraint violation to a message about the named field.
pub(crate) fn unique_violation(
    e: diesel::result::Error,
    field: &str,
    message: impl Into<String>,
) -> crate::error::Error {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            crate::error::Error::invalid(field, message)
        }
        other => other.into(),
    }
}

/// What use cases need from the settings.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    pub base_url: String,
    pub invitation_ttl: chrono::Duration,
    /// Least time between two sends of one invitation.
    pub resend_interval: chrono::Duration,
    pub sealer: crate::mail::Sealer,
    /// Password hashing, bounded per process.
    pub hashing: hashing::PasswordHashing,
    /// Invitation emails a partner's managers may send in an hour (0 = no cap).
    pub invitation_emails_per_hour: i64,
    /// Compiled email-pattern sets, per catalog.
    pub patterns: patterns::PatternCache,
    /// How long a pre-enrolment waits for its account.
    pub pending_enrollment_ttl: chrono::Duration,
    /// Bulk jobs of managers with more rows than this wait for staff approval.
    pub bulk_approval_threshold: usize,
    /// Where a course is followed, with `{course_key}` in it; none: the app's own page.
    pub course_url_template: Option<String>,
}

impl ServiceContext {
    pub fn from_settings(settings: &crate::configuration::Settings) -> Self {
        Self {
            base_url: settings.base_url.clone(),
            invitation_ttl: chrono::Duration::days(settings.invitation_ttl_days),
            resend_interval: chrono::Duration::seconds(settings.resend_interval_seconds),
            sealer: crate::mail::Sealer::from_settings(settings),
            hashing: hashing::PasswordHashing::new(
                settings.password_hashing_concurrency,
                settings.password_hashing_queue,
            ),
            invitation_emails_per_hour: settings.invitation_emails_per_partner_per_hour,
            patterns: patterns::PatternCache::default(),
            pending_enrollment_ttl: chrono::Duration::days(settings.pending_enrollment_ttl_days),
            bulk_approval_threshold: settings.bulk_approval_threshold,
            course_url_template: settings.course_url_template.clone(),
        }
    }

    /// Where a learner follows a course: `COURSE_URL_TEMPLATE` with the key filled in, or
    /// this application's page about the course.
    pub fn course_url(&self, course_key: &str, course_id: i64) -> String {
        match &self.course_url_template {
            Some(template) => template.replace(
                "{course_key}",
                &url::form_urlencoded::byte_serialize(course_key.as_bytes()).collect::<String>(),
            ),
            None => format!("/my/courses/{course_id}"),
        }
    }
}
