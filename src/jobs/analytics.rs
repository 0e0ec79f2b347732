//! Folds the analytics roll-ups: every change to events and invitations adds a small
//! delta row (so writers never wait on a shared counter); this folds the deltas of each
//! day into one row, keeping the reports' reads short.

use std::time::Duration;

use super::{BoxFuture, Job, Progress, Stop};
use crate::db::Db;
use crate::error::Result;
use crate::models::analytics;

const INTERVAL: Duration = Duration::from_secs(30);

pub struct AnalyticsFolding {
    db: Db,
}

impl AnalyticsFolding {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl Job for AnalyticsFolding {
    fn name(&self) -> &'static str {
        "analytics folding"
    }

    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let folded = self
                .db
                .transaction(|conn| Ok(analytics::fold(conn)?))
                .await?;
            Ok(Progress {
                handled: usize::try_from(folded).unwrap_or(0),
                more: false,
            })
        })
    }
}
