//! Random secrets sent to people (invitation links, password resets, API tokens).
//! Only the SHA-256 of a secret is ever stored.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe base64 encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    pub fn generate() -> Self {
        Self(random_url_safe(32))
    }

    /// 512 random bits, for keys rather than links.
    pub fn generate_long() -> Self {
        Self(random_url_safe(64))
    }

    /// Wraps a token as received from a person; it is only ever hashed and compared.
    pub fn from_received(raw: &str) -> Self {
        Self(raw.trim().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(..)")
    }
}

fn random_url_safe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_at_least_128_random_bits_and_differ() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_ne!(a, b);
        // 43 base64 characters hold 256 bits.
        assert!(a.as_str().len() * 6 >= 256);
        assert_eq!(a.hash().len(), 32);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn received_token_hashes_like_the_original() {
        let a = SecretToken::generate();
        let received = SecretToken::from_received(&format!(" {} ", a.as_str()));
        assert_eq!(a.hash(), received.hash());
    }
}
