//! Rule 2: email patterns. A pattern matches when it matches the whole address,
//! case-insensitively; one matching pattern is enough; no patterns match nothing.

use regex::{Regex, RegexBuilder};

pub const MAX_PATTERN_CHARS: usize = 500;
/// Caps the compiled program so that a pattern cannot exhaust memory.
const COMPILED_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct EmailPattern {
    source: String,
    regex: Regex,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a pattern may not be empty")]
    Empty,
    #[error("a pattern may be at most {MAX_PATTERN_CHARS} characters")]
    TooLong,
    #[error("{0}")]
    Invalid(String),
}

impl EmailPattern {
    /// Stored as written after trimming.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let source = raw.trim();
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        if source.chars().count() > MAX_PATTERN_CHARS {
            return Err(PatternError::TooLong);
        }
        let regex = RegexBuilder::new(&format!("^(?:{source})$"))
            .case_insensitive(true)
            .size_limit(COMPILED_SIZE_LIMIT)
            .dfa_size_limit(COMPILED_SIZE_LIMIT)
            .build()
            .map_err(|e| PatternError::Invalid(e.to_string()))?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, email: &str) -> bool {
        self.regex.is_match(&email.trim().to_lowercase())
    }
}

/// The error found on one line of a pattern list, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternLineError {
    pub line: usize,
    pub pattern: String,
    pub error: PatternError,
}

#[derive(Debug, Clone, Default)]
pub struct EmailPatterns(Vec<EmailPattern>);

impl EmailPatterns {
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses every pattern, reporting every bad one. Blank lines are skipped.
    pub fn parse_lines<'a>(
        lines: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Vec<PatternLineError>> {
        let mut patterns = Vec::new();
        let mut errors = Vec::new();
        for (index, line) in lines.into_iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match EmailPattern::parse(line) {
                Ok(p) => patterns.push(p),
                Err(error) => errors.push(PatternLineError {
                    line: index + 1,
                    pattern: line.trim().to_string(),
                    error,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Self(patterns))
        } else {
            Err(errors)
        }
    }

    /// Patterns already stored were valid when saved; one that no longer compiles matches nothing.
    pub fn from_stored<'a>(stored: impl IntoIterator<Item = &'a str>) -> Self {
        Self(
            stored
                .into_iter()
                .filter_map(|p| EmailPattern::parse(p).ok())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &EmailPattern> {
        self.0.iter()
    }

    /// The first pattern matching the email, if any.
    pub fn first_match(&self, email: &str) -> Option<&EmailPattern> {
        self.0.iter().find(|p| p.matches(email))
    }

    pub fn matches(&self, email: &str) -> bool {
        self.first_match(email).is_some()
    }

    pub fn sources(&self) -> Vec<String> {
        self.0.iter().map(|p| p.source.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(lines: &[&str]) -> EmailPatterns {
        EmailPatterns::parse_lines(lines.iter().copied()).unwrap()
    }

    #[test]
    fn rule_2_matches_whole_address_case_insensitively() {
        let p = patterns(&[r".*@example\.com"]);
        assert!(p.matches("ada@example.com"));
        assert!(p.matches("ADA@EXAMPLE.COM"));
        assert!(p.matches("  Ada@Example.com "));
    }

    #[test]
    fn rule_2_partial_match_is_not_a_match() {
        let p = patterns(&[r"ada@example\.com"]);
        assert!(!p.matches("ada@example.com.evil.org"));
        assert!(!p.matches("xada@example.com"));
        let p = patterns(&[r"example\.com"]);
        assert!(!p.matches("ada@example.com"));
    }

    #[test]
    fn rule_2_alternation_is_anchored_as_a_whole() {
        let p = patterns(&[r"a@x\.com|b@y\.com"]);
        assert!(p.matches("a@x.com"));
        assert!(p.matches("b@y.com"));
        assert!(!p.matches("a@x.com.z"));
        assert!(!p.matches("zb@y.com"));
    }

    #[test]
    fn rule_2_any_one_pattern_is_enough() {
        let p = patterns(&[r".*@first\.org", r".*@second\.org"]);
        assert!(p.matches("x@second.org"));
        assert_eq!(
            p.first_match("x@second.org").unwrap().as_str(),
            r".*@second\.org"
        );
        assert!(!p.matches("x@third.org"));
    }

    #[test]
    fn rule_2_no_patterns_match_nothing() {
        assert!(!EmailPatterns::none().matches("anyone@example.com"));
    }

    #[test]
    fn rule_2_stored_trimmed() {
        let p = EmailPattern::parse("   .*@corp\\.com  ").unwrap();
        assert_eq!(p.as_str(), ".*@corp\\.com");
    }

    #[test]
    fn rule_2_rejects_empty_long_and_invalid_patterns_with_the_engine_message() {
        assert_eq!(EmailPattern::parse("  ").unwrap_err(), PatternError::Empty);
        assert_eq!(
            EmailPattern::parse(&"a".repeat(501)).unwrap_err(),
            PatternError::TooLong
        );
        assert!(EmailPattern::parse(&"a".repeat(500)).is_ok());
        match EmailPattern::parse("(unclosed").unwrap_err() {
            PatternError::Invalid(message) => {
                assert!(message.contains("unclosed group"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rule_2_caps_compiled_size() {
        let huge = format!("(?:{}){{1000}}", r"\w{50}");
        assert!(matches!(
            EmailPattern::parse(&huge),
            Err(PatternError::Invalid(_))
        ));
    }

    #[test]
    fn rule_2_reports_every_bad_line_with_its_number() {
        let errors = EmailPatterns::parse_lines(["ok@x\\.com", "", "(", "[z-a]"]).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4]);
    }

    #[test]
    fn rule_2_linear_time_on_pathological_input() {
        let p = patterns(&[r"(a+)+@example\.com"]);
        let evil = format!("{}!", "a".repeat(10_000));
        assert!(!p.matches(&evil));
    }
}
