//! The typed session: who is signed in, the CSRF token and flash messages.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use std::future::{Ready, ready};

use crate::domain::SecretToken;

const USER_ID: &str = "user_id";
const GENERATION: &str = "generation";
const CSRF: &str = "csrf";
const FLASHES: &str = "flashes";
const SIGN_UP_PROOF: &str = "sign_up_proof";
/// Flash messages kept at once, the longest one, and all of them serialised: the
/// session lives in a cookie, which browsers cap at 4 KB.
const MAX_FLASHES: usize = 3;
const MAX_FLASH_CHARS: usize = 400;
const MAX_FLASHES_BYTES: usize = 1_500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashKind {
    Success,
    Info,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

impl Flash {
    pub fn css_class(&self) -> &'static str {
        match self.kind {
            FlashKind::Success => "flash-success",
            FlashKind::Info => "flash-info",
            FlashKind::Error => "flash-error",
        }
    }
}

pub struct TypedSession(Session);

impl TypedSession {
    pub fn from_request(req: &HttpRequest) -> Self {
        Self(req.get_session())
    }

    /// Who the session was issued to, and under which of their session generations.
    pub fn user(&self) -> Option<(i64, i32)> {
        let user_id = self.0.get::<i64>(USER_ID).ok().flatten()?;
        let generation = self.0.get::<i32>(GENERATION).ok().flatten()?;
        Some((user_id, generation))
    }

    /// A new session (new cookie, new CSRF token) for the person who just signed in.
    pub fn sign_in(&self, user_id: i64, generation: i32) {
        let flashes = self.take_flashes();
        self.0.renew();
        self.0.clear();
        let _ = self.0.insert(USER_ID, user_id);
        let _ = self.0.insert(GENERATION, generation);
        let _ = self.0.insert(CSRF, SecretToken::generate().into_string());
        if !flashes.is_empty() {
            let _ = self.0.insert(FLASHES, flashes);
        }
    }

    /// An empty session in a new cookie: nobody signed in, flashes may follow.
    pub fn sign_out(&self) {
        self.0.renew();
        self.0.clear();
    }

    /// Remembers the sign-up this browser made, until the next sign-in or sign-out.
    pub fn remember_sign_up(&self, proof: &str) {
        let _ = self.0.insert(SIGN_UP_PROOF, proof);
    }

    pub fn sign_up_proof(&self) -> Option<String> {
        self.0.get::<String>(SIGN_UP_PROOF).ok().flatten()
    }

    /// The session's CSRF token, created on first use.
    pub fn csrf_token(&self) -> String {
        if let Ok(Some(token)) = self.0.get::<String>(CSRF) {
            return token;
        }
        let token = SecretToken::generate().into_string();
        let _ = self.0.insert(CSRF, &token);
        token
    }

    /// The token only if one was issued; checking never creates one.
    pub fn existing_csrf_token(&self) -> Option<String> {
        self.0.get::<String>(CSRF).ok().flatten()
    }

    /// Queues a message for the next page. Only the newest few are kept, each cut to a
    /// bounded length, so that no number of unread messages can outgrow the cookie.
    pub fn flash(&self, kind: FlashKind, message: impl Into<String>) {
        let mut flashes: Vec<Flash> = self.0.get(FLASHES).ok().flatten().unwrap_or_default();
        let mut message: String = message.into();
        if message.chars().count() > MAX_FLASH_CHARS {
            message = message.chars().take(MAX_FLASH_CHARS - 1).collect();
            message.push('…');
        }
        flashes.push(Flash { kind, message });
        let excess = flashes.len().saturating_sub(MAX_FLASHES);
        flashes.drain(..excess);
        let size = |flashes: &Vec<Flash>| serde_json::to_string(flashes).map_or(0, |s| s.len());
        while flashes.len() > 1 && size(&flashes) > MAX_FLASHES_BYTES {
            flashes.remove(0);
        }
        if size(&flashes) > MAX_FLASHES_BYTES {
            // One message full of escaped characters: keep its start.
            if let Some(last) = flashes.last_mut() {
                last.message = last.message.chars().take(MAX_FLASH_CHARS / 4).collect();
                last.message.push('…');
            }
        }
        let _ = self.0.insert(FLASHES, flashes);
    }

    pub fn success(&self, message: impl Into<String>) {
        self.flash(FlashKind::Success, message);
    }

    pub fn error(&self, message: impl Into<String>) {
        self.flash(FlashKind::Error, message);
    }

    /// The queued messages, removed. With none queued the session stays unchanged, so
    /// that the answer does not send the session cookie again.
    pub fn take_flashes(&self) -> Vec<Flash> {
        if !self.0.contains_key(FLASHES) {
            return Vec::new();
        }
        match self.0.remove_as::<Vec<Flash>>(FLASHES) {
            Some(Ok(flashes)) => flashes,
            _ => Vec::new(),
        }
    }
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(TypedSession::from_request(req)))
    }
}
