//! Email delivery: claims due emails of the outbox, splices in their link secret,
//! sends each within an overall time limit, and records the outcome. A message that
//! cannot be built, or whose sending panics, fails alone with the reason; an outcome
//! that cannot be recorded (the database is away) is kept and recorded once it can be,
//! so that a sent email is never sent again.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures_util::FutureExt;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::{BoxFuture, Job, Progress, Stop, panic_message};
use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Result;
use crate::mail::Sealer;
use crate::mail::outbox::SECRET_MARKER;
use crate::mail::transport::{SendError, Transport};
use crate::models::outbox::{self, OutboundEmail};

/// Emails claimed at once.
const BATCH_SIZE: i64 = 10;
/// Added to each claimed email's lease beyond the send time limits before it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Longest wait between two attempts.
const MAX_RETRY_DELAY_SECONDS: i64 = 6 * 60 * 60;
/// Longest error message kept on the email.
const MAX_ERROR_LEN: usize = 2000;
/// While stopping, how long an outcome is still retried before it is left to the lease.
const RECORD_GRACE_WHEN_STOPPING: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub email_from: Mailbox,
    pub max_attempts: i32,
    pub retry_base_seconds: i64,
    /// Longest one send may take, connection and every SMTP step together.
    pub send_timeout: Duration,
}

