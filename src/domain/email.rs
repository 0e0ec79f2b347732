//! Email addresses, stored normalised: trimmed and lower-cased.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is required")]
    Empty,
    #[error("is too long (at most 254 characters)")]
    TooLong,
    #[error("{0:?} is not an email address")]
    Malformed(String),
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(EmailError::Empty);
        }
        if normalised.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let malformed = || EmailError::Malformed(raw.trim().to_string());
        let (local, domain) = normalised.rsplit_once('@').ok_or_else(malformed)?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if domain_ok && local_ok {
            Ok(Self(normalised))
        } else {
            Err(malformed())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = EmailAddress::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
        assert_eq!(email.domain(), "example.com");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a..b@c.com",
            "a@b..com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn accepts_plus_addressing_and_subdomains() {
        assert!(EmailAddress::parse("first+tag@mail.corp.example.org").is_ok());
    }

    #[test]
    fn rejects_overlong_addresses() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }
}
