//! The one background runner: every kind of background work (email delivery,
//! reminders, housekeeping, …) is a `Job` run by one loop with one way to claim work,
//! back off after failures and stop gracefully. A failing or panicking batch is logged
//! and retried later; it never stops the loop or the other jobs.
//!
//! Each job kind claims its own rows with `FOR UPDATE SKIP LOCKED` and a lease, so any
//! number of runners (in `serve` processes or `worker` processes) share the work.

pub mod bulk;
pub mod folding;
pub mod housekeeping;
pub mod lrs;
pub mod outbox;
pub mod pre_enrollment;
pub mod reminders;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Result;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long one job kind may keep the runner in one go when it has more to do: long
/// queues take turns instead of starving each other.
pub const TURN: Duration = Duration::from_secs(1);

/// Longest pause of a job after repeated failures.
const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(60);

/// What one batch of a job came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Items handled (whatever their outcome).
    pub handled: usize,
    /// More work is due right now: run again without waiting.
    pub more: bool,
}

/// One kind of background work.
pub trait Job: Send + Sync {
    fn name(&self) -> &'static str;
    /// How long to wait after a batch that found nothing more to do.
    fn interval(&self) -> Duration;
    /// Claims and handles one batch. It should look at `stop` between items and leave
    /// what it has not started to another runner.
    fn run_batch<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Progress>>;
}

/// Tells running work that the runner is stopping.
#[derive(Debug, Clone)]
pub struct Stop {
    receiver: watch::Receiver<bool>,
    /// Keeps the channel of a stop that never comes open.
    _never: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Stop {
    fn from_receiver(receiver: watch::Receiver<bool>) -> Self {
        Self {
            receiver,
            _never: None,
        }
    }

    /// A stop that never comes: for running single batches (tests, tools).
    pub fn never() -> Self {
        let (sender, receiver) = watch::channel(false);
        Self {
            receiver,
            _never: Some(std::sync::Arc::new(sender)),
        }
    }

    pub fn requested(&self) -> bool {
        *self.receiver.borrow()
    }

    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|stopped| *stopped).await;
    }
}

struct Scheduled {
    job: Box<dyn Job>,
    next_run: Instant,
    failures: u32,
}

pub struct Runner {
    jobs: Vec<Scheduled>,
    poll: Duration,
    mail_destination: String,
}

impl Runner {
    pub fn new(jobs: Vec<Box<dyn Job>>, poll: Duration) -> Self {
        let now = Instant::now();
        Self {
            jobs: jobs
                .into_iter()
                .map(|job| Scheduled {
                    job,
                    next_run: now,
                    failures: 0,
                })
                .collect(),
            poll,
            mail_destination: String::new(),
        }
    }

    /// Every job kind, configured from the settings.
    pub fn from_settings(settings: &Settings, db: Db) -> anyhow::Result<Self> {
        let delivery = outbox::EmailDelivery::from_settings(settings, db.clone())?;
        let mail_destination = delivery.transport().describe();
        let mut jobs: Vec<Box<dyn Job>> = vec![
            Box::new(delivery),
            Box::new(bulk::BulkJobs::from_settings(settings, db.clone())),
            Box::new(reminders::Reminders::from_settings(settings, db.clone())),
            Box::new(pre_enrollment::PreEnrollmentRetries::new(db.clone())),
        ];
        if let Some(forwarding) = lrs::LrsForwarding::from_settings(settings, db.clone())? {
            tracing::info!(to = %forwarding.describe(), "xAPI statements are forwarded");
            jobs.push(Box::new(forwarding));
        }
        jobs.push(Box::new(folding::Folding::new(db.clone())));
        jobs.push(Box::new(housekeeping::Housekeeping::new(db)));
        let mut runner = Self::new(jobs, Duration::from_millis(settings.worker_poll_ms.max(10)));
        runner.mail_destination = mail_destination;
        Ok(runner)
    }

    /// Where emails go, for the start-up message.
    pub fn mail_destination(&self) -> &str {
        &self.mail_destination
    }

