//! Email delivery: claims due emails of the outbox, splices in their link secret,
//! sends each within an overall time limit, and records the outcome. A message that
//! cannot be built, or whose sending panics, fails alone with the reason; an outcome
//! that cannot be recorded (the database is away) is kept and recorded once it can be,
//! so that a sent email is never sent again.
//!
//! Emails go out a few at a time (`EMAIL_CONCURRENCY`, each over a pooled connection)
//! in the order claimed, while the database work runs beside them: the next batch is
//! claimed before the current one runs out, and outcomes are written a few at a
//! time, each group in one statement or transaction. Sending pauses while outcomes cannot
//! be written or too many wait, and an email whose lease could end during its send is
//! given back instead of sent.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::{BoxFuture, Job, Progress, Stop, panic_message};
use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Result;
use crate::mail::Sealer;
use crate::mail::outbox::SECRET_MARKER;
use crate::mail::transport::{SendError, Transport};
use crate::models::outbox::{self, OutboundEmail};

/// Emails claimed at once: as many as are sent in a turn of the runner, at most this
/// many, and `FIRST_BATCH` while the pace of sending is not known yet.
const BATCH_SIZE: usize = 50;
const FIRST_BATCH: usize = 10;
/// The next batch is claimed while the emails left to send would take about twice as
/// long as a claim, so that sending does not wait for it; never more than this many ahead
/// (each email's lease covers the sends before it).
const MAX_CLAIM_AHEAD: usize = BATCH_SIZE;
/// Outcomes are written this many at a time, or once the oldest has waited
/// `RECORD_DELAY`: each write is a commit, and commits are what the database waits for.
const RECORD_GROUP: usize = 16;
const RECORD_DELAY: Duration = Duration::from_millis(20);
/// Sent emails whose outcome is not written yet; sending waits beyond, and while a write
/// fails, so that a database outage leaves few to be recorded later.
const MAX_UNRECORDED: usize = 128;
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
    /// The wait after a run that found nothing more to send.
    poll: Duration,
    /// Emails sent at once.
    concurrency: usize,
    /// How long sends and claims have taken lately, kept from one run to the next.
    pace: Arc<Mutex<Pace>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Pace {
    send: Option<Duration>,
    claim: Option<Duration>,
}

impl Pace {
    /// Emails to claim at once.
    fn batch(&self) -> usize {
        match self.send {
            Some(send) if !send.is_zero() => {
                ((super::TURN.as_secs_f64() / send.as_secs_f64()) as usize).clamp(1, BATCH_SIZE)
            }
            Some(_) => BATCH_SIZE,
            None => FIRST_BATCH,
        }
    }

