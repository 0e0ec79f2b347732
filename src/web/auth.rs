//! Who is asking: the signed-in person, loaded once per request, and extractors
//! for each role. A deactivated account, or a session its user has since ended (logout,
//! password change or reset, "sign out everywhere"), is signed out on its next request.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use diesel::PgConnection;

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

/// The person a session names, if that session still holds: a session from before a
/// logout, a password change or a deactivation is over.
fn identity_in(
    conn: &mut PgConnection,
    (user_id, generation): (i64, i32),
) -> crate::error::Result<Option<Identity>> {
    Ok(users::find_with_role(conn, user_id)?
        .map(|(user, partner, bulk_waiting)| Identity {
            user,
            partner,
            bulk_waiting,
        })
        .filter(|identity| {
            identity.user.is_active && identity.user.session_generation == generation
        }))
}

fn database(req: &HttpRequest) -> Result<web::Data<Db>, AppError> {
    Ok(req
        .app_data::<web::Data<Db>>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("database handle missing")))?
        .clone())
}

async fn fetch_identity(req: &HttpRequest) -> Result<Option<Identity>, AppError> {
    let session = TypedSession::from_request(req);
    let Some(signed_in) = session.user() else {
        return Ok(None);
    };
    let loaded = database(req)?
        .run(move |conn| identity_in(conn, signed_in))
        .await?;
    if loaded.is_none() {
        session.sign_out();
    }
    Ok(loaded)
}

/// Who may see a page, decided from the signed-in person.
pub trait Role: Sized + Send + 'static {
    fn admit(identity: Identity) -> Result<Self, AppError>;
}

enum Admission<R, T> {
    SignedOut,
    Refused(Identity, AppError),
    Admitted(Identity, R, T),
}

/// Runs a page's database work in one unit of work with loading the signed-in person
/// and admitting them as `R`: one trip to the database thread instead of two. The
/// request's identity is kept, as the extractors would have.
pub async fn with_role<R, T, F>(req: &HttpRequest, work: F) -> Result<(R, T), AppError>
where
    R: Role,
    T: Send + 'static,
    F: FnOnce(&mut PgConnection, &R) -> crate::error::Result<T> + Clone + Send + 'static,
{
    let session = TypedSession::from_request(req);
    let Some(signed_in) = session.user() else {
        return Err(sign_in_required(req));
    };
    let admission = database(req)?
        .run(move |conn| {
            let Some(identity) = identity_in(conn, signed_in)? else {
                return Ok(Admission::SignedOut);
            };
            Ok(match R::admit(identity.clone()) {
                Ok(role) => {
                    let outcome = work(conn, &role)?;
                    Admission::Admitted(identity, role, outcome)
                }
                Err(refusal) => Admission::Refused(identity, refusal),
            })
        })
        .await?;
    let keep = |identity: Identity| {
        let cell = IdentityCell::default();
        let _ = cell.0.set(Some(identity));
        req.extensions_mut().insert(cell);
    };
    match admission {
        Admission::SignedOut => {
            session.sign_out();
            Err(sign_in_required(req))
        }
        Admission::Refused(identity, refusal) => {
            keep(identity);
            Err(refusal)
        }
        Admission::Admitted(identity, role, outcome) => {
            keep(identity);
            Ok((role, outcome))
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
                Some(identity) => Ok(Staff::admit(identity)?),
                None => Err(sign_in_required(&req)),
            }
        })
    }
}

impl Role for Staff {
    fn admit(identity: Identity) -> Result<Self, AppError> {
        if identity.user.is_staff {
            Ok(Staff(identity))
        } else {
            Err(Error::Forbidden("This page is for staff only.".into()).into())
        }
    }
}

/// A partner manager, carrying their partner. Staff pass too, without a partner of
/// their own: the partner comes from the route and the service checks access.
#[derive(Clone)]
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
                Some(identity) => Ok(ManagerOrStaff::admit(identity)?),
                None => Err(sign_in_required(&req)),
            }
        })
    }
}

impl Role for ManagerOrStaff {
    fn admit(identity: Identity) -> Result<Self, AppError> {
        if identity.user.is_staff || identity.partner.is_some() {
            Ok(ManagerOrStaff { identity })
        } else {
            // Like another partner's data for a manager (rule 10): nothing is here for them.
            Err(AppError::PageNotFound)
        }
    }
}
