//! Queues the invitation reminders now due, once a minute.

use std::time::Duration;

use super::{BoxFuture, Job, Progress, Stop};
use crate::configuration::Settings;
use crate::db::Db;
use crate::error::Result;
use crate::services::{ServiceContext, reminders};

const INTERVAL: Duration = Duration::from_secs(60);

pub struct Reminders {
    db: Db,
    ctx: ServiceContext,
    days_before_expiry: i64,
}

impl Reminders {
    pub fn from_settings(settings: &Settings, db: Db) -> Self {
        Self {
            db,
            ctx: ServiceContext::from_settings(settings),
            days_before_expiry: settings.reminder_days_before_expiry,
        }
    }

    /// Queues one batch of due reminders; returns how many were queued.
    pub async fn queue_due(&self) -> Result<usize> {
        let ctx = self.ctx.clone();
        let days = self.days_before_expiry;
        self.db
            .transaction(move |conn| reminders::send_due(conn, &ctx, days))
            .await
    }
}

impl Job for Reminders {
    fn name(&self) -> &'static str {
        "invitation reminders"
    }

    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let queued = self.queue_due().await?;
            if queued > 0 {
                tracing::info!(queued, "invitation reminders queued");
            }
            Ok(Progress {
                handled: queued,
                more: queued == reminders::BATCH as usize,
            })
        })
    }
}
