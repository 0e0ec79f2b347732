//! Passwords chosen by people. Hashing lives in the accounts service.

use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 200;

/// Passwords of the allowed length that lead every list of leaked passwords.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

#[derive(Debug, Clone)]
pub struct Password(SecretString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("must not be your email address or its name part")]
    IsTheEmail,
    #[error("is one of the most common passwords, which are guessed first; choose another")]
    TooCommon,
}

fn is_common(candidate: &str) -> bool {
    let lowered = candidate.to_lowercase();
    let one_character = lowered.chars().all(|c| lowered.starts_with(c));
    one_character || COMMON_PASSWORDS.lines().any(|common| common == lowered)
}

impl Password {
    /// Length bounds only: for passwords not tied to an address (generated ones).
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        if is_common(raw) {
            return Err(PasswordError::TooCommon);
        }
        Ok(Self(SecretString::from(raw.to_string())))
    }

    /// A password a person chose for the account with this email address.
    pub fn parse_for(raw: &str, email: &str) -> Result<Self, PasswordError> {
        let password = Self::parse(raw)?;
        let lowered = raw.trim().to_lowercase();
        let email = email.trim().to_lowercase();
        let local_part = email.split('@').next().unwrap_or_default();
        if !email.is_empty() && (lowered == email || lowered == local_part) {
            return Err(PasswordError::IsTheEmail);
        }
        Ok(password)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert_eq!(
            Password::parse("short").unwrap_err(),
            PasswordError::TooShort
        );
        assert!(Password::parse("long enough pass").is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(201)).unwrap_err(),
            PasswordError::TooLong
        );
    }

    #[test]
    fn the_address_and_common_passwords_are_refused() {
        assert_eq!(
            Password::parse_for("Ada.Lovelace@Example.org", "ada.lovelace@example.org")
                .unwrap_err(),
            PasswordError::IsTheEmail
        );
        assert_eq!(
            Password::parse_for("ada.lovelace", "ada.lovelace@example.org").unwrap_err(),
            PasswordError::IsTheEmail
        );
        for common in ["1234567890", "Password123", "QWERTYUIOP", "zzzzzzzzzzzz"] {
            assert_eq!(
                Password::parse_for(common, "ada@example.org").unwrap_err(),
                PasswordError::TooCommon,
                "{common}"
            );
        }
        assert!(Password::parse_for("ada lovelace engine", "ada@example.org").is_ok());
    }

    #[test]
    fn the_list_holds_only_passwords_the_length_rule_lets_through() {
        for common in COMMON_PASSWORDS.lines() {
            assert_eq!(common, common.to_lowercase());
            assert!(common.chars().count() >= MIN_PASSWORD_CHARS, "{common}");
        }
    }
}
