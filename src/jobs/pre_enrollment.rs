//! Tries again, every minute, pre-enrolments whose person has an account but could not
//! join yet (the catalog had not started, or was full).

use std::time::Duration;

use super::{BoxFuture, Job, Progress, Stop};
use crate::db::Db;
use crate::error::Result;
use crate::services::pre_enrollment;

const INTERVAL: Duration = Duration::from_secs(60);
const BATCH: i64 = 200;

pub struct PreEnrollmentRetries {
    db: Db,
}

impl PreEnrollmentRetries {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// One pass; returns (tried, fulfilled).
    pub async fn retry(&self) -> Result<(usize, usize)> {
        self.db
            .transaction(|conn| pre_enrollment::retry_waiting(conn, BATCH))
            .await
    }
}

impl Job for PreEnrollmentRetries {
    fn name(&self) -> &'static str {
        "pre-enrolment retries"
    }

    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let (tried, fulfilled) = self.retry().await?;
            if tried > 0 {
                tracing::info!(tried, fulfilled, "waiting pre-enrolments tried again");
            }
            Ok(Progress {
                handled: tried,
                more: false,
            })
        })
    }
}
