//! The reconciler (`BATON_RECONCILE_INTERVAL`): TaskRouter does not retry a callback baton
//! missed, so every interval the server runs the Events API backfill over the recent past and
//! stores what never arrived. Its schedule lives in the database (`backfill_runs`): a restart
//! runs at once if a run is due, and the next window starts where the last complete one ended
//! (less an overlap), so an outage of the server is covered too, up to `max_catch_up`. With
//! several `baton serve` processes on one database, one reconciles at a time (advisory lock).

use super::backfill::{BackfillConfig, Backfiller, RunOptions, Stopped};
use crate::store::backfill::{self as runs, AdvisoryLock, LockKey, NewRun, RunKind};
use crate::store::StoreError;
use crate::twilio::events::MAX_PAGE_SIZE;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// How often a run starts.
    pub interval: Duration,
    /// Each window reaches this far before the end of the last complete one (and spans at least
    /// `interval` + `overlap`), so nothing falls between two runs.
    pub overlap: Duration,
    /// Events younger than this are left to their callbacks (Twilio waits up to 15 s for an
    /// answer): a window ends this long before the run starts. Keeps late-but-arriving
    /// callbacks out of the "recovered" count.
    pub settle: Duration,
    /// The farthest back a run reaches (catching up after an outage). Older gaps need
    /// `baton backfill events --since …`.
    pub max_catch_up: Duration,
    pub page_size: u32,
    pub backfill: BackfillConfig,
}

impl ReconcileConfig {
    pub fn every(interval: Duration) -> ReconcileConfig {
        ReconcileConfig {
            interval,
            overlap: Duration::from_secs(60),
            settle: Duration::from_secs(15),
            max_catch_up: Duration::from_secs(24 * 3600),
            page_size: MAX_PAGE_SIZE,
            backfill: BackfillConfig::default(),
        }
    }
}

/// Finished reconcile runs are kept this many days.
const KEEP_RUNS_DAYS: i32 = 30;

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// The window of a run starting at `now`: from `interval` + `overlap` before its end, or from
/// `overlap` before the end of the last complete run if that is earlier, but never more than
/// `max_catch_up` back; to `settle` before `now`.
pub fn window(
    config: &ReconcileConfig,
    now: DateTime<Utc>,
    covered_until: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let until = now - delta(config.settle);
    let mut since = until - delta(config.interval) - delta(config.overlap);
    if let Some(covered) = covered_until {
        since = since.min(covered - delta(config.overlap));
    }
    let oldest = now - delta(config.max_catch_up);
    (since.max(oldest).min(until), until)
}

pub struct Reconciler {
    backfiller: Backfiller,
    workspace_sid: String,
    config: ReconcileConfig,
}

impl Reconciler {
    pub fn new(backfiller: Backfiller, workspace_sid: String, config: ReconcileConfig) -> Self {
        Reconciler {
            backfiller,
            workspace_sid,
            config,
        }
    }

