//! Who is asking: the signed-in person, loaded once per request, and extractors
//! for each role. A deactivated account, or a session its user has since ended (logout,
//! password change or reset, "sign out everywhere"), is signed out on its next request.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::error::AppError;
use super::session::TypedSession;
use crate::db::Db;
use crate::error::Error;
use crate::models::partners::Partner;
use crate::models::users::{self, User};
use crate::policies::Actor;

#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    /// The partner this person manages, if any.
    pub partner: Option<Partner>,
    /// For staff: bulk lists waiting for their approval (shown in the navigation).
    pub bulk_waiting: i64,
}

impl Identity {
    pub fn actor(&self) -> Actor {
        Actor::for_user(&self.user, self.partner.as_ref().map(|p| p.id))
    }
}

/// The identity of one request, loaded once however many extractors ask for it at once.
#[derive(Clone, Default)]
struct IdentityCell(std::rc::Rc<tokio::sync::OnceCell<Option<Identity>>>);

pub async fn load_identity(req: &HttpRequest) -> Result<Option<Identity>, AppError> {
    let cell = {
        let mut extensions = req.extensions_mut();
        match extensions.get::<IdentityCell>() {
            Some(cell) => cell.clone(),
            None => {
                let cell = IdentityCell::default();
                extensions.insert(cell.clone());
                cell
            }
        }
    };
    let identity = cell.0.get_or_try_init(|| fetch_identity(req)).await?;
    Ok(identity.clone())
}

async fn fetch_identity(req: &HttpRequest) -> Result<Option<Identity>, AppError> {
    let session = TypedSession::from_request(req);
    let Some((user_id, generation)) = session.user() else {
        return Ok(None);
    };
    let db = req
        .app_data::<web::Data<Db>>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("database handle missing")))?
        .clone();
    let loaded = db
        .run(move |conn| {
            Ok(
                users::find_with_role(conn, user_id)?.map(|(user, partner, bulk_waiting)| {
                    Identity {
                        user,
                        partner,
                        bulk_waiting,
                    }
                }),
            )
        })
        .await?;
    match loaded {
        // A session from before a logout, a password change or a deactivation is over.
        Some(identity)
            if identity.user.is_active && identity.user.session_generation == generation =>
        {
            Ok(Some(identity))
        }
        _ => {
            session.sign_out();
            Ok(None)
        }
    }
}

fn sign_in_required(req: &HttpRequest) -> AppError {
    let next = match req.query_string() {
        "" => req.path().to_string(),
        query => format!("{}?{}", req.path(), query),
    };
    AppError::SignInRequired { next }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Anyone, signed in or not.
pub struct MaybeSignedIn(pub Option<Identity>);

impl FromRequest for MaybeSignedIn {
    type Error = AppError;
    type Future = LocalBoxFuture<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeSignedIn(load_identity(&req).await?)) })
    }
}

/// Any signed-in person.
pub struct SignedIn(pub Identity);

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = LocalBoxFuture<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match load_identity(&req).await? {
                Some(identity) => Ok(SignedIn(identity)),
                None => Err(sign_in_required(&req)),
            }
        })
    }
}

/// A member of staff.
pub struct Staff(pub Identity);

impl FromRequest for Staff {
    type Error = AppError;
    type Future = LocalBoxFuture<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match load_identity(&req).await? {
                Some(identity) if identity.user.is_staff => Ok(Staff(identity)),
                Some(_) => Err(Error::Forbidden("This page is for staff only.".into()).into()),
                None => Err(sign_in_required(&req)),
            }
        })
    }
}

/// A partner manager, carrying their partner. Staff pass too, without a partner of
/// their own: the partner comes from the route and the service checks access.
pub struct ManagerOrStaff {
    pub identity: Identity,
}

impl ManagerOrStaff {
    pub fn actor(&self) -> Actor {
        self.identity.actor()
    }
}

impl FromRequest for ManagerOrStaff {
    type Error = AppError;
    type Future = LocalBoxFuture<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match load_identity(&req).await? {
                Some(identity) if identity.user.is_staff || identity.partner.is_some() => {
                    Ok(ManagerOrStaff { identity })
                }
                // Like another partner's data for a manager (rule 10): nothing is here for them.
                Some(_) => Err(AppError::PageNotFound),
                None => Err(sign_in_required(&req)),
            }
        })
    }
}