    /// Claimed emails left to send below which the next batch is claimed.
    fn claim_below(&self) -> usize {
        match (self.claim, self.send) {
            (Some(claim), Some(send)) if !send.is_zero() => {
                let sends = (2.0 * claim.as_secs_f64() / send.as_secs_f64()).ceil();
                (sends as usize).clamp(1, MAX_CLAIM_AHEAD)
            }
            _ => 1,
        }
    }
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
    Sent {
        at: DateTime<Utc>,
    },
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
            poll: Duration::from_millis(settings.worker_poll_ms.max(10)),
            concurrency: settings.email_concurrency.max(1),
            pace: Arc::default(),
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
        let (delivery, _) = self
            .deliver(
                stop,
                Limit {
                    claims: Some(1),
                    until: None,
                },
            )
            .await?;
        Ok(delivery)
    }

    /// Claims, sends and records until no email is due or `limit` is reached, then sends
    /// what it has claimed; when the runner stops, claimed emails not started are given
    /// back. Returns what it came to and whether more emails are due.
    async fn deliver(&self, stop: &Stop, limit: Limit) -> Result<(Delivery, bool)> {
        let run = Run::default();
        let pace = *self.pace.lock().unwrap_or_else(PoisonError::into_inner);
        run.update(|s| s.pace = pace);
        let (claimed, (), recorded) = tokio::join!(
            async {
                let result = self.claim_batches(&run, stop, limit).await;
                run.update(|s| s.claiming_done = true);
                run.claimed.notify_one();
                result
            },
            async {
                self.send_claimed(&run, stop).await;
                run.update(|s| s.sending_done = true);
                run.claim_wanted.notify_one();
                run.outcomes_waiting.notify_one();
            },
            async {
                let result = self.record_outcomes(&run, stop).await;
                run.update(|s| s.recording_done = true);
                run.recorded.notify_one();
                result
            },
        );
        let (mut delivery, unstarted, more, pace) = run.update(|s| {
            let mut unstarted = std::mem::take(&mut s.given_back);
            unstarted.extend(s.queue.drain(..).map(|c| c.email.id));
            (s.delivery, unstarted, s.last_claim_full, s.pace)
        });
        *self.pace.lock().unwrap_or_else(PoisonError::into_inner) = pace;
        let mut result = claimed.and(recorded);
        if !unstarted.is_empty() {
            delivery.released = unstarted.len();
            let ids = unstarted.clone();
            let released = self
                .db
                .run(move |conn| Ok(outbox::release(conn, &ids)?))
                .await;
            if stop.requested() {
                tracing::info!(
                    released = unstarted.len(),
                    "stopping: emails left for another run"
                );
            }
            result = result.and(released);
        }
        result?;
        Ok((delivery, more))
    }

    /// Claims batches, the next one while the previous one still has enough to send to
    /// cover the claim's time.
    async fn claim_batches(&self, run: &Run, stop: &Stop, limit: Limit) -> Result<()> {
        let step = self.config.send_timeout;
        let mut claims = 0;
        loop {
            // Waits until the queue runs low, unless sending has ended.
            let ahead = loop {
                let (done, waiting, in_flight, below) = run.update(|s| {
                    (
                        s.sending_done,
                        s.queue.len(),
                        s.in_flight,
                        s.pace.claim_below(),
                    )
                });
                if done {
                    return Ok(());
                }
                if waiting <= below {
                    break waiting + in_flight;
                }
                run.claim_wanted.notified().await;
            };
            if stop.requested()
                || limit.claims.is_some_and(|most| claims >= most)
                || limit.until.is_some_and(|until| Instant::now() >= until)
            {
                return Ok(());
            }
            // Each email's lease also covers the sends of those claimed before it.
            let margin = LEASE_MARGIN + step.saturating_mul(ahead as u32);
            let size = run.update(|s| s.pace.batch());
            let asked = Instant::now();
            let claimed = self
                .db
                .run(move |conn| Ok(outbox::claim_due(conn, size as i64, step, margin)?))
                .await?;
            claims += 1;
            let full = claimed.len() == size;
            let took = asked.elapsed();
            run.update(|s| {
                s.pace.claim = Some(average(s.pace.claim, took));
                s.delivery.claimed += claimed.len();
                s.last_claim_full = full;
                s.queue.extend(
                    claimed
                        .into_iter()
                        .enumerate()
                        .map(|(index, email)| Claimed {
                            email,
                            lease_end: asked + step.saturating_mul(index as u32 + 1) + margin,
                        }),
                );
            });
            run.claimed.notify_one();
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends the claimed emails, up to `concurrency` at once in the order claimed, handing
    /// each outcome to the recorder.
    async fn send_claimed(&self, run: &Run, stop: &Stop) {
        let mut sending = FuturesUnordered::new();
        let mut starting = true;
        loop {
            while starting && sending.len() < self.concurrency {
                match self.next_to_send(run, stop) {
                    Ok(claimed) => sending.push(self.send_one(run, claimed)),
                    Err(Hold::Wait) => break,
                    Err(Hold::Stop) => starting = false,
                }
            }
            if sending.is_empty() && !starting {
                return;
            }
            // A send ended, emails were claimed, or outcomes were written.
            tokio::select! {
                Some(()) = sending.next(), if !sending.is_empty() => {}
                () = run.claimed.notified(), if starting => {}
                () = run.recorded.notified(), if starting => {}
            }
        }
    }

    /// The next claimed email to send now, if any may be started.
    fn next_to_send(&self, run: &Run, stop: &Stop) -> std::result::Result<Claimed, Hold> {
        let step = self.config.send_timeout;
        loop {
            let (next, low) = run.update(|s| {
                let next = if stop.requested() || s.recording_done {
                    Err(Hold::Stop)
                } else if s.recording_failing || s.unrecorded + s.in_flight >= MAX_UNRECORDED {
                    // Not while outcomes cannot be written, nor while too many wait.
                    Err(Hold::Wait)
                } else {
                    match s.queue.pop_front() {
                        Some(claimed) => {
                            s.in_flight += 1;
                            Ok(claimed)
                        }
                        None if s.claiming_done => Err(Hold::Stop),
                        None => Err(Hold::Wait),
                    }
                };
                (next, s.queue.len() <= s.pace.claim_below())
            });
            if low {
                run.claim_wanted.notify_one();
            }
            let Ok(claimed) = next else {
                return next;
            };
            let now = Instant::now();
            if now + step <= claimed.lease_end {
                return Ok(claimed);
            }
            // Its lease could end during the send, and another runner take it.
            let id = claimed.email.id;
            tracing::warn!(email_id = id, "lease too short to send; email given back");
            run.update(|s| {
                if now < claimed.lease_end {
                    s.given_back.push(id);
                }
                s.in_flight -= 1;
            });
        }
    }

    /// Sends one email and hands its outcome to the recorder.
    async fn send_one(&self, run: &Run, claimed: Claimed) {
        let email = claimed.email;
        let (id, kind, attempts) = (email.id, email.kind.clone(), email.attempts);
        let started = Instant::now();
        let outcome = self.attempt(email).await;
        // The share of the sending's time one email takes.
        let took = started.elapsed() / self.concurrency as u32;
        match &outcome {
            Outcome::Sent { .. } => {
                tracing::info!(email_id = id, kind = %kind, attempts, "email sent");
            }
            Outcome::Retry { error, next } => {
                tracing::warn!(email_id = id, kind = %kind, attempts, next_attempt_at = %next, error = %error, "email not sent, will retry");
            }
            Outcome::Failed { error } => {
                tracing::warn!(email_id = id, kind = %kind, attempts, error = %error, "email failed");
            }
        }
        run.update(|s| {
            match &outcome {
                Outcome::Sent { .. } => s.delivery.sent += 1,
                Outcome::Retry { .. } => s.delivery.retrying += 1,
                Outcome::Failed { .. } => s.delivery.failed += 1,
            }
            s.pace.send = Some(average(s.pace.send, took));
            s.outcomes.push((id, outcome));
            s.oldest_outcome.get_or_insert_with(Instant::now);
            s.unrecorded += 1;
            s.in_flight -= 1;
        });
        run.outcomes_waiting.notify_one();
    }

    /// Writes the outcomes waiting, in one transaction, once there are `RECORD_GROUP` of
    /// them, the oldest has waited `RECORD_DELAY`, or sending pauses or ends.
    async fn record_outcomes(&self, run: &Run, stop: &Stop) -> Result<()> {
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        loop {
            let (waiting, oldest, due, done) = run.update(|s| {
                let idle = s.in_flight == 0 && s.queue.is_empty();
                let due = s.outcomes.len() >= RECORD_GROUP || s.sending_done || idle;
                (s.outcomes.len(), s.oldest_outcome, due, s.sending_done)
            });
            if waiting == 0 && done {
                return Ok(());
            }
            let late = oldest.is_some_and(|at| at + RECORD_DELAY <= Instant::now());
            if waiting == 0 || !(due || late) {
                let wake = run.outcomes_waiting.notified();
                match oldest {
                    Some(at) => {
                        // One timer per group, not per outcome: setting a timer can wake
                        // the runtime's timer thread.
                        let deadline = at + RECORD_DELAY;
                        if timer.as_ref().is_none_or(|t| t.deadline() != deadline) {
                            timer = Some(Box::pin(tokio::time::sleep_until(deadline)));
                        }
                        if let Some(timer) = timer.as_mut() {
                            tokio::select! {
                                () = wake => {}
                                () = timer.as_mut() => {}
                            }
                        }
                    }
                    None => wake.await,
                }
                continue;
            }
            let outcomes = run.update(|s| {
                s.oldest_outcome = None;
                std::mem::take(&mut s.outcomes)
            });
            let count = outcomes.len();
            self.record(run, outcomes, stop).await?;
            run.update(|s| {
                s.unrecorded -= count;
                s.recording_failing = false;
            });
            run.recorded.notify_one();
        }
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
            Ok(()) => Outcome::Sent { at: Utc::now() },
            Err(e) if e.permanent || attempts >= self.config.max_attempts => Outcome::Failed {
                error: truncate(&e.message),
            },
            Err(e) => Outcome::Retry {
                error: truncate(&e.message),
                next: Utc::now() + retry_delay(self.config.retry_base_seconds, attempts),
            },
        }
    }

    /// Writes outcomes back in one transaction, retrying with backoff while the database is
    /// away (sending waits meanwhile). Giving up would leave a sent email to be sent again
    /// when its lease ends.
    async fn record(&self, run: &Run, outcomes: Vec<(i64, Outcome)>, stop: &Stop) -> Result<()> {
        let mut wait = Duration::from_millis(100);
        let mut stopping_since = None;
        let sent: Vec<(i64, DateTime<Utc>)> = outcomes
            .iter()
            .filter_map(|(id, outcome)| match outcome {
                Outcome::Sent { at } => Some((*id, *at)),
                _ => None,
            })
            .collect();
        loop {
            let (written, sent) = (outcomes.clone(), sent.clone());
            let only_sent = written
                .iter()
                .all(|(_, o)| matches!(o, Outcome::Sent { .. }));
            let result = if only_sent {
                self.db
                    .run(move |conn| Ok(outbox::mark_all_sent(conn, &sent)?))
                    .await
            } else {
                self.db
                    .transaction(move |conn| {
                        outbox::mark_all_sent(conn, &sent)?;
                        for (id, outcome) in written {
                            match outcome {
                                Outcome::Sent { .. } => {}
                                Outcome::Retry { error, next } => {
                                    outbox::mark_retry(conn, id, &error, next)?
                                }
                                Outcome::Failed { error } => outbox::mark_failed(conn, id, &error)?,
                            }
                        }
                        Ok(())
                    })
                    .await
            };
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // No more sends until outcomes can be written again.
            run.update(|s| s.recording_failing = true);
            if stop.requested() {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if since.elapsed() > RECORD_GRACE_WHEN_STOPPING {
                    return Err(error);
                }
            }
            let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
            tracing::warn!(email_ids = ?ids, error = %error, retry_in_ms = wait.as_millis() as u64, "cannot record emails' outcomes yet; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

/// How far one delivery run may go.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Batches to claim at most.
    claims: Option<usize>,
    /// No claim after this.
    until: Option<Instant>,
}

/// A claimed email and the end of its lease, as seen from here (never later than the
/// database's).
struct Claimed {
    email: OutboundEmail,
    lease_end: Instant,
}

/// Why no email is started now.
enum Hold {
    /// Until emails are claimed or outcomes written.
    Wait,
    /// No more sends in this run.
    Stop,
}

/// What the claiming, the sending and the recording of one run share.
#[derive(Default)]
struct Run {
    state: Mutex<RunState>,
    /// Emails were claimed, or claiming ended.
    claimed: Notify,
    /// The queue runs low, or sending ended.
    claim_wanted: Notify,
    /// Outcomes wait to be written, or sending ended.
    outcomes_waiting: Notify,
    /// Outcomes were written, or recording ended.
    recorded: Notify,
}

#[derive(Default)]
struct RunState {
    queue: VecDeque<Claimed>,
    /// Emails being sent.
    in_flight: usize,
    outcomes: Vec<(i64, Outcome)>,
    /// When the oldest of `outcomes` came in.
    oldest_outcome: Option<Instant>,
    /// Sent or tried emails whose outcome is not written yet.
    unrecorded: usize,
    /// The last write of outcomes failed.
    recording_failing: bool,
    /// Claimed emails left untried that are still held: given back at the end.
    given_back: Vec<i64>,
    delivery: Delivery,
    pace: Pace,
    last_claim_full: bool,
    claiming_done: bool,
    sending_done: bool,
    recording_done: bool,
}

/// A running average giving the newest sample an eighth of the weight.
fn average(old: Option<Duration>, sample: Duration) -> Duration {
    match old {
        Some(old) => (old * 7 + sample) / 8,
        None => sample,
    }
}

impl Run {
    fn state(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on the state under its lock, never held across an await.
    fn update<T>(&self, change: impl FnOnce(&mut RunState) -> T) -> T {
        change(&mut self.state())
    }
}

impl Job for EmailDelivery {
    fn name(&self) -> &'static str {
        "email delivery"
    }

    /// Not zero: the runner would look for due emails again within a millisecond, over
    /// and over, while there are none.
    fn interval(&self) -> Duration {
        self.poll
    }

    /// Claims for up to a turn, so that a long queue shares the runner fairly.
    fn run_batch<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let limit = Limit {
                claims: None,
                until: Some(Instant::now() + super::TURN),
            };
            let (delivery, more) = self.deliver(stop, limit).await?;
            Ok(Progress {
                handled: delivery.claimed - delivery.released,
                more,
            })
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
