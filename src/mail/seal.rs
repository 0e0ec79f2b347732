//! Link secrets waiting in the outbox are kept encrypted, never in the clear: the
//! database holds only their hashes elsewhere, and this sealed copy until sending.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::configuration::Settings;

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn from_settings(settings: &Settings) -> Self {
        let key = Sha256::new()
            .chain_update(b"partner-catalog outbox secrets\0")
            .chain_update(settings.session_key.expose_secret().as_bytes())
            .finalize();
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
        }
    }

    pub fn seal(&self, secret: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut sealed = nonce.to_vec();
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        if let Ok(ciphertext) = self.cipher.encrypt(&nonce, secret.as_bytes()) {
            sealed.extend(ciphertext);
        }
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        if sealed.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_tampering() {
        let settings = Settings::for_database("postgres://x/y", std::path::PathBuf::from("var"));
        let sealer = Sealer::from_settings(&settings);
        let sealed = sealer.seal("secret-token");
        assert!(!String::from_utf8_lossy(&sealed).contains("secret-token"));
        assert_eq!(sealer.open(&sealed).as_deref(), Some("secret-token"));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(sealer.open(&tampered), None);
        assert_ne!(sealer.seal("secret-token"), sealed, "fresh nonce each time");
    }
}
