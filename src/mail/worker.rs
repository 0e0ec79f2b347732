//! Sends the outbox: claims due emails (several workers may run at once), splices in
//! their link secret, sends them, and records the outcome; queues due reminders too.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures_util::FutureExt;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::outbox::SECRET_MARKER;
use super::transport::{SendError, Transport};
use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Result;
use crate::models::outbox::{self, OutboundEmail};
use crate::services::{ServiceContext, reminders};

/// Emails claimed at once.
const BATCH_SIZE: i64 = 10;
/// How long a claim keeps other workers off an email: longer than a batch can take.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Longest wait between two attempts.
const MAX_RETRY_DELAY_SECONDS: i64 = 6 * 60 * 60;
/// How often due reminders are queued.
const REMINDER_INTERVAL: Duration = Duration::from_secs(60);
/// Longest error message kept on the email.
const MAX_ERROR_LEN: usize = 2000;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub email_from: Mailbox,
    pub max_attempts: i32,
    pub retry_base_seconds: i64,
    pub poll: Duration,
    pub reminder_days_before_expiry: i64,
}

impl WorkerConfig {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let email_from = settings
            .email_from
            .parse::<Mailbox>()
            .with_context(|| format!("EMAIL_FROM {:?} is not an address", settings.email_from))?;
        Ok(Self {
            email_from,
            max_attempts: settings.email_max_attempts.max(1),
            retry_base_seconds: settings.email_retry_base_seconds.max(0),
            poll: Duration::from_millis(settings.worker_poll_ms.max(10)),
            reminder_days_before_expiry: settings.reminder_days_before_expiry,
        })
    }
}

/// What one batch came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    pub claimed: usize,
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Worker {
    db: Db,
    transport: Transport,
    ctx: ServiceContext,
    config: WorkerConfig,
}

/// The wait before the attempt after `attempts` failed ones: base × 2^(attempts−1), capped.
pub fn retry_delay(base_seconds: i64, attempts: i32) -> chrono::TimeDelta {
    let exponent = (attempts.max(1) - 1).min(30) as u32;
    let seconds = base_seconds
        .max(0)
        .saturating_mul(1_i64 << exponent)
        .min(MAX_RETRY_DELAY_SECONDS);
    chrono::TimeDelta::seconds(seconds)
}

/// The message as sent: secret spliced into both parts, sender's name from the row.
pub fn build_message(
    email: &OutboundEmail,
    secret: Option<&str>,
    from: &Mailbox,
) -> std::result::Result<Message, SendError> {
    let splice = |body: &str| -> std::result::Result<String, SendError> {
        if !body.contains(SECRET_MARKER) {
            return Ok(body.to_string());
        }
        secret
            .map(|s| body.replace(SECRET_MARKER, s))
            .ok_or_else(|| SendError::permanent("the link secret is missing or cannot be opened"))
    };
    let text = splice(&email.text_body)?;
    let html = splice(&email.html_body)?;
    let sender = if email.from_name.trim().is_empty() {
        from.clone()
    } else {
        Mailbox::new(Some(email.from_name.trim().to_string()), from.email.clone())
    };
    let to = email
        .to_address
        .parse::<Mailbox>()
        .map_err(|e| SendError::permanent(format!("the recipient address is not valid: {e}")))?;
    let mut builder = Message::builder()
        .from(sender)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!(
            "<outbox-{}.{}@{}>",
            email.id,
            email.created_at.timestamp(),
            from.email.domain()
        )));
    if let Some(reply_to) = email.reply_to.as_deref().filter(|r| !r.trim().is_empty()) {
        match reply_to.parse::<Mailbox>() {
            Ok(mailbox) => builder = builder.reply_to(mailbox),
            Err(e) => tracing::warn!(email_id = email.id, error = %e, "reply-to ignored"),
        }
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| SendError::permanent(format!("the message cannot be built: {e}")))
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_ERROR_LEN {
        return message.to_string();
    }
    let mut end = MAX_ERROR_LEN;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

