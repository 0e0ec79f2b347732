//! Passwords chosen by people. Hashing lives in the accounts service.

use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct Password(SecretString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(SecretString::from(raw.to_string())))
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
}
