//! Rule 2: email patterns. A pattern matches when it matches the whole address,
//! case-insensitively; one matching pattern is enough; no patterns match nothing.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

pub const MAX_PATTERN_CHARS: usize = 500;
/// Patterns one catalog may have.
pub const MAX_PATTERNS: usize = 100;
/// Caps the compiled set of one catalog's patterns together.
const SET_SIZE_LIMIT: usize = 2 * 1024 * 1024;
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
    /// Not a regular expression: a sentence for people, then the engine's own words.
    #[error("{summary}")]
    Invalid { summary: String, detail: String },
    #[error(
        "a catalog may have at most {MAX_PATTERNS} patterns; this line and those after it are too many (use broader patterns, such as one per domain)"
    )]
    TooMany,
    #[error("together the patterns are too large to check quickly; use fewer or simpler ones")]
    SetTooLarge,
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
            .map_err(|e| {
                let detail = e.to_string();
                PatternError::Invalid {
                    summary: explain_invalid(source, &detail),
                    detail,
                }
            })?;
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

/// Why a pattern is not a regular expression, in words, for the common slips.
fn explain_invalid(source: &str, detail: &str) -> String {
    let count = |c: char| source.chars().filter(|x| *x == c).count();
    let first = source.chars().next().unwrap_or(' ');
    if matches!(first, '*' | '+' | '?' | '{') {
        let rest = &source[first.len_utf8()..];
        return format!(
            "it starts with “{first}”, which repeats nothing. To mean “anything”, write “.*” (for example “.*{}”), or put the domain under Allowed email domains",
            rest.replace('.', r"\.")
        );
    }
    if count('(') > count(')') {
        return "a bracket “(” is opened and never closed with “)”".into();
    }
    if count(')') > count('(') {
        return "a bracket “)” closes nothing: remove it, or write “\\)” to match a bracket".into();
    }
    if count('[') > count(']') {
        return "a “[” starts a set of characters that is never closed with “]”".into();
    }
    if source.ends_with('\\') && !source.ends_with("\\\\") {
        return "it ends with a lone “\\”: write “\\\\” to match a backslash".into();
    }
    if detail.contains("size limit") {
        return "it is too large to check quickly: use a simpler pattern, or list the domains under Allowed email domains".into();
    }
    // The engine's own one-line reason, as in "error: invalid character class range".
    match detail
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
    {
        Some(reason) => format!("it is not a valid regular expression ({reason})"),
        None => "it is not a valid regular expression".into(),
    }
}

/// The pattern an allowed email domain stands for: every address at exactly that domain.
pub fn domain_pattern(domain: &str) -> String {
    format!(".*@{}", regex::escape(domain))
}

/// The domain a pattern stands for, when it is exactly one made by `domain_pattern`.
pub fn domain_of_pattern(pattern: &str) -> Option<String> {
    let escaped = pattern.strip_prefix(".*@")?;
    let domain = escaped.replace(r"\.", ".").replace(r"\-", "-");
    (is_domain(&domain) && domain_pattern(&domain) == pattern).then_some(domain)
}

/// A domain as people type it in the allowed-domains box: `acme.com`, `mail.acme.co.uk`.
pub fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    labels.len() >= 2
        && text.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Reads the allowed-domains box: one domain a line (a leading `@` or `*@` is fine),
/// each turned into its pattern. Bad lines are named with their number.
pub fn domains_to_patterns(text: &str) -> Result<Vec<String>, Vec<(usize, String)>> {
    let mut patterns = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let typed = line.trim();
        if typed.is_empty() {
            continue;
        }
        let domain = typed
            .trim_start_matches('*')
            .trim_start_matches('@')
            .trim_end_matches('.')
            .to_lowercase();
        if is_domain(&domain) {
            let pattern = domain_pattern(&domain);
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        } else {
            bad.push((index + 1, typed.to_string()));
        }
    }
    if bad.is_empty() {
        Ok(patterns)
    } else {
        Err(bad)
    }
}

/// The error found on one line of a pattern list, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternLineError {
    pub line: usize,
    pub pattern: String,
    pub error: PatternError,
}

/// A catalog's patterns, matched as one compiled set: one pass over the address
/// whatever their number.
#[derive(Debug, Clone)]
pub struct EmailPatterns {
    sources: Vec<String>,
    set: RegexSet,
}

impl Default for EmailPatterns {
    fn default() -> Self {
        Self::none()
    }
}

fn compile_set(sources: &[String]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(sources.iter().map(|s| format!("^(?:{s})$")))
        .case_insensitive(true)
        .size_limit(SET_SIZE_LIMIT)
        .dfa_size_limit(SET_SIZE_LIMIT)
        .build()
}

impl EmailPatterns {
    pub fn none() -> Self {
        Self {
            sources: Vec::new(),
            set: RegexSet::empty(),
        }
    }

