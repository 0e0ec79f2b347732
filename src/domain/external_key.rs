//! An outside identity of a person, such as a university student id, written
//! `provider:remote_id` (seed 002's SAML uid form): `uni-bristol:12345`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalKey {
    provider: String,
    remote_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalKeyError {
    #[error("is required")]
    Empty,
    #[error(
        "{0:?} is not of the form provider:remote_id (the provider in lower-case letters, digits, - or _)"
    )]
    Malformed(String),
    #[error("is too long (at most 255 characters)")]
    TooLong,
}

impl ExternalKey {
    pub fn parse(raw: &str) -> Result<Self, ExternalKeyError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(ExternalKeyError::Empty);
        }
        if text.chars().count() > 255 {
            return Err(ExternalKeyError::TooLong);
        }
        let malformed = || ExternalKeyError::Malformed(text.to_string());
        let (provider, remote_id) = text.split_once(':').ok_or_else(malformed)?;
        let provider = provider.trim().to_lowercase();
        let remote_id = remote_id.trim();
        let provider_ok = provider
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && provider
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !provider_ok || remote_id.is_empty() || remote_id.chars().any(char::is_control) {
            return Err(malformed());
        }
        Ok(Self {
            provider,
            remote_id: remote_id.to_string(),
        })
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn remote_id(&self) -> &str {
        &self.remote_id
    }
}

impl fmt::Display for ExternalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.remote_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_provider_and_remote_id() {
        let key = ExternalKey::parse(" Uni-Bristol:AB:12 ").unwrap();
        assert_eq!(key.provider(), "uni-bristol");
        assert_eq!(key.remote_id(), "AB:12");
        assert_eq!(key.to_string(), "uni-bristol:AB:12");
    }

    #[test]
    fn refuses_what_is_not_provider_colon_id() {
        assert_eq!(ExternalKey::parse(""), Err(ExternalKeyError::Empty));
        for bad in [
            "12345",
            ":12345",
            "uni:",
            "uni bristol:1",
            "-uni:1",
            "uni:a\nb",
        ] {
            assert!(ExternalKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