impl Worker {
    pub fn new(settings: &Settings, db: Db, transport: Transport) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            transport,
            ctx: ServiceContext::from_settings(settings),
            config: WorkerConfig::from_settings(settings)?,
        })
    }

    /// With the transport the settings name.
    pub fn from_settings(settings: &Settings, db: Db) -> anyhow::Result<Self> {
        let transport = Transport::from_settings(settings)?;
        Self::new(settings, db, transport)
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Claims one batch of due emails and tries to send each once.
    pub async fn run_once(&self) -> Result<Delivery> {
        let lease_until = Utc::now() + LEASE;
        let claimed = self
            .db
            .transaction(move |conn| Ok(outbox::claim_due(conn, BATCH_SIZE, lease_until)?))
            .await?;
        let mut delivery = Delivery {
            claimed: claimed.len(),
            ..Delivery::default()
        };
        for email in claimed {
            let (id, attempts) = (email.id, email.attempts);
            let secret = email
                .sealed_secret
                .as_deref()
                .and_then(|sealed| self.ctx.sealer.open(sealed));
            let outcome = match build_message(&email, secret.as_deref(), &self.config.email_from) {
                Ok(message) => self.transport.send(message).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    self.db
                        .run(move |conn| Ok(outbox::mark_sent(conn, id, Utc::now())?))
                        .await?;
                    tracing::info!(email_id = id, kind = %email.kind, attempts, "email sent");
                    delivery.sent += 1;
                }
                Err(e) if e.permanent || attempts >= self.config.max_attempts => {
                    let error = truncate(&e.message);
                    tracing::warn!(email_id = id, kind = %email.kind, attempts, error = %error, "email failed");
                    self.db
                        .run(move |conn| Ok(outbox::mark_failed(conn, id, &error)?))
                        .await?;
                    delivery.failed += 1;
                }
                Err(e) => {
                    let error = truncate(&e.message);
                    let next = Utc::now() + retry_delay(self.config.retry_base_seconds, attempts);
                    tracing::warn!(email_id = id, kind = %email.kind, attempts, next_attempt_at = %next, error = %error, "email not sent, will retry");
                    self.db
                        .run(move |conn| Ok(outbox::mark_retry(conn, id, &error, next)?))
                        .await?;
                    delivery.retrying += 1;
                }
            }
        }
        Ok(delivery)
    }

    /// Queues the reminders now due.
    pub async fn send_reminders(&self) -> Result<usize> {
        let ctx = self.ctx.clone();
        let days = self.config.reminder_days_before_expiry;
        self.db
            .transaction(move |conn| reminders::send_due(conn, &ctx, days))
            .await
    }

    /// Sends until `shutdown` completes; a batch under way is finished first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(transport = %self.transport.describe(), "email worker started");
        let mut shutdown = std::pin::pin!(shutdown);
        let mut next_reminders = Instant::now();
        'outer: loop {
            if Instant::now() >= next_reminders {
                match self.send_reminders().await {
                    Ok(0) => {}
                    Ok(queued) => tracing::info!(queued, "invitation reminders queued"),
                    Err(e) => tracing::error!(error = %e, "queuing reminders failed"),
                }
                next_reminders = Instant::now() + REMINDER_INTERVAL;
            }
            loop {
                match self.run_once().await {
                    // A full batch: more may be waiting.
                    Ok(delivery) if delivery.claimed as i64 == BATCH_SIZE => {
                        if shutdown.as_mut().now_or_never().is_some() {
                            break 'outer;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "the email worker could not reach the outbox");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.as_mut() => break,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
        tracing::info!("email worker stopped");
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_a_cap() {
        assert_eq!(retry_delay(30, 1).num_seconds(), 30);
        assert_eq!(retry_delay(30, 2).num_seconds(), 60);
        assert_eq!(retry_delay(30, 4).num_seconds(), 240);
        assert_eq!(retry_delay(30, 40).num_seconds(), MAX_RETRY_DELAY_SECONDS);
        assert_eq!(retry_delay(0, 5).num_seconds(), 0);
    }

    fn email(text: &str, html: &str, from_name: &str) -> OutboundEmail {
        OutboundEmail {
            id: 7,
            kind: "invitation".into(),
            to_address: "learner@example.org".into(),
            from_name: from_name.into(),
            reply_to: Some("help@acme.example".into()),
            subject: "Hello".into(),
            text_body: text.into(),
            html_body: html.into(),
            sealed_secret: None,
            status: outbox::QUEUED.into(),
            attempts: 1,
            next_attempt_at: Utc::now(),
            last_error: None,
            sent_at: None,
            partner_id: None,
            invitation_id: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_secret_goes_into_both_parts_and_the_sender_name_is_used() {
        let from: Mailbox = "Partner Catalog <no-reply@example.org>"
            .parse()
            .expect("from");
        let email = email(
            &format!("Open /invitations/{SECRET_MARKER}"),
            &format!("<a href=\"/invitations/{SECRET_MARKER}\">open</a>"),
            "ACME Academy",
        );
        let message = build_message(&email, Some("tok123"), &from).expect("message");
        let raw = String::from_utf8(message.formatted()).expect("utf-8");
        assert!(
            raw.contains("From: \"ACME Academy\" <no-reply@example.org>"),
            "{raw}"
        );
        assert!(raw.contains("Reply-To: help@acme.example"), "{raw}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("/invitations/tok123"));
        assert!(!raw.contains(SECRET_MARKER));

        let no_name =
            build_message(&self::email("hi", "<p>hi</p>", ""), None, &from).expect("message");
        let raw = String::from_utf8(no_name.formatted()).expect("utf-8");
        assert!(
            raw.contains("From: \"Partner Catalog\" <no-reply@example.org>"),
            "{raw}"
        );
    }

    #[test]
    fn a_missing_secret_is_a_permanent_failure() {
        let from: Mailbox = "no-reply@example.org".parse().expect("from");
        let email = email(SECRET_MARKER, SECRET_MARKER, "");
        let error = build_message(&email, None, &from).expect_err("no secret");
        assert!(error.permanent);
    }
}
