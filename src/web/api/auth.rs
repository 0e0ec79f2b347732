//! Who calls the API: `Authorization: Bearer <token>` (an API token acting as its user),
//! or the browser session, whose writes must carry the session's CSRF token in
//! `X-CSRF-Token` (the form middleware leaves `/api/` to this extractor).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};

use super::ApiError;
use crate::db::Db;
use crate::error::Error;
use crate::models::partners;
use crate::policies::Actor;
use crate::services::api_tokens;
use crate::web::auth::{Identity, load_identity};
use crate::web::csrf;
use crate::web::session::TypedSession;

pub struct ApiCaller {
    pub identity: Identity,
    /// The token the request came with, if any.
    pub token_id: Option<i64>,
}

impl ApiCaller {
    pub fn actor(&self) -> Actor {
        let actor = self.identity.actor();
        match self.token_id {
            Some(token) => actor.with_api_token(token),
            None => actor,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn by_token(req: &HttpRequest, value: &str) -> Result<ApiCaller, ApiError> {
    let Some(presented) = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiError::InvalidToken(
            "the Authorization header must be `Bearer <token>`",
        ));
    };
    let db = req
        .app_data::<web::Data<Db>>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("database handle missing")))?
        .clone();
    let client_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let presented = presented.to_string();
    let found = db
        .run(move |conn| {
            let Some((user, token)) = api_tokens::authenticate(conn, &presented, &client_ip)?
            else {
                return Ok(None);
            };
            let partner = partners::managed_by(conn, user.id)?;
            Ok(Some((user, partner, token.id)))
        })
        .await?;
    match found {
        Some((user, partner, token_id)) => Ok(ApiCaller {
            identity: Identity {
                user,
                partner,
                bulk_waiting: 0,
            },
            token_id: Some(token_id),
        }),
        None => Err(ApiError::InvalidToken(
            "this API token is unknown, revoked or expired",
        )),
    }
}

async fn by_session(req: &HttpRequest) -> Result<ApiCaller, ApiError> {
    let identity = load_identity(req).await?.ok_or(ApiError::Unauthenticated)?;
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        let expected = TypedSession::from_request(req).existing_csrf_token();
        let presented = req
            .headers()
            .get(csrf::HEADER)
            .and_then(|v| v.to_str().ok());
        let valid = matches!((expected, presented),
            (Some(expected), Some(presented)) if constant_time_eq(expected.as_bytes(), presented.as_bytes()));
        if !valid {
            return Err(ApiError::CsrfRejected);
        }
    }
    Ok(ApiCaller {
        identity,
        token_id: None,
    })
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let authorization = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or_default().to_string());
            match authorization {
                Some(value) => by_token(&req, &value).await,
                None => by_session(&req).await,
            }
        })
    }
}