    /// The job kinds it runs.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.jobs.iter().map(|s| s.job.name()).collect();
        names.join(", ")
    }

    /// Runs until `shutdown` completes. The signal is listened for from the start, and
    /// work under way finishes its current item before this returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (sender, receiver) = watch::channel(false);
        let listener = tokio::spawn(async move {
            shutdown.await;
            let _ = sender.send(true);
        });
        let mut stop = Stop::from_receiver(receiver);
        tracing::info!(jobs = %self.describe(), "background runner started");
        while !stop.requested() {
            let mut more = false;
            for scheduled in &mut self.jobs {
                if stop.requested() {
                    break;
                }
                if Instant::now() < scheduled.next_run {
                    continue;
                }
                more |= run_scheduled(scheduled, &stop, self.poll).await;
            }
            if more || stop.requested() {
                continue;
            }
            let wake = self
                .jobs
                .iter()
                .map(|s| s.next_run)
                .min()
                .unwrap_or_else(|| Instant::now() + self.poll)
                .max(Instant::now() + Duration::from_millis(1));
            tokio::select! {
                () = stop.wait() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        listener.abort();
        tracing::info!("background runner stopped");
    }
}

/// Runs one batch of a job, catching its failures and panics; returns whether more is due.
async fn run_scheduled(scheduled: &mut Scheduled, stop: &Stop, poll: Duration) -> bool {
    let name = scheduled.job.name();
    let outcome = AssertUnwindSafe(scheduled.job.run_batch(stop))
        .catch_unwind()
        .await;
    let now = Instant::now();
    match outcome {
        Ok(Ok(progress)) => {
            scheduled.failures = 0;
            scheduled.next_run = if progress.more {
                now
            } else {
                now + scheduled.job.interval()
            };
            progress.more
        }
        Ok(Err(e)) => {
            scheduled.failures += 1;
            let wait = failure_backoff(poll, scheduled.failures);
            tracing::error!(job = name, error = %e, retry_in_ms = wait.as_millis() as u64, "background job failed");
            scheduled.next_run = now + wait;
            false
        }
        Err(panic) => {
            scheduled.failures += 1;
            let wait = failure_backoff(poll, scheduled.failures);
            tracing::error!(job = name, panic = %panic_message(&panic), retry_in_ms = wait.as_millis() as u64, "background job panicked");
            scheduled.next_run = now + wait;
            false
        }
    }
}

/// Twice as long after each failure in a row, from the poll interval up to a cap.
pub fn failure_backoff(poll: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.clamp(1, 16).saturating_sub(1);
    poll.saturating_mul(factor).min(MAX_FAILURE_BACKOFF)
}

/// The text of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal during the first batch is not fatal.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "cannot listen for stop signals");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn failures_back_off_up_to_a_cap() {
        let poll = Duration::from_millis(500);
        assert_eq!(failure_backoff(poll, 1), poll);
        assert_eq!(failure_backoff(poll, 3), Duration::from_secs(2));
        assert_eq!(failure_backoff(poll, 40), MAX_FAILURE_BACKOFF);
    }

    struct Panicky(Arc<AtomicUsize>);

    impl Job for Panicky {
        fn name(&self) -> &'static str {
            "panicky"
        }
        fn interval(&self) -> Duration {
            Duration::from_millis(1)
        }
        fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
            Box::pin(async move {
                if self.0.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                    panic!("bad item");
                }
                Ok(Progress::default())
            })
        }
    }

    struct Counting(Arc<AtomicUsize>);

    impl Job for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn interval(&self) -> Duration {
            Duration::from_millis(1)
        }
        fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(Progress::default())
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_job_neither_stops_the_loop_nor_the_others() {
        let (panics, counts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let runner = Runner::new(
            vec![
                Box::new(Panicky(panics.clone())),
                Box::new(Counting(counts.clone())),
            ],
            Duration::from_millis(1),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(runner.run(async move {
            let _ = stopped.await;
        }));
        // Until both kept running (panics are slow to report on a busy machine).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while (panics.load(Ordering::SeqCst) < 2 || counts.load(Ordering::SeqCst) < 5)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(()).expect("stop");
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("stops when told")
            .expect("did not panic out");
        assert!(
            panics.load(Ordering::SeqCst) >= 2,
            "ran again after a panic"
        );
        assert!(
            counts.load(Ordering::SeqCst) >= 5,
            "the other job kept running"
        );
    }
}
