//! Folds the counters that triggers keep beside the data they count (analytics roll-ups,
//! catalog counts): each change adds a small delta row, so writers never wait on a
//! shared counter; this folds the deltas of each key into one row, keeping reads short.

use std::time::Duration;

use super::{BoxFuture, Job, Progress, Stop};
use crate::db::Db;
use crate::error::Result;
use crate::models::{analytics, catalog_counts};

const INTERVAL: Duration = Duration::from_secs(30);

pub struct Folding {
    db: Db,
}

impl Folding {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl Job for Folding {
    fn name(&self) -> &'static str {
        "counter folding"
    }

    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let folded = self
                .db
                .transaction(|conn| Ok(analytics::fold(conn)? + catalog_counts::fold(conn)?))
                .await?;
            Ok(Progress {
                handled: usize::try_from(folded).unwrap_or(0),
                more: false,
            })
        })
    }
}
