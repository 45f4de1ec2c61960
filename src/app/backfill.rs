//! Backfill from TaskRouter's Events API: pages through `GET /v1/Workspaces/{WS}/Events` over a
//! window and feeds every event through the inbox exactly as a callback would be (same parser
//! family, same identity: an event whose callback arrived is a duplicate, stored once); the
//! processor rebuilds facts and chains from there. Each page and the run's checkpoint commit
//! together, so a stopped run continues at the next page. Used by `baton backfill events` and
//! by the server's reconciler.

use crate::domain::outbound::TwilioRequest;
use crate::domain::retry::RetryPolicy;
use crate::ingest::inbox_row;
use crate::ingest::parse::{self, ParsedEvent};
use crate::store::backfill::{self as runs, Page, Run, RunStatus};
use crate::store::inbox::NewInboxEvent;
use crate::store::StoreError;
use crate::twilio::events;
use crate::twilio::tasks::{Cancelled, Retrying};
use crate::twilio::TwilioClient;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How a backfill talks to Twilio.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// 429 (`Retry-After` honoured), 5xx and transport failures are retried by this policy;
    /// other 4xx, or too many attempts, fail the run (resumable).
    pub policy: RetryPolicy,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        BackfillConfig {
            policy: RetryPolicy {
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(60),
                max_attempts: 10,
            },
        }
    }
}

/// Per-run choices.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop (resumable) after this many pages in this call.
    pub max_pages: Option<u32>,
    /// Record the tasks of stored events, for the run's "chains changed".
    pub track_tasks: bool,
}

/// Why a run returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Every page is stored.
    Complete,
    /// Cancelled (Ctrl-C, shutdown): the checkpoint is after the last page stored.
    Interrupted,
    /// `max_pages` reached: the checkpoint is after the last page stored.
    PageLimit,
    /// Twilio kept failing or answered something unreadable; the run can be continued.
    Failed(String),
}

/// What this call did (a resumed run's totals are in [`Run`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pages: u32,
    pub fetched: u64,
    pub stored: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone)]
pub struct RunEnd {
    /// The run as stored at the end.
    pub run: Run,
    pub stopped: Stopped,
    pub counts: Counts,
}

enum Fetched {
    Body(String),
    Cancelled,
    Failed(String),
}

#[derive(Clone)]
pub struct Backfiller {
    pool: PgPool,
    client: TwilioClient,
    config: BackfillConfig,
    /// Wakes this process's processors when a page stored something.
    wake: Option<Arc<Notify>>,
}

impl Backfiller {
    pub fn new(pool: PgPool, client: TwilioClient, config: BackfillConfig) -> Backfiller {
        Backfiller {
            pool,
            client,
            config,
            wake: None,
        }
    }

    pub fn with_wake(mut self, wake: Arc<Notify>) -> Backfiller {
        self.wake = Some(wake);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Pages through the run's window from its checkpoint until the last page, `cancel`, a page
    /// limit or a failure; `on_page` sees the run after every page stored. A cancellation lets
    /// the page in flight finish and be stored. Only a database failure is an `Err` (the run
    /// then stays `running` and is continued later).
    pub async fn run(
        &self,
        mut run: Run,
        options: &RunOptions,
        cancel: &CancellationToken,
        on_page: &mut (dyn FnMut(&Run) + Send),
    ) -> Result<RunEnd, StoreError> {
        let mut counts = Counts::default();
        loop {
            let stop = if run.all_pages_stored() {
                Some((RunStatus::Complete, Stopped::Complete))
            } else if cancel.is_cancelled() {
                Some((RunStatus::Interrupted, Stopped::Interrupted))
            } else if options.max_pages.is_some_and(|max| counts.pages >= max) {
                Some((RunStatus::Interrupted, Stopped::PageLimit))
            } else {
                None
            };
            if let Some((status, stopped)) = stop {
                let run = runs::set_status(&self.pool, run.id, status, None).await?;
                return Ok(RunEnd {
                    run,
                    stopped,
                    counts,
                });
            }
            let request = match &run.next_page {
                Some(next) => events::next_page(next),
                None => events::first_page(
                    &run.workspace_sid,
                    run.since,
                    run.until,
                    u32::try_from(run.page_size).unwrap_or(events::MAX_PAGE_SIZE),
                ),
            };
            let page = match self.fetch(&request, cancel).await {
                Fetched::Body(body) => events::parse_page(&body, &run.workspace_sid)
                    .map_err(|e| e.to_string())
                    .and_then(|page| match (&page.next, &run.next_page) {
                        (Some(next), Some(current)) if next == current => {
                            Err("Twilio's next page is the page just fetched".to_owned())
                        }
                        _ => Ok(page),
                    }),
                Fetched::Cancelled => {
                    let run =
                        runs::set_status(&self.pool, run.id, RunStatus::Interrupted, None).await?;
                    return Ok(RunEnd {
                        run,
                        stopped: Stopped::Interrupted,
                        counts,
                    });
                }
                Fetched::Failed(reason) => Err(reason),
            };
            let page = match page {
                Ok(page) => page,
                Err(reason) => {
                    tracing::warn!(run = run.id, error = %reason, "backfill run failed; it can be continued");
                    let run =
                        runs::set_status(&self.pool, run.id, RunStatus::Failed, Some(&reason))
                            .await?;
                    return Ok(RunEnd {
                        run,
                        stopped: Stopped::Failed(reason),
                        counts,
                    });
                }
            };
            let parsed: Vec<ParsedEvent> = page
                .events
                .into_iter()
                .map(parse::events_api_event)
                .collect();
            let rows: Vec<NewInboxEvent> = parsed.iter().map(inbox_row).collect();
            let flagged = parsed
                .iter()
                .filter(|p| p.interpret_error.is_some())
                .count();
            let saved = runs::save_page(
                &self.pool,
                run.id,
                &Page {
                    rows: &rows,
                    flagged,
                    next_page: page.next.as_deref(),
                    track_tasks: options.track_tasks,
                },
            )
            .await?;
            let source = crate::domain::event::Source::EventsApi.as_str();
            metrics::counter!("baton_inbox_events_total", "source" => source, "outcome" => "stored")
                .increment(saved.stored as u64);
            metrics::counter!("baton_inbox_events_total", "source" => source, "outcome" => "duplicate")
                .increment(saved.duplicates as u64);
            metrics::counter!("baton_inbox_flagged_total", "source" => source)
                .increment(flagged as u64);
            if saved.stored > 0 {
                if let Some(wake) = &self.wake {
                    wake.notify_one();
                }
            }
            counts.pages += 1;
            counts.fetched += rows.len() as u64;
            counts.stored += saved.stored as u64;
            counts.duplicates += saved.duplicates as u64;
            run = saved.run;
            tracing::debug!(
                run = run.id,
                page = run.pages,
                fetched = rows.len(),
                stored = saved.stored,
                "backfill page stored"
            );
            on_page(&run);
        }
    }

    /// GETs a page, retrying 429 (after `Retry-After`), 5xx and transport failures by the policy.
    /// A cancellation during a wait gives up the page.
    async fn fetch(&self, request: &TwilioRequest, cancel: &CancellationToken) -> Fetched {
        let twilio = Retrying {
            client: &self.client,
            policy: &self.config.policy,
            cancel,
            pace: None,
        };
        match twilio.send(request).await {
            Err(Cancelled) => Fetched::Cancelled,
            Ok(Ok(response)) if (200..300).contains(&response.status) => {
                Fetched::Body(response.body)
            }
            Ok(result) => Fetched::Failed(twilio.failure(&result)),
        }
    }
}
