//! The errors use cases answer with: each has a stable code, an HTTP status and a
//! message written for people. Anything unexpected is `Internal` and is never shown.

use std::collections::BTreeMap;

/// Problems with named fields of a form or request, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Keeps the first problem reported for a field.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    /// Records the error of a parse result and hands back its value.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Field names as people read them: `available_end` → `available end`.
    pub fn labelled(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(k, v)| (k.replace('_', " "), v.clone()))
            .collect()
    }

    /// For a form's error summary: each field's name (its input's id is `f-<name>`), its
    /// label as the form shows it, and the problem.
    pub fn summary(&self) -> Vec<(String, String, String)> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), field_label(k), v.clone()))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `Ok(())` when nothing was reported.
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self))
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(field, message)| format!("{}: {message}", field_label(field)))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// The label a form shows for a field, for messages that name it.
pub fn field_label(field: &str) -> String {
    let known = match field {
        "accent_colour" => "Accent colour",
        "alternative_link" => "Alternative link",
        "authorization_message" => "Authorisation message",
        "available_start" => "Available from",
        "available_end" => "Available until",
        "course_enrollments_limit" => "Paid seat limit",
        "user_limit" => "Learner limit",
        "email_patterns" => "Email patterns",
        "allowed_domains" => "Allowed email domains",
        "support_email" => "Support email",
        "email_sender_name" => "Email sender name",
        "homepage_url" => "Homepage",
        "logo_url" => "Logo",
        "time_zone" => "Time zone",
        "organisation_id" => "Organisation",
        "short_name" => "Short name",
        "full_name" => "Full name",
        "current_password" | "email_current_password" => "Current password",
        "new_password" => "New password",
        "confirm_password" => "Password again",
        "new_email" => "New email address",
        "starts_at" => "Starts",
        "ends_at" => "Ends",
        "emails" => "Email addresses",
        "addresses" => "Pasted addresses",
        "file" => "CSV file",
        "person" => "Email address or provider:remote_id",
        "identity" => "Identity",
        "kind" => "What to do",
        "courses" => "Courses",
        "test_email" => "Address to test",
        "partner" => "Partner code",
        "actor" => "Who (email)",
        "action" => "Action",
        "from" => "From",
        "until" => "Until",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let words = field.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A person the learner limit kept out of a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedJoin {
    pub partner_id: i64,
    pub catalog_id: i64,
    pub user_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("you are not allowed to enrol in this course through this catalog")]
    NotAllowedToEnroll,
    #[error("{0}")]
    CatalogUnavailable(String),
    /// With who was refused, when known: the refusal is recorded after its transaction
    /// rolls back, so that managers see the demand.
    #[error("this catalog has reached its learner limit")]
    UserLimitReached(Option<RefusedJoin>),
    #[error("this catalog has no paid seats left for this course")]
    CourseLimitReached,
    #[error("{0} already has an active invitation to this catalog")]
    InvitationExists(String),
    #[error("{0}")]
    InvalidTransition(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// Overloaded or waiting on something busy: trying again shortly will likely work.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::single(field, message))
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    pub fn busy() -> Self {
        Self::Busy(BUSY_MESSAGE.into())
    }

    /// Stable machine-readable code, used by the JSON API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_input",
            Error::NotFound(_) => "not_found",
            Error::Forbidden(_) => "forbidden",
            Error::NotAllowedToEnroll => "not_allowed_to_enroll",
            Error::CatalogUnavailable(_) => "catalog_unavailable",
            Error::UserLimitReached(_) => "user_limit_reached",
            Error::CourseLimitReached => "course_limit_reached",
            Error::InvitationExists(_) => "invitation_exists",
            Error::InvalidTransition(_) => "invalid_transition",
            Error::Conflict(_) => "conflict",
            Error::TooManyRequests(_) => "too_many_requests",
            Error::Busy(_) => "busy",
            Error::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::NotFound(_) => 404,
            Error::Forbidden(_) | Error::NotAllowedToEnroll => 403,
            Error::CatalogUnavailable(_)
            | Error::UserLimitReached(_)
            | Error::CourseLimitReached
            | Error::InvitationExists(_)
            | Error::InvalidTransition(_)
            | Error::Conflict(_) => 409,
            Error::TooManyRequests(_) => 429,
            Error::Busy(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// What a person may be shown.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => {
                "Something went wrong on our side. Please try again later.".into()
            }
            other => other.to_string(),
        }
    }

    pub fn field_errors(&self) -> Option<&FieldErrors> {
        match self {
            Error::Invalid(errors) => Some(errors),
            _ => None,
        }
    }
}

const BUSY_MESSAGE: &str =
    "The service is busy right now. Please try again in a moment: nothing was changed.";

/// PostgreSQL gave up waiting (`lock_timeout`, `statement_timeout`) or broke a deadlock:
/// the transaction was rolled back whole, and trying again is the remedy.
fn is_transient(info: &dyn diesel::result::DatabaseErrorInformation) -> bool {
    let message = info.message();
    message.starts_with("canceling statement due to lock timeout")
        || message.starts_with("canceling statement due to statement timeout")
        || message.starts_with("deadlock detected")
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => Error::NotFound("the record"),
            diesel::result::Error::DatabaseError(ref kind, ref info)
                if is_transient(info.as_ref())
                    || matches!(
                        kind,
                        diesel::result::DatabaseErrorKind::SerializationFailure
                    ) =>
            {
                tracing::warn!(error = %info.message(), "database busy");
                Error::busy()
            }
            // PostgreSQL text cannot hold NUL: typed input carrying one is refused whole.
            diesel::result::Error::DatabaseError(_, ref info)
                if info.message().contains("0x00") =>
            {
                Error::invalid("input", "must not contain the NUL character")
            }
            other => Error::Internal(other.into()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    /// Every connection stayed busy for the pool's whole wait, or the database is down.
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::warn!(error = %e, "no database connection available");
        Error::busy()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
