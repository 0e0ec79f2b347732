//! The typed session: who is signed in, the CSRF token and flash messages.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use std::future::{Ready, ready};

use crate::domain::SecretToken;

const USER_ID: &str = "user_id";
const CSRF: &str = "csrf";
const FLASHES: &str = "flashes";

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

    pub fn user_id(&self) -> Option<i64> {
        self.0.get::<i64>(USER_ID).ok().flatten()
    }

    /// A new session (new cookie, new CSRF token) for the person who just signed in.
    pub fn sign_in(&self, user_id: i64) {
        let flashes = self.take_flashes();
        self.0.renew();
        self.0.clear();
        let _ = self.0.insert(USER_ID, user_id);
        let _ = self.0.insert(CSRF, SecretToken::generate().into_string());
        if !flashes.is_empty() {
            let _ = self.0.insert(FLASHES, flashes);
        }
    }

    pub fn sign_out(&self) {
        self.0.purge();
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

    pub fn flash(&self, kind: FlashKind, message: impl Into<String>) {
        let mut flashes: Vec<Flash> = self.0.get(FLASHES).ok().flatten().unwrap_or_default();
        flashes.push(Flash {
            kind,
            message: message.into(),
        });
        let _ = self.0.insert(FLASHES, flashes);
    }

    pub fn success(&self, message: impl Into<String>) {
        self.flash(FlashKind::Success, message);
    }

    pub fn error(&self, message: impl Into<String>) {
        self.flash(FlashKind::Error, message);
    }

    pub fn take_flashes(&self) -> Vec<Flash> {
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