    /// Parses every pattern, reporting every bad one. Blank lines are skipped. At most
    /// `MAX_PATTERNS`, and together within the compiled-size limit.
    pub fn parse_lines<'a>(
        lines: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Vec<PatternLineError>> {
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        let mut last_line = 0;
        for (index, line) in lines.into_iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            last_line = index + 1;
            match EmailPattern::parse(line) {
                Ok(p) if sources.len() < MAX_PATTERNS => sources.push(p.source),
                Ok(_)
                    if errors
                        .iter()
                        .any(|e: &PatternLineError| e.error == PatternError::TooMany) => {}
                Ok(p) => errors.push(PatternLineError {
                    line: index + 1,
                    pattern: p.source,
                    error: PatternError::TooMany,
                }),
                Err(error) => errors.push(PatternLineError {
                    line: index + 1,
                    pattern: line.trim().to_string(),
                    error,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        match compile_set(&sources) {
            Ok(set) => Ok(Self { sources, set }),
            Err(_) => Err(vec![PatternLineError {
                line: last_line,
                pattern: sources.last().cloned().unwrap_or_default(),
                error: PatternError::SetTooLarge,
            }]),
        }
    }

    /// Patterns already stored were valid when saved; one that no longer compiles is left
    /// out, and a set that no longer fits matches nothing.
    pub fn from_stored<'a>(stored: impl IntoIterator<Item = &'a str>) -> Self {
        let sources: Vec<String> = stored
            .into_iter()
            .filter_map(|p| EmailPattern::parse(p).ok())
            .map(|p| p.source)
            .take(MAX_PATTERNS)
            .collect();
        match compile_set(&sources) {
            Ok(set) => Self { sources, set },
            Err(e) => {
                tracing::warn!(error = %e, "stored email patterns no longer compile together");
                Self::none()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// The first pattern matching the email, if any.
    pub fn first_match(&self, email: &str) -> Option<&str> {
        let matched = self.set.matches(&email.trim().to_lowercase());
        matched
            .iter()
            .next()
            .map(|index| self.sources[index].as_str())
    }

    pub fn matches(&self, email: &str) -> bool {
        !self.is_empty() && self.set.is_match(&email.trim().to_lowercase())
    }

    pub fn sources(&self) -> Vec<String> {
        self.sources.clone()
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
        assert_eq!(p.first_match("x@second.org").unwrap(), r".*@second\.org");
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
            PatternError::Invalid { summary, detail } => {
                assert!(summary.contains("is opened and never closed"), "{summary}");
                assert!(detail.contains("unclosed group"), "{detail}")
            }
            other => panic!("unexpected {other:?}"),
        }
        match EmailPattern::parse("*@acme.com").unwrap_err() {
            PatternError::Invalid { summary, .. } => {
                assert!(summary.contains(r"“.*@acme\.com”"), "{summary}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn allowed_domains_become_exact_full_match_patterns_and_back() {
        assert_eq!(
            domains_to_patterns("acme.com\n@Mail.Acme.co.uk\n\n*@acme.com\n"),
            Ok(vec![
                r".*@acme\.com".to_string(),
                r".*@mail\.acme\.co\.uk".to_string()
            ])
        );
        assert_eq!(
            domains_to_patterns("acme\nfine.org\nbad domain.com"),
            Err(vec![(1, "acme".into()), (3, "bad domain.com".into())])
        );
        let pattern = domain_pattern("my-firm.example");
        let compiled = EmailPattern::parse(&pattern).unwrap();
        assert!(compiled.matches("ada@my-firm.example"));
        assert!(!compiled.matches("ada@my-firmXexample"));
        assert!(!compiled.matches("ada@evil.my-firm.example.org"));
        assert_eq!(
            domain_of_pattern(&pattern).as_deref(),
            Some("my-firm.example")
        );
        assert_eq!(domain_of_pattern(r".*@acme\.(com|org)"), None);
        assert_eq!(domain_of_pattern(r"ada@acme\.com"), None);
    }

    #[test]
    fn rule_2_caps_compiled_size() {
        let huge = format!("(?:{}){{1000}}", r"\w{50}");
        assert!(matches!(
            EmailPattern::parse(&huge),
            Err(PatternError::Invalid { .. })
        ));
    }

    #[test]
    fn rule_2_reports_every_bad_line_with_its_number() {
        let errors = EmailPatterns::parse_lines(["ok@x\\.com", "", "(", "[z-a]"]).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4]);
    }

    #[test]
    fn rule_2_at_most_a_hundred_patterns_and_a_bounded_set() {
        let lines: Vec<String> = (0..105).map(|i| format!(r"user{i}@example\.com")).collect();
        let errors = EmailPatterns::parse_lines(lines.iter().map(String::as_str)).unwrap_err();
        assert_eq!(errors.len(), 1, "reported once");
        assert_eq!(errors[0].line, 101);
        assert_eq!(errors[0].error, PatternError::TooMany);
        let hundred = EmailPatterns::parse_lines(lines[..100].iter().map(String::as_str)).unwrap();
        assert_eq!(hundred.len(), 100);
        assert!(hundred.matches("user99@example.com"));
        assert!(!hundred.matches("user100@example.com"));

        // Each pattern fits on its own; a hundred of them together do not.
        let heavy: Vec<String> = (0..100)
            .map(|i| format!(r"[a-z]{{1,80}}{i}@[a-z]{{1,80}}"))
            .collect();
        assert!(EmailPattern::parse(&heavy[0]).is_ok());
        let errors = EmailPatterns::parse_lines(heavy.iter().map(String::as_str)).unwrap_err();
        assert_eq!(errors[0].error, PatternError::SetTooLarge);
    }

    #[test]
    fn rule_2_linear_time_on_pathological_input() {
        let p = patterns(&[r"(a+)+@example\.com"]);
        let evil = format!("{}!", "a".repeat(10_000));
        assert!(!p.matches(&evil));
    }
}
