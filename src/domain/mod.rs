//! Pure types and rules: no I/O.

pub mod availability;
pub mod bulk_input;
pub mod course;
pub mod course_import;
pub mod email;
pub mod external_key;
pub mod invitation_status;
pub mod names;
pub mod password;
pub mod patterns;
pub mod token;

pub use availability::AvailabilityWindow;
pub use course::{CourseKey, CourseMode, CourseModes};
pub use email::EmailAddress;
pub use external_key::ExternalKey;
pub use invitation_status::InvitationStatus;
pub use password::Password;
pub use patterns::EmailPatterns;
pub use token::SecretToken;