impl DeliveryConfig {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let email_from = settings
            .email_from
            .parse::<Mailbox>()
            .with_context(|| format!("EMAIL_FROM {:?} is not an address", settings.email_from))?;
        Ok(Self {
            email_from,
            max_attempts: settings.email_max_attempts.max(1),
            retry_base_seconds: settings.email_retry_base_seconds.max(0),
            send_timeout: Duration::from_secs(settings.email_send_timeout_seconds.max(1)),
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
    /// Claimed but left for later because the runner is stopping.
    pub released: usize,
}

#[derive(Clone)]
pub struct EmailDelivery {
    db: Db,
    transport: Transport,
    sealer: Sealer,
    config: DeliveryConfig,
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
    let from_name = email.from_name.trim();
    if from_name.chars().any(char::is_control) {
        return Err(SendError::permanent(
            "the sender name has a line break or another control character",
        ));
    }
    let sender = if from_name.is_empty() {
        from.clone()
    } else {
        Mailbox::new(Some(from_name.to_string()), from.email.clone())
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

/// What to write back about one email.
#[derive(Debug, Clone)]
enum Outcome {
    Sent,
    Retry {
        error: String,
        next: chrono::DateTime<Utc>,
    },
    Failed {
        error: String,
    },
}

impl EmailDelivery {
    pub fn new(settings: &Settings, db: Db, transport: Transport) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            transport,
            sealer: Sealer::from_settings(settings),
            config: DeliveryConfig::from_settings(settings)?,
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

    /// One batch, never stopping early: for tests and tools.
    pub async fn run_once(&self) -> Result<Delivery> {
        self.deliver_batch(&Stop::never()).await
    }

    /// Claims one batch of due emails and tries to send each once. Each claimed email is
    /// leased for as long as the sends before it and its own may take.
    pub async fn deliver_batch(&self, stop: &Stop) -> Result<Delivery> {
        let lease_step = self.config.send_timeout;
        let claimed = self
            .db
            .transaction(move |conn| {
                Ok(outbox::claim_due(
                    conn,
                    BATCH_SIZE,
                    lease_step,
                    LEASE_MARGIN,
                )?)
            })
            .await?;
        let mut delivery = Delivery {
            claimed: claimed.len(),
            ..Delivery::default()
        };
        let mut unstarted = Vec::new();
        for email in claimed {
            if stop.requested() {
                unstarted.push(email.id);
                continue;
            }
            let (id, kind, attempts) = (email.id, email.kind.clone(), email.attempts);
            let outcome = self.attempt(email).await;
            match &outcome {
                Outcome::Sent => {
                    tracing::info!(email_id = id, kind = %kind, attempts, "email sent");
                    delivery.sent += 1;
                }
                Outcome::Retry { error, next } => {
                    tracing::warn!(email_id = id, kind = %kind, attempts, next_attempt_at = %next, error = %error, "email not sent, will retry");
                    delivery.retrying += 1;
                }
                Outcome::Failed { error } => {
                    tracing::warn!(email_id = id, kind = %kind, attempts, error = %error, "email failed");
                    delivery.failed += 1;
                }
            }
            self.record(id, outcome, stop).await?;
        }
        if !unstarted.is_empty() {
            delivery.released = unstarted.len();
            let ids = unstarted.clone();
            self.db
                .run(move |conn| Ok(outbox::release(conn, &ids)?))
                .await?;
            tracing::info!(
                released = unstarted.len(),
                "stopping: emails left for another run"
            );
        }
        Ok(delivery)
    }

    /// Builds and sends one email, turning every failure (a panic included) into an outcome.
    async fn attempt(&self, email: OutboundEmail) -> Outcome {
        let attempts = email.attempts;
        let secret = email
            .sealed_secret
            .as_deref()
            .and_then(|sealed| self.sealer.open(sealed));
        let send = async {
            let message = build_message(&email, secret.as_deref(), &self.config.email_from)?;
            match tokio::time::timeout(self.config.send_timeout, self.transport.send(message)).await
            {
                Ok(sent) => sent,
                Err(_) => Err(SendError {
                    message: format!(
                        "the mail server did not finish within {} seconds",
                        self.config.send_timeout.as_secs()
                    ),
                    permanent: false,
                }),
            }
        };
        let result = match AssertUnwindSafe(send).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(SendError::permanent(format!(
                "the message could not be sent: {}",
                panic_message(&panic)
            ))),
        };
        match result {
            Ok(()) => Outcome::Sent,
            Err(e) if e.permanent || attempts >= self.config.max_attempts => Outcome::Failed {
                error: truncate(&e.message),
            },
            Err(e) => Outcome::Retry {
                error: truncate(&e.message),
                next: Utc::now() + retry_delay(self.config.retry_base_seconds, attempts),
            },
        }
    }

    /// Writes an outcome back, retrying with backoff while the database is away. Giving up
    /// would leave a sent email to be sent again when its lease ends.
    async fn record(&self, id: i64, outcome: Outcome, stop: &Stop) -> Result<()> {
        let mut wait = Duration::from_millis(100);
        let mut stopping_since = None;
        loop {
            let written = outcome.clone();
            let result = self
                .db
                .run(move |conn| {
                    match written {
                        Outcome::Sent => outbox::mark_sent(conn, id, Utc::now())?,
                        Outcome::Retry { error, next } => {
                            outbox::mark_retry(conn, id, &error, next)?
                        }
                        Outcome::Failed { error } => outbox::mark_failed(conn, id, &error)?,
                    }
                    Ok(())
                })
                .await;
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if stop.requested() {
                let since = *stopping_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > RECORD_GRACE_WHEN_STOPPING {
                    return Err(error);
                }
            }
            tracing::warn!(email_id = id, error = %error, retry_in_ms = wait.as_millis() as u64, "cannot record an email's outcome yet; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

impl Job for EmailDelivery {
    fn name(&self) -> &'static str {
        "email delivery"
    }

    fn interval(&self) -> Duration {
        Duration::ZERO
    }

    /// Sends batches for up to a turn, so that a long queue shares the runner fairly.
    fn run_batch<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let mut handled = 0;
            loop {
                let delivery = self.deliver_batch(stop).await?;
                handled += delivery.claimed;
                // A full batch: more may be waiting.
                let more = delivery.claimed as i64 == BATCH_SIZE && delivery.released == 0;
                if !more || stop.requested() || started.elapsed() >= super::TURN {
                    return Ok(Progress { handled, more });
                }
            }
        })
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

    #[test]
    fn a_sender_name_with_a_line_break_fails_that_email_only() {
        let from: Mailbox = "no-reply@example.org".parse().expect("from");
        let email = email("hi", "<p>hi</p>", "ACME\r\nBcc: everyone@example.org");
        let error = build_message(&email, None, &from).expect_err("refused");
        assert!(error.permanent);
        assert!(error.message.contains("sender name"), "{}", error.message);
    }
}
