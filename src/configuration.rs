//! Settings read once from environment variables, with documented defaults.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub app_env: AppEnv,
    pub database_url: SecretString,
    pub database_pool_size: u32,
    pub bind: String,
    /// Public address used in emailed links, without a trailing slash.
    pub base_url: String,
    /// Secret the session cookie and sealed email secrets are derived from.
    pub session_key: SecretString,
    pub smtp_url: Option<SecretString>,
    pub email_from: String,
    /// Directory for local state: the development session key, by default `.eml` files.
    pub var_dir: PathBuf,
    /// Where emails are written as `.eml` files when `SMTP_URL` is unset.
    pub mail_dir: PathBuf,
    /// Attempts before an email is marked failed.
    pub email_max_attempts: i32,
    /// First retry delay; each further attempt waits twice as long (capped).
    pub email_retry_base_seconds: i64,
    pub invitation_ttl_days: i64,
    pub reminder_days_before_expiry: i64,
    /// Least time between two sends of one invitation (resend rate limit).
    pub resend_interval_seconds: i64,
    pub pending_enrollment_ttl_days: i64,
    pub bulk_approval_threshold: usize,
    pub open_sign_up: bool,
    /// Runs the email worker inside `serve`.
    pub run_worker: bool,
    pub worker_poll_ms: u64,
    /// Longest wait for a row lock before a statement gives up (`lock_timeout`).
    pub database_lock_timeout_ms: u64,
    /// Longest any one statement may run (`statement_timeout`).
    pub database_statement_timeout_ms: u64,
    /// Password hashes computed at once; each takes about 19 MiB.
    pub password_hashing_concurrency: usize,
    /// Hashes allowed to wait for a turn; beyond, requests are answered "busy".
    pub password_hashing_queue: usize,
    /// Invitation emails one partner's managers may send in an hour (0 = no cap).
    pub invitation_emails_per_partner_per_hour: i64,
    /// Longest one email may take to hand over to the SMTP server, all steps together.
    pub email_send_timeout_seconds: u64,
    /// Emails one worker hands to the SMTP server at once, each over its own connection.
    pub email_concurrency: usize,
    /// Where learners follow a course, with `{course_key}` in it.
    pub course_url_template: Option<String>,
    /// A learning record store to forward xAPI statements to (its base address; statements
    /// go to `{url}/xAPI/statements`), with its basic-auth credentials.
    pub xapi_lrs_url: Option<String>,
    pub xapi_lrs_username: Option<String>,
    pub xapi_lrs_password: Option<SecretString>,
    /// Statements per request to the store.
    pub xapi_lrs_batch_size: usize,
    /// Identify people in statements by email (`mbox`) instead of a platform account id.
    pub xapi_include_email: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("SESSION_KEY must be set when APP_ENV=production")]
    MissingSessionKey,
    #[error("could not keep the development session key in {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// SMTP connections one worker may hold open.
