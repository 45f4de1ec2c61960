//! Inbox retention: processed events older than `BATON_INBOX_RETENTION` are deleted, in small
//! batches, so the inbox does not grow for ever. What they established (facts, chains, hops,
//! parks, close records) stays; only the raw events go. The retention is at least 31 days:
//! Twilio's Events API keeps 30, and an event baton no longer has would be stored again by a
//! backfill.

use crate::store::{self, StoreError};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The shortest retention accepted: longer than the Events API keeps events (30 days).
pub const MIN_RETENTION: Duration = Duration::from_secs(31 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Processed events received longer ago than this are deleted.
    pub retention: Duration,
    /// How often to look.
    pub interval: Duration,
    /// Rows per delete statement (short transactions, no long locks).
    pub batch: i64,
}

impl RetentionConfig {
    pub fn keep(retention: Duration) -> RetentionConfig {
        RetentionConfig {
            retention,
            interval: Duration::from_secs(3600),
            batch: 5_000,
        }
    }
}

pub struct InboxRetention {
    pool: PgPool,
    config: RetentionConfig,
}

impl InboxRetention {
    pub fn new(pool: PgPool, config: RetentionConfig) -> InboxRetention {
        InboxRetention { pool, config }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(retention = ?self.config.retention, "inbox retention started");
        while !shutdown.is_cancelled() {
            match self.prune_once(&shutdown).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old processed inbox events deleted"),
                Err(e) => tracing::warn!(error = %e, "inbox retention failed; retrying later"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// Deletes every processed event past the retention, a batch at a time (stopping early on
    /// shutdown). Returns how many.
    pub async fn prune_once(&self, shutdown: &CancellationToken) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n =
                store::inbox::prune(&self.pool, self.config.retention, self.config.batch).await?;
            total += n;
            metrics::counter!("baton_inbox_pruned_total").increment(n);
            if n < self.config.batch as u64 || shutdown.is_cancelled() {
                return Ok(total);
            }
        }
    }
}
