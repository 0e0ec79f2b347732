//! Drops records that have served their purpose: sign-in attempts older than any
//! throttling window looks back, and bulk lists previewed but never submitted.

use std::time::Duration;

use chrono::Utc;

use super::{BoxFuture, Job, Progress, Stop};
use crate::db::Db;
use crate::error::Result;
use crate::models::sign_in_attempts;

const INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Sign-in attempts are kept this long, for looking into abuse afterwards.
const KEEP_SIGN_IN_ATTEMPTS_DAYS: i64 = 30;
/// A previewed list nobody submitted is kept this long.
use crate::services::bulk::KEEP_DRAFTS_HOURS;

pub struct Housekeeping {
    db: Db,
}

impl Housekeeping {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl Job for Housekeeping {
    fn name(&self) -> &'static str {
        "housekeeping"
    }

    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_batch<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(async move {
            let before = Utc::now() - chrono::Duration::days(KEEP_SIGN_IN_ATTEMPTS_DAYS);
            let pruned = self
                .db
                .run(move |conn| Ok(sign_in_attempts::prune_older_than(conn, before)?))
                .await?;
            if pruned > 0 {
                tracing::info!(pruned, "old sign-in attempts removed");
            }
            let before = Utc::now() - chrono::Duration::hours(KEEP_DRAFTS_HOURS);
            let drafts = self
                .db
                .run(move |conn| Ok(crate::models::bulk::delete_stale_drafts(conn, before)?))
                .await?;
            if drafts > 0 {
                tracing::info!(drafts, "bulk lists never submitted removed");
            }
            let before =
                Utc::now() - chrono::Duration::days(crate::services::console::BLOCKED_WINDOW_DAYS);
            let refused = self
                .db
                .run(move |conn| {
                    Ok(crate::models::refused_joins::prune_older_than(
                        conn, before,
                    )?)
                })
                .await?;
            Ok(Progress {
                handled: pruned + drafts + refused,
                more: false,
            })
        })
    }
}
