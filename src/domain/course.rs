//! Courses: keys, modes and whether a course is paid (rule 7).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CourseKeyError {
    #[error("is required")]
    Empty,
    #[error("is too long (at most 255 characters)")]
    TooLong,
    #[error("may not contain spaces")]
    Whitespace,
    #[error("must look like course-v1:ORG+NUMBER+RUN")]
    Malformed,
}

impl CourseKey {
    pub fn parse(raw: &str) -> Result<Self, CourseKeyError> {
        let key = raw.trim();
        if key.is_empty() {
            return Err(CourseKeyError::Empty);
        }
        if key.len() > 255 {
            return Err(CourseKeyError::TooLong);
        }
        if key.chars().any(char::is_whitespace) {
            return Err(CourseKeyError::Whitespace);
        }
        if let Some(rest) = key.strip_prefix("course-v1:") {
            let parts: Vec<&str> = rest.split('+').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(CourseKeyError::Malformed);
            }
        }
        Ok(Self(key.to_string()))
    }

    /// The organisation named in a `course-v1:` key.
    pub fn organisation_part(&self) -> Option<&str> {
        self.0
            .strip_prefix("course-v1:")
            .and_then(|rest| rest.split('+').next())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CourseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CourseMode(String);

pub const AUDIT: &str = "audit";
pub const HONOR: &str = "honor";
pub const VERIFIED: &str = "verified";

impl CourseMode {
    pub fn parse(raw: &str) -> Result<Self, CourseModesError> {
        let mode = raw.trim().to_lowercase();
        let valid = mode.len() <= 32
            && mode.starts_with(|c: char| c.is_ascii_lowercase())
            && mode
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(Self(mode))
        } else {
            Err(CourseModesError::BadMode(raw.trim().to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `audit` and `honor` are the open modes; any other mode is paid.
    pub fn is_paid_mode(mode: &str) -> bool {
        mode != AUDIT && mode != HONOR
    }

    /// A mode as learners read it.
    pub fn in_words(mode: &str) -> String {
        match mode {
            AUDIT => "free access".into(),
            HONOR => "free access with an honour certificate".into(),
            VERIFIED => "full access with certificate".into(),
            "professional" | "no-id-professional" => {
                "full professional access with certificate".into()
            }
            "credit" => "full access for credit".into(),
            other if Self::is_paid_mode(other) => {
                format!("full access ({})", other.replace(['-', '_'], " "))
            }
            other => format!("free access ({})", other.replace(['-', '_'], " ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseModes(Vec<CourseMode>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CourseModesError {
    #[error("at least one mode is required (e.g. audit, verified)")]
    Empty,
    #[error("{0:?} is not a mode name (lower-case letters, digits, - and _)")]
    BadMode(String),
}

impl CourseModes {
    /// Modes separated by spaces, commas, semicolons or bars; duplicates dropped.
    pub fn parse(raw: &str) -> Result<Self, CourseModesError> {
        let mut modes: Vec<CourseMode> = Vec::new();
        for part in raw.split([' ', ',', ';', '|', '\n', '\t']) {
            if part.trim().is_empty() {
                continue;
            }
            let mode = CourseMode::parse(part)?;
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
        if modes.is_empty() {
            return Err(CourseModesError::Empty);
        }
        Ok(Self(modes))
    }

    pub fn is_paid(&self) -> bool {
        self.0.iter().any(|m| CourseMode::is_paid_mode(m.as_str()))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|m| m.0.clone()).collect()
    }
}

/// A course is paid when it has any mode other than audit and honor.
pub fn is_paid(modes: &[String]) -> bool {
    modes.iter().any(|m| CourseMode::is_paid_mode(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_7_paid_when_any_mode_is_not_audit_or_honor() {
        assert!(!CourseModes::parse("audit").unwrap().is_paid());
        assert!(!CourseModes::parse("audit honor").unwrap().is_paid());
        assert!(CourseModes::parse("audit|verified").unwrap().is_paid());
        assert!(CourseModes::parse("professional").unwrap().is_paid());
        assert!(is_paid(&["honor".into(), "no-id-professional".into()]));
        assert!(!is_paid(&["honor".into()]));
    }

    #[test]
    fn modes_are_normalised_and_deduplicated() {
        let modes = CourseModes::parse(" Audit ; VERIFIED,audit ").unwrap();
        assert_eq!(modes.to_strings(), vec!["audit", "verified"]);
        assert_eq!(
            CourseModes::parse("  ").unwrap_err(),
            CourseModesError::Empty
        );
        assert!(matches!(
            CourseModes::parse("audit v3rified!"),
            Err(CourseModesError::BadMode(_))
        ));
    }

    #[test]
    fn course_keys() {
        let key = CourseKey::parse(" course-v1:ACMEx+CS101+2026 ").unwrap();
        assert_eq!(key.as_str(), "course-v1:ACMEx+CS101+2026");
        assert_eq!(key.organisation_part(), Some("ACMEx"));
        assert_eq!(
            CourseKey::parse("course-v1:ACMEx+CS101"),
            Err(CourseKeyError::Malformed)
        );
        assert_eq!(CourseKey::parse("a b"), Err(CourseKeyError::Whitespace));
        assert_eq!(CourseKey::parse(""), Err(CourseKeyError::Empty));
    }
}
