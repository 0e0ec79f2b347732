//! Builds the server from `Settings`. The listener is bound first so that tests can
//! ask for port 0 and read the port back.

use std::net::TcpListener;

use actix_session::SessionMiddleware;
use actix_session::config::PersistentSession;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer};
use anyhow::Context;

use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::jobs::Runner;
use crate::web as app_web;

/// Largest urlencoded form accepted (pasted address lists, CSV text).
pub const FORM_LIMIT_BYTES: usize = 2 * 1024 * 1024;
/// Largest JSON body of the API (a bulk enrolment of 1,000 addresses fits).
const JSON_LIMIT_BYTES: usize = 256 * 1024;
/// Largest request body of any kind (uploads).
pub const PAYLOAD_LIMIT_BYTES: usize = 11 * 1024 * 1024;

/// Scripts, styles and images come only from here (no inline script), except partner
/// logos (any https address) and the inline styles of branding and email previews.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; frame-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub struct Application {
    port: u16,
    server: Server,
    /// The background runner, when `RUN_WORKER` asks for it in this process.
    worker: Option<Runner>,
}

impl Application {
    pub fn build(settings: Settings, db: Db) -> anyhow::Result<Self> {
        let worker = if settings.run_worker {
            Some(Runner::from_settings(&settings, db.clone())?)
        } else {
            None
        };
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let server = run(listener, settings, db)?;
        Ok(Self {
            port,
            server,
            worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where this process sends emails, when it runs the worker.
    pub fn mail_destination(&self) -> Option<String> {
        self.worker
            .as_ref()
            .map(|w| w.mail_destination().to_string())
    }

    /// Serves (and runs background jobs) until the server is stopped; the runner
    /// finishes the item under way before this returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = self.worker.map(|worker| {
            tokio::spawn(worker.run(async move {
                let _ = stopped.await;
            }))
        });
        let outcome = self.server.await;
        let _ = stop.send(());
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        outcome
    }
}

fn form_error_handler(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let message = match err {
        actix_web::error::UrlencodedError::Overflow { .. } => "The form is too large.".to_string(),
        other => format!("The form could not be read: {other}"),
    };
    app_web::error::AppError::from(Error::invalid("form", message)).into()
}

/// A link with a malformed filter or page number (`?page=abc`) gets the error page,
/// naming what could not be read.
fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let detail = match &err {
        actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    let message = format!("This address has a value that cannot be read ({detail}).");
    let error = Error::invalid("address", message);
    if req.path().starts_with("/api/") {
        return app_web::api::ApiError::from(error).into();
    }
    app_web::error::AppError::from(error).into()
}

fn run(listener: TcpListener, settings: Settings, db: Db) -> anyhow::Result<Server> {
    let key = Key::from(&settings.session_key_bytes());
    let secure = settings.cookie_secure();
    let service_context =
        actix_web::web::Data::new(crate::services::ServiceContext::from_settings(&settings));
    let settings = actix_web::web::Data::new(settings);
    let db = actix_web::web::Data::new(db);
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name("partner_catalog_session".into())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .session_lifecycle(PersistentSession::default().session_ttl(CookieDuration::days(14)))
            .build();
        App::new()
            .wrap(from_fn(app_web::head_as_get))
            .wrap(from_fn(app_web::csrf::guard))
            .wrap(from_fn(app_web::error::with_navigation))
            .wrap(sessions)
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                    // Pages carry personal data and form tokens: no copy is kept anywhere.
                    // Responses that may be cached (the stylesheet) say so themselves.
                    .add((actix_web::http::header::CACHE_CONTROL, "no-store")),
            )
            .wrap(from_fn(app_web::one_connection_per_request))
            .wrap(from_fn(app_web::request_log::log))
            .app_data(
                actix_web::web::FormConfig::default()
                    .limit(FORM_LIMIT_BYTES)
                    .error_handler(form_error_handler),
            )
            .app_data(actix_web::web::QueryConfig::default().error_handler(query_error_handler))
            // `/…/abc` where an id belongs: no such page, shown as the site's 404.
            .app_data(
                actix_web::web::PathConfig::default().error_handler(|_, req| {
                    if req.path().starts_with("/api/") {
                        return app_web::api::ApiError::from(Error::NotFound("this address"))
                            .into();
                    }
                    app_web::error::AppError::PageNotFound.into()
                }),
            )
            .app_data(
                actix_web::web::JsonConfig::default()
                    .limit(JSON_LIMIT_BYTES)
                    .error_handler(|e, _| {
                        app_web::api::ApiError::from(Error::invalid(
                            "body",
                            format!("the JSON body cannot be read: {e}"),
                        ))
                        .into()
                    }),
            )
            .app_data(actix_web::web::PayloadConfig::new(PAYLOAD_LIMIT_BYTES))
            .app_data(settings.clone())
            .app_data(service_context.clone())
            .app_data(db.clone())
            .configure(app_web::routes)
    })
    // A response written in more than one piece would otherwise wait for the client's
    // delayed acknowledgement (Nagle's algorithm): up to 40 ms on a page.
    .tcp_nodelay(true)
    .listen(listener)?
    .run();
    Ok(server)
}