pub const MAX_EMAIL_CONCURRENCY: usize = 32;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| SettingsError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        let app_env = match var("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    name: "APP_ENV",
                    reason: format!("expected development or production, got {other:?}"),
                });
            }
        };
        let var_dir = PathBuf::from(var("VAR_DIR").unwrap_or_else(|| "var".into()));
        let bind = var("BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let base_url = var("BASE_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_string();
        let session_key = match var("SESSION_KEY") {
            Some(key) if key.len() >= 64 => SecretString::from(key),
            Some(_) => {
                return Err(SettingsError::Invalid {
                    name: "SESSION_KEY",
                    reason: "must be at least 64 characters".into(),
                });
            }
            None if app_env == AppEnv::Production => return Err(SettingsError::MissingSessionKey),
            None => development_session_key(&var_dir)?,
        };
        Ok(Settings {
            app_env,
            database_url: SecretString::from(
                var("DATABASE_URL")
                    .unwrap_or_else(|| "postgres://localhost/partner_catalog".into()),
            ),
            database_pool_size: parse_var("DATABASE_POOL_SIZE", 10)?,
            bind,
            base_url,
            session_key,
            smtp_url: var("SMTP_URL").map(SecretString::from),
            email_from: var("EMAIL_FROM")
                .unwrap_or_else(|| "Partner Catalog <no-reply@localhost>".into()),
            mail_dir: var("MAIL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| var_dir.join("mail")),
            var_dir,
            email_max_attempts: parse_var("EMAIL_MAX_ATTEMPTS", 8)?,
            email_retry_base_seconds: parse_var("EMAIL_RETRY_BASE_SECONDS", 30)?,
            invitation_ttl_days: parse_var("INVITATION_TTL_DAYS", 30)?,
            reminder_days_before_expiry: parse_var("REMINDER_DAYS_BEFORE_EXPIRY", 3)?,
            resend_interval_seconds: parse_var("RESEND_INTERVAL_SECONDS", 60)?,
            pending_enrollment_ttl_days: parse_var("PENDING_ENROLLMENT_TTL_DAYS", 60)?,
            bulk_approval_threshold: parse_var("BULK_APPROVAL_THRESHOLD", 50)?,
            open_sign_up: parse_var("OPEN_SIGN_UP", true)?,
            run_worker: parse_var("RUN_WORKER", true)?,
            worker_poll_ms: parse_var("WORKER_POLL_MS", 1000)?,
            database_lock_timeout_ms: parse_var("DATABASE_LOCK_TIMEOUT_MS", 5_000)?,
            database_statement_timeout_ms: parse_var("DATABASE_STATEMENT_TIMEOUT_MS", 30_000)?,
            password_hashing_concurrency: parse_var(
                "PASSWORD_HASHING_CONCURRENCY",
                default_hashing_concurrency(),
            )?,
            password_hashing_queue: parse_var("PASSWORD_HASHING_QUEUE", 32)?,
            invitation_emails_per_partner_per_hour: parse_var(
                "INVITATION_EMAILS_PER_PARTNER_PER_HOUR",
                1_000,
            )?,
            email_send_timeout_seconds: parse_var("EMAIL_SEND_TIMEOUT_SECONDS", 60)?,
            email_concurrency: match parse_var("EMAIL_CONCURRENCY", 4usize)? {
                n @ 1..=MAX_EMAIL_CONCURRENCY => n,
                _ => {
                    return Err(SettingsError::Invalid {
                        name: "EMAIL_CONCURRENCY",
                        reason: format!("must be from 1 to {MAX_EMAIL_CONCURRENCY}"),
                    });
                }
            },
            course_url_template: match var("COURSE_URL_TEMPLATE") {
                Some(template) if !template.contains("{course_key}") => {
                    return Err(SettingsError::Invalid {
                        name: "COURSE_URL_TEMPLATE",
                        reason: "must contain {course_key}".into(),
                    });
                }
                other => other,
            },
            xapi_lrs_url: match var("XAPI_LRS_URL") {
                Some(raw) => Some(lrs_url(&raw)?),
                None => None,
            },
            xapi_lrs_username: var("XAPI_LRS_USERNAME"),
            xapi_lrs_password: var("XAPI_LRS_PASSWORD").map(SecretString::from),
            xapi_lrs_batch_size: match parse_var("XAPI_LRS_BATCH_SIZE", 100usize)? {
                n @ 1..=1_000 => n,
                _ => {
                    return Err(SettingsError::Invalid {
                        name: "XAPI_LRS_BATCH_SIZE",
                        reason: "must be from 1 to 1000".into(),
                    });
                }
            },
            xapi_include_email: parse_var("XAPI_INCLUDE_EMAIL", false)?,
        })
    }

    /// Settings for tests and tools: everything local, nothing read from the environment.
    pub fn for_database(database_url: &str, var_dir: PathBuf) -> Self {
        Settings {
            app_env: AppEnv::Development,
            database_url: SecretString::from(database_url.to_string()),
            // Tests run many applications at once against one server.
            database_pool_size: 4,
            bind: "127.0.0.1:0".into(),
            base_url: "http://127.0.0.1".into(),
            session_key: SecretString::from("k".repeat(64)),
            smtp_url: None,
            email_from: "Partner Catalog <no-reply@localhost>".into(),
            mail_dir: var_dir.join("mail"),
            var_dir,
            email_max_attempts: 8,
            email_retry_base_seconds: 30,
            invitation_ttl_days: 30,
            reminder_days_before_expiry: 3,
            resend_interval_seconds: 0,
            pending_enrollment_ttl_days: 60,
            bulk_approval_threshold: 50,
            open_sign_up: true,
            run_worker: false,
            worker_poll_ms: 200,
            database_lock_timeout_ms: 5_000,
            database_statement_timeout_ms: 30_000,
            password_hashing_concurrency: 2,
            password_hashing_queue: 64,
            invitation_emails_per_partner_per_hour: 1_000,
            email_send_timeout_seconds: 10,
            email_concurrency: 4,
            course_url_template: None,
            xapi_lrs_url: None,
            xapi_lrs_username: None,
            xapi_lrs_password: None,
            xapi_lrs_batch_size: 100,
            xapi_include_email: false,
        }
    }

    pub fn cookie_secure(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// 64 bytes of key material for the session cookie, whatever the key's length.
    pub fn session_key_bytes(&self) -> [u8; 64] {
        let digest = Sha512::new()
            .chain_update(b"partner-catalog session cookie\0")
            .chain_update(self.session_key.expose_secret().as_bytes())
            .finalize();
        digest.into()
    }
}

/// An http(s) address without a trailing slash (or a trailing `/xAPI`, which is added).
fn lrs_url(raw: &str) -> Result<String, SettingsError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let trimmed = trimmed
        .strip_suffix("/xAPI")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(trimmed.to_string())
        }
        _ => Err(SettingsError::Invalid {
            name: "XAPI_LRS_URL",
            reason: format!("{trimmed:?} is not an http(s) address"),
        }),
    }
}

/// About one hash per core: more only queues inside the operating system.
fn default_hashing_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

fn development_session_key(var_dir: &std::path::Path) -> Result<SecretString, SettingsError> {
    let path = var_dir.join("session.key");
    let key_file = |source| SettingsError::KeyFile {
        path: path.clone(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 64 {
            return Ok(SecretString::from(existing));
        }
    }
    std::fs::create_dir_all(var_dir).map_err(key_file)?;
    let key = crate::domain::token::SecretToken::generate_long().into_string();
    std::fs::write(&path, &key).map_err(key_file)?;
    Ok(SecretString::from(key))
}
