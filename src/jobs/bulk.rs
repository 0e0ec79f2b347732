//! Runs approved bulk jobs: claims one with `FOR UPDATE SKIP LOCKED` and a lease, then
//! handles its rows in batches, each one transaction that also extends the lease. A job
//! whose runner died is taken over when its lease ends, at the first unprocessed row.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{BoxFuture, Job, Progress, Stop};
use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Result;
use crate::models::bulk;
use crate::services::ServiceContext;
use crate::services::bulk::{Batch, MAX_RUN_FAILURES, run_batch};

/// How long a claim keeps other runners off a job: far longer than one batch takes.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
/// Longest one batch's statements may run (the pool's default is shorter).
const BATCH_STATEMENT_TIMEOUT: &str = "120s";

/// The job this runner holds between turns.
#[derive(Debug, Clone, Copy)]
struct Held {
    job_id: i64,
    token: Uuid,
    failures: i32,
}

pub struct BulkJobs {
    db: Db,
    ctx: ServiceContext,
    poll: Duration,
    held: std::sync::Mutex<Option<Held>>,
}

impl BulkJobs {
    pub fn from_settings(settings: &Settings, db: Db) -> Self {
        Self {
            db,
            ctx: ServiceContext::from_settings(settings),
            poll: Duration::from_millis(settings.worker_poll_ms.max(10)),
            held: std::sync::Mutex::new(None),
        }
    }

    fn take_held(&self) -> Option<Held> {
        self.held.lock().map_or(None, |mut held| held.take())
    }

    fn keep(&self, held: Held) {
        if let Ok(mut slot) = self.held.lock() {
            *slot = Some(held);
        }
    }

    /// One turn: continues the job this runner holds, or claims the next runnable one, and
    /// runs its batches for about a second. Returns the rows handled and whether more
    /// work is waiting, or `None` when nothing was.
    pub async fn turn(&self, stop: &Stop) -> Result<Option<(usize, bool)>> {
        let held = match self.take_held() {
            Some(held) => held,
            None => {
                let token = Uuid::new_v4();
                let claimed = self
                    .db
                    .transaction(move |conn| {
                        Ok(bulk::claim_runnable(conn, Utc::now() + LEASE, token)?)
                    })
                    .await?;
                let Some(job) = claimed else {
                    return Ok(None);
                };
                tracing::info!(
                    job_id = job.id,
                    rows = job.total_rows,
                    done = job.processed_rows,
                    "bulk job claimed"
                );
                Held {
                    job_id: job.id,
                    token,
                    failures: job.failures,
                }
            }
        };
        let started = tokio::time::Instant::now();
        let mut handled = 0;
        loop {
            if stop.requested() {
                // Given back at once, so that another runner takes over without waiting.
                self.db
                    .run(move |conn| Ok(bulk::release(conn, held.job_id, held.token)?))
                    .await?;
                tracing::info!(
                    job_id = held.job_id,
                    "stopping: bulk job left for another runner"
                );
                return Ok(Some((handled, false)));
            }
            let ctx = self.ctx.clone();
            let outcome = self
                .db
                .transaction(move |conn| {
                    use diesel::connection::SimpleConnection;
                    conn.batch_execute(&format!(
                        "SET LOCAL statement_timeout = '{BATCH_STATEMENT_TIMEOUT}'"
                    ))?;
                    run_batch(conn, &ctx, held.job_id, held.token, Utc::now() + LEASE)
                })
                .await;
            match outcome {
                Ok(Batch::Handled(rows)) => {
                    handled += rows;
                    // Other kinds of work (the emails this job queues among them) get their turn;
                    // the job is kept for the next one.
                    if started.elapsed() >= super::TURN {
                        self.keep(held);
                        return Ok(Some((handled, true)));
                    }
                }
                // Another job may be waiting.
                Ok(Batch::Finished) | Ok(Batch::NotOurs) => return Ok(Some((handled, true))),
                Err(e) => {
                    let wait = super::failure_backoff(
                        self.poll * 10,
                        u32::try_from(held.failures).unwrap_or(0) + 1,
                    );
                    let next = Utc::now()
                        + chrono::TimeDelta::from_std(wait)
                            .unwrap_or(chrono::TimeDelta::minutes(1));
                    let error = e.to_string();
                    tracing::error!(job_id = held.job_id, error = %error, "bulk job batch failed");
                    self.db
                        .run(move |conn| {
                            Ok(bulk::record_failure(
                                conn,
                                held.job_id,
                                held.token,
                                &error,
                                next,
                                MAX_RUN_FAILURES,
                            )?)
                        })
                        .await?;
                    return Err(e);
                }
            }
        }
    }
}

impl Job for BulkJobs {
    fn name(&self) -> &'static str {
        "bulk jobs"
    }

    fn interval(&self) -> Duration {
        self.poll
    }

    fn run_batch<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            Ok(match self.turn(stop).await? {
                Some((handled, more)) => Progress { handled, more },
                None => Progress::default(),
            })
        })
    }
}