    /// Runs until `shutdown`; a run in progress stops after its current page (resumable state
    /// is not needed: the next run's window starts at the last complete one).
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(interval = ?self.config.interval, "reconciler started");
        while !shutdown.is_cancelled() {
            let wait = match self.tick(&shutdown).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "reconcile failed (database); retrying next interval");
                    self.config.interval
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("reconciler stopped");
    }

    /// Runs a reconcile if one is due and no other process is running one. Returns how long
    /// until the next is due.
    pub async fn tick(&self, shutdown: &CancellationToken) -> Result<Duration, StoreError> {
        let pool = self.backfiller.pool();
        let Some(lock) =
            AdvisoryLock::try_acquire(pool, LockKey::Reconcile(&self.workspace_sid)).await?
        else {
            return Ok(self.config.interval);
        };
        let result = self.tick_locked(shutdown).await;
        lock.release().await;
        result
    }

    async fn tick_locked(&self, shutdown: &CancellationToken) -> Result<Duration, StoreError> {
        let pool = self.backfiller.pool();
        let (latest, covered) = runs::reconcile_state(pool, &self.workspace_sid).await?;
        let now = Utc::now();
        if let Some(latest) = &latest {
            let elapsed = (now - latest.started_at).to_std().unwrap_or(Duration::ZERO);
            if elapsed < self.config.interval {
                return Ok(self.config.interval - elapsed);
            }
        }
        // Runs a crash left unfinished (we hold the lock, so nobody is running them).
        runs::abandon_unfinished(pool, RunKind::Reconcile, &self.workspace_sid, None).await?;
        let (since, until) = window(&self.config, now, covered);
        let run = runs::create(
            pool,
            &NewRun {
                kind: RunKind::Reconcile,
                workspace_sid: &self.workspace_sid,
                since,
                until,
                until_given: true,
                page_size: self.config.page_size.clamp(1, MAX_PAGE_SIZE) as i32,
            },
        )
        .await?;
        metrics::counter!("baton_reconcile_runs_total").increment(1);
        let started = std::time::Instant::now();
        let end = self
            .backfiller
            .run(run, &RunOptions::default(), shutdown, &mut |_| {})
            .await;
        let end = match end {
            Ok(end) => end,
            Err(e) => {
                metrics::counter!("baton_reconcile_failures_total").increment(1);
                return Err(e);
            }
        };
        metrics::counter!("baton_reconcile_recovered_events_total").increment(end.counts.stored);
        metrics::counter!("baton_reconcile_fetched_events_total").increment(end.counts.fetched);
        metrics::gauge!("baton_reconcile_last_run_recovered_events").set(end.counts.stored as f64);
        match &end.stopped {
            Stopped::Complete => {
                metrics::gauge!("baton_reconcile_last_success_timestamp_seconds")
                    .set(Utc::now().timestamp() as f64);
                if end.counts.stored > 0 {
                    tracing::warn!(run = end.run.id, recovered = end.counts.stored, fetched = end.counts.fetched,
                        since = %end.run.since, until = %end.run.until,
                        "reconcile recovered events whose callbacks never arrived");
                } else {
                    tracing::info!(run = end.run.id, fetched = end.counts.fetched,
                        since = %end.run.since, until = %end.run.until, "reconcile found nothing missing");
                }
            }
            Stopped::Interrupted | Stopped::PageLimit => {
                tracing::info!(
                    run = end.run.id,
                    recovered = end.counts.stored,
                    "reconcile stopped by shutdown"
                );
            }
            Stopped::Failed(reason) => {
                metrics::counter!("baton_reconcile_failures_total").increment(1);
                tracing::warn!(run = end.run.id, recovered = end.counts.stored, error = %reason,
                    "reconcile failed; the next run covers its window");
            }
        }
        if let Err(e) = runs::prune_reconcile_runs(pool, KEEP_RUNS_DAYS).await {
            tracing::debug!(error = %e, "could not prune old reconcile runs");
        }
        // Runs start an interval apart, however long one takes.
        Ok(self.config.interval.saturating_sub(started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_window_is_the_last_interval_plus_overlap_or_back_to_the_last_complete_run() {
        let config = ReconcileConfig::every(Duration::from_secs(300));
        let now = at("2026-11-23T12:00:00Z");
        // First run, or the last complete run is recent: interval + overlap before `settle`.
        assert_eq!(
            window(&config, now, None),
            (at("2026-11-23T11:53:45Z"), at("2026-11-23T11:59:45Z"))
        );
        assert_eq!(
            window(&config, now, Some(at("2026-11-23T11:58:00Z"))),
            (at("2026-11-23T11:53:45Z"), at("2026-11-23T11:59:45Z"))
        );
        // After an outage: from the end of the last complete run, less the overlap…
        assert_eq!(
            window(&config, now, Some(at("2026-11-23T09:00:00Z"))),
            (at("2026-11-23T08:59:00Z"), at("2026-11-23T11:59:45Z"))
        );
        // …but never more than max_catch_up back.
        assert_eq!(
            window(&config, now, Some(at("2026-11-01T00:00:00Z"))),
            (at("2026-11-22T12:00:00Z"), at("2026-11-23T11:59:45Z"))
        );
    }
}
