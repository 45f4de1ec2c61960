//! `baton-load bench-console`: loads the year of `bench-history` (1,000,000 hops by default)
//! together with what the ops console reads about it — the chains' tasks and reservations, their
//! conversations and closes, parks, and the outbound calls with their attempts — then runs every
//! `/api/v1` call the console's pages make, many times with random keys, through the same store
//! functions the API uses, and reports p50/p99 per call. Each call is also run on a connection
//! of its own, whose table statistics tell which tables it read sequentially and which indexes it
//! used: no call may scan a table of more than 10,000 rows sequentially.

use crate::history_bench::{self, load_year, ms, on_fresh_database, sid, YearArgs};
use anyhow::{bail, Context};
use baton::app::table::{Align, Table};
use baton::domain::history::{TransferFilter, TransferQuery, DEFAULT_LIMIT};
use baton::domain::park::ParkState;
use baton::domain::sid::Sid;
use baton::store::outbox::CallState;
use baton::store::{chains, conversations, history, lookup, outbox, overview, parks};
use chrono::{TimeDelta, Utc};
use clap::Args;
use hdrhistogram::Histogram;
use rand::rngs::ThreadRng;
use rand::Rng;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct ConsoleBenchArgs {
    #[command(flatten)]
    pub year: YearArgs,
    /// Runs of each call.
    #[arg(long, default_value_t = 200)]
    pub iterations: u32,
}

/// The console's rows for the loaded year, each statement set-based. `$1` is now (ms). The
/// workspace is `WS0…1`; a chain `WT0…x` talks to its customer in conversation `CH0…x`, of
/// interaction `KD0…x` and interaction channel `UO0…x`.
const LOAD_CONSOLE: &[(&str, &str)] = &[
    (
        "tasks",
        // The chain's root, then the task each hop created. Messaging channels, mostly chat.
        "INSERT INTO tasks (task_sid, workspace_sid, assignment_status, task_queue_sid,
             workflow_sid, task_channel, priority, completed_reason, canceled_reason,
             last_event_type, first_event_ms, last_event_ms, event_count)
         SELECT task_sid, 'WS' || lpad('1', 32, '0'), status, queue, 'WW' || lpad('0', 32, '0'),
                (ARRAY['chat', 'chat', 'sms', 'whatsapp'])[1 + (hashtext(chain_id) & 2147483647) % 4], 0,
                CASE status WHEN 'completed' THEN 'transferred' END,
                CASE status WHEN 'canceled' THEN 'transfer ' || outcome END,
                'task.' || status, first_ms, last_ms, 6
         FROM (
             SELECT chain_id AS task_sid, chain_id, from_queue_sid AS queue,
                    initiated_ms - 240000 AS first_ms, finished_ms AS last_ms,
                    CASE WHEN outcome IS NULL THEN 'assigned' ELSE 'completed' END AS status,
                    outcome
             FROM hops WHERE seq = 1
             UNION ALL
             SELECT to_task_sid, chain_id, to_queue_sid, initiated_ms, ended_ms,
                    CASE WHEN outcome IS NULL THEN 'pending' WHEN outcome = 'completed'
                         THEN 'completed' ELSE 'canceled' END,
                    outcome
             FROM hops
         ) t",
    ),
    (
        "reservations",
        // The root's accepted offer, each hop's offer of its new task, and before the offer of
        // a second hop's task, an offer to another worker that timed out.
        "INSERT INTO reservations (reservation_sid, task_sid, worker_sid, task_queue_sid, status,
             first_event_ms, last_event_ms, accepted_ms, event_count)
         SELECT from_reservation_sid, chain_id, from_worker_sid, from_queue_sid, 'completed',
                initiated_ms - 230000, finished_ms, initiated_ms - 225000, 4
         FROM hops WHERE seq = 1
         UNION ALL
         SELECT to_reservation_sid, to_task_sid,
                COALESCE(to_worker_sid,
                         CASE target_type WHEN 'worker' THEN target_sid ELSE from_worker_sid END),
                to_queue_sid,
                CASE outcome WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'rejected'
                             WHEN 'canceled' THEN 'canceled' WHEN 'returned' THEN 'rescinded'
                             ELSE 'pending' END,
                offered_ms, ended_ms, accepted_ms, 4
         FROM hops
         UNION ALL
         SELECT 'WR' || lpad(to_hex(('x' || substr(to_reservation_sid, 19))::bit(64)::bigint - 1),
                             32, '0'),
                to_task_sid,
                'WK' || lpad(to_hex((hashtext(to_task_sid) & 2147483647)
                                    % (SELECT count(*) FROM workers)), 32, '0'),
                to_queue_sid, 'timeout', initiated_ms + 500, initiated_ms + 1400, NULL, 3
         FROM hops WHERE seq > 1",
    ),
    (
        "conversations",
        // One per chain; closed unless a hop is in flight or the last ended in the past hour.
        "INSERT INTO conversations (conversation_sid, interaction_sid, channel_sid, channel_type,
             state, state_ms, state_reason, first_seen_at, last_task_ended_at, updated_at,
             last_check_at, last_check_result)
         SELECT 'CH' || substr(chain_id, 3), 'KD' || substr(chain_id, 3),
                'UO' || substr(chain_id, 3),
                (ARRAY['chat', 'chat', 'sms', 'whatsapp'])[1 + (hashtext(chain_id) & 2147483647) % 4],
                CASE WHEN open THEN 'active' ELSE 'closed' END,
                CASE WHEN NOT open THEN ended_ms + 300000 END,
                CASE WHEN NOT open THEN 'closed by Twilio' END,
                to_timestamp((started_ms - 240000) / 1000.0), to_timestamp(ended_ms / 1000.0),
                to_timestamp(ended_ms / 1000.0),
                to_timestamp((ended_ms + 300000) / 1000.0),
                CASE WHEN NOT open THEN 'closing' END
         FROM (
             SELECT chain_id, min(initiated_ms) AS started_ms, max(ended_ms) AS ended_ms,
                    bool_or(outcome IS NULL) OR max(ended_ms) > $1 - 3600000 AS open
             FROM hops GROUP BY chain_id
         ) c",
    ),
    (
        "outbox",
        // What baton decided over the year, in the order it decided it: the transferring side's
        // task completed once the target accepted, an Insights stamp for every task a hop
        // created, a route-back for every returned hop, and a close for two in five closed
        // conversations. Almost all done; one in five hundred dead; the last ten minutes' still
        // pending, some of them being sent.
        "INSERT INTO outbox (idempotency_key, kind, request, conversation_sid, created_at, state,
             attempts, next_attempt_at, lease_owner, lease_expires_at, last_status, last_error,
             response, done_at, dead_at, updated_at)
         SELECT key, kind, request, conversation_sid, to_timestamp(at / 1000.0), state,
                CASE state WHEN 'dead' THEN 5 WHEN 'pending' THEN (r2 * 2)::int
                           ELSE 1 + (r2 < 0.05)::int END,
                to_timestamp(at / 1000.0) + interval '1 second',
                CASE WHEN state = 'pending' AND r2 < 0.3 THEN gen_random_uuid() END,
                CASE WHEN state = 'pending' AND r2 < 0.3 THEN now() + interval '30 seconds' END,
                CASE state WHEN 'done' THEN 200 WHEN 'dead' THEN status END,
                CASE WHEN state = 'dead' THEN 'HTTP ' || status || ': ' || error END,
                CASE state WHEN 'done' THEN jsonb_build_object('sid', substring(key from
                    '[A-Z]{2}[0-9a-f]{32}'), 'account_sid', 'AC' || lpad('1', 32, '0')) END,
                CASE state WHEN 'done' THEN to_timestamp((at + 300) / 1000.0) END,
                CASE state WHEN 'dead' THEN to_timestamp((at + 90000) / 1000.0) END,
                to_timestamp((at + 300) / 1000.0)
         FROM (
             SELECT key, kind, request, conversation_sid, at, r2,
                    CASE WHEN at >= $1 - 600000 THEN 'pending' WHEN r < 0.002 THEN 'dead'
                         ELSE 'done' END AS state,
                    CASE WHEN r < 0.0005 THEN 503 ELSE 400 END AS status,
                    CASE WHEN r < 0.0005 THEN 'Service Unavailable'
                         ELSE 'The requested resource is not in a state to do that (20001)'
                    END AS error
             FROM (
                 SELECT key, kind, request, conversation_sid, LEAST(at, $1) AS at,
                        random() AS r, random() AS r2
                 FROM (
                     SELECT 'complete:' || from_task_sid || ':' || to_task_sid AS key,
                            'complete_task' AS kind,
                            jsonb_build_object('product', 'task_router', 'method', 'POST',
                                'path', '/v1/Workspaces/WS' || lpad('1', 32, '0') || '/Tasks/'
                                        || from_task_sid,
                                'form', jsonb_build_array(
                                    jsonb_build_array('AssignmentStatus', 'completed'),
                                    jsonb_build_array('Reason', 'transferred to '
                                                                || to_task_sid))) AS request,
                            NULL::text AS conversation_sid, accepted_ms + 200 AS at
                     FROM hops WHERE accepted_ms IS NOT NULL
                     UNION ALL
                     SELECT 'stamp:' || to_task_sid || ':' || chain_id, 'stamp_insights',
                            jsonb_build_object('product', 'task_router', 'method', 'GET',
                                'path', '/v1/Workspaces/WS' || lpad('1', 32, '0') || '/Tasks/'
                                        || to_task_sid,
                                'form', '[]'::jsonb),
                            NULL, offered_ms + 100
                     FROM hops
                     UNION ALL
                     SELECT 'return:' || to_task_sid, 'create_task',
                            jsonb_build_object('product', 'task_router', 'method', 'POST',
                                'path', '/v1/Workspaces/WS' || lpad('1', 32, '0') || '/Tasks',
                                'form', jsonb_build_array(
                                    jsonb_build_array('TaskQueueSid', from_queue_sid),
                                    jsonb_build_array('Attributes', '{\"baton\":{}}'))),
                            NULL, finished_ms + 500
                     FROM hops WHERE outcome = 'returned'
                     UNION ALL
                     SELECT 'close:' || conversation_sid || ':1', 'close_interaction_channel',
                            jsonb_build_object('product', 'flex', 'method', 'POST',
                                'path', '/v1/Interactions/' || interaction_sid || '/Channels/'
                                        || channel_sid,
                                'form', jsonb_build_array(jsonb_build_array('Status', 'closed'))),
                            conversation_sid, state_ms
                     FROM conversations
                     WHERE state = 'closed' AND (hashtext(conversation_sid) & 2147483647) % 5 < 2
                 ) calls
             ) timed
         ) c
         ORDER BY at",
    ),
    (
        "conversation closes",
        "INSERT INTO conversation_closes (conversation_sid, reason, detail, task_sid, event_type,
             method, outbox_id, decided_at, result, result_at)
         SELECT c.conversation_sid, CASE WHEN r < 0.9 THEN 'orphan' ELSE 'sweep' END,
                'its last task ended', NULL, 'task.completed', 'interaction_channel', o.id,
                o.created_at,
                CASE WHEN r < 0.85 THEN 'closed' WHEN r < 0.95 THEN 'already_closed'
                     ELSE 'kept: an agent is still in it' END,
                o.created_at + interval '400 milliseconds'
         FROM (SELECT conversation_sid, random() AS r FROM conversations) c
         JOIN outbox o ON o.idempotency_key = 'close:' || c.conversation_sid || ':1'",
    ),
    (
        "outbox attempts",
        "INSERT INTO outbox_attempts (outbox_id, attempt, started_at, finished_at, http_status,
             twilio_code, error, decision)
         SELECT id, a, started, started + interval '180 milliseconds', status,
                CASE status WHEN 400 THEN 20001 END,
                CASE WHEN status <> 200 THEN COALESCE(last_error, 'HTTP 503: Service Unavailable')
                END,
                CASE WHEN status = 200 THEN 'done'
                     WHEN state = 'dead' AND a = attempts THEN 'dead: ' || last_error
                     ELSE 'retry in 0.250s' END
         FROM (
             SELECT o.id, a, o.attempts, o.state, o.last_error,
                    o.created_at + (a - 1) * interval '20 seconds' AS started,
                    CASE WHEN o.state = 'done' AND a = o.attempts THEN 200
                         WHEN o.state = 'dead' THEN o.last_status ELSE 503 END AS status
             FROM outbox o, generate_series(1, o.attempts) a
         ) x",
    ),
    (
        "inbox",
        // The inbox's progress rows, as retention (45 days) keeps them: a conversation's 15-25
        // events make 1.5 events a hop over 45 days. The last twenty are still pending and one
        // in fifty thousand is dead; the events of those are stored (the overview's lag reads
        // the oldest pending one's).
        "WITH progress AS (
             INSERT INTO inbox_progress (event_id, attempts, processed_at, processed_by,
                 last_error, dead_at)
             SELECT n, 1,
                    CASE WHEN n <= total - 20 AND n % 50000 <> 7 THEN at END,
                    CASE WHEN n <= total - 20 AND n % 50000 <> 7 THEN gen_random_uuid() END,
                    CASE WHEN n % 50000 = 7 THEN 'no such task' END,
                    CASE WHEN n % 50000 = 7 THEN at END
             FROM (
                 SELECT n, total,
                        to_timestamp(($1 - (total - n) * (3888000000 / total)) / 1000.0) AS at
                 FROM (SELECT count(*) * 3 / 2 AS total FROM hops) t,
                      generate_series(1, t.total) n
             ) e
             RETURNING event_id, processed_at, dead_at)
         INSERT INTO inbox_events (id, event_key, source, received_at, event_type, task_sid,
             event, params)
         OVERRIDING SYSTEM VALUE
         SELECT event_id, 'bench:' || event_id, 'taskrouter_callback', now(), 'task.updated',
                'WT' || lpad(to_hex(event_id), 32, '0'), '{}', '{}'
         FROM progress WHERE processed_at IS NULL",
    ),
    (
        "parks",
        // One chain in twenty parked its customer before the transfer; one park in five a
        // voice call. The forty latest are parked still, ten of them past their time to live.
        "INSERT INTO parks (park_id, kind, state, task_sid, worker_sid, conversation_sid,
             interaction_sid, channel_sid, channel_type, vocabulary, reason, parked_at,
             parked_ms, expires_at, resumed_at, ended_by, resume_route, outcome,
             reservation_sid, idempotency_key, updated_at)
         SELECT 'PA' || substr(chain_id, 3), kind, state, chain_id, from_worker_sid,
                CASE kind WHEN 'messaging' THEN 'CH' || substr(chain_id, 3) END,
                CASE kind WHEN 'messaging' THEN 'KD' || substr(chain_id, 3) END,
                CASE kind WHEN 'messaging' THEN 'UO' || substr(chain_id, 3) END,
                CASE kind WHEN 'messaging' THEN 'chat' ELSE 'voice' END,
                CASE kind WHEN 'voice' THEN 'worker_parked' END,
                'waiting for the customer', parked_at, parked_ms,
                CASE WHEN recent <= 30 THEN now() + interval '1 day'
                     WHEN recent <= 40 THEN LEAST(parked_at + interval '1 hour',
                                                  now() - interval '1 minute')
                     ELSE parked_at + interval '1 day' END,
                CASE WHEN state <> 'parked' THEN parked_at + r * interval '4 hours' END,
                ended_by, CASE state WHEN 'resumed' THEN 'same_worker' WHEN 'expired' THEN 'queue'
                          END,
                ended_by,
                CASE kind WHEN 'voice' THEN from_reservation_sid END,
                CASE kind WHEN 'messaging' THEN 'park:' || chain_id END,
                parked_at + CASE WHEN state <> 'parked' THEN r * interval '4 hours'
                                 ELSE interval '0' END
         FROM (
             SELECT chain_id, kind, from_worker_sid, from_reservation_sid, parked_ms,
                    to_timestamp(parked_ms / 1000.0) AS parked_at, recent, r,
                    CASE WHEN recent <= 40 THEN 'parked' WHEN r < 0.6 THEN 'resumed'
                         WHEN r < 0.75 THEN 'expired' ELSE 'ended' END AS state,
                    CASE WHEN recent <= 40 THEN NULL
                         WHEN r < 0.6 THEN CASE kind WHEN 'voice' THEN 'pickup'
                                                     ELSE 'customer_message' END
                         WHEN r < 0.75 THEN 'ttl'
                         ELSE CASE kind WHEN 'voice' THEN 'hangup'
                                        ELSE 'conversation_closed' END END AS ended_by
             FROM (
                 SELECT chain_id, from_worker_sid, from_reservation_sid,
                        initiated_ms - 120000 AS parked_ms, random() AS r,
                        CASE WHEN (hashtext(chain_id) & 2147483647) % 5 = 0 THEN 'voice'
                             ELSE 'messaging' END AS kind,
                        row_number() OVER (ORDER BY initiated_ms DESC) AS recent
                 FROM hops WHERE seq = 1 AND (hashtext(chain_id || 'park') & 2147483647) % 20 = 0
             ) p
         ) q",
    ),
];

/// The tables the console reads, reported with their sizes.
const TABLES: &[&str] = &[
    "inbox_progress",
    "hops",
    "chains",
    "chain_tasks",
    "task_links",
    "tasks",
    "reservations",
    "workers",
    "conversations",
    "conversation_closes",
    "parks",
    "outbox",
    "outbox_attempts",
];

/// A table this big is never to be scanned sequentially by a console call.
const BIG_TABLE_ROWS: f32 = 10_000.0;

/// One `/api/v1` call of a console page, with its parameters for one run.
enum Call {
    Overview { window: TimeDelta },
    Transfers(Box<TransferQuery>),
    Chain(String),
    Conversation(String),
    Parks(Option<ParkState>),
    Outbox(Option<CallState>, Option<i64>),
    OutboxId(i64),
    Sid(Sid),
}

type MakeCall = Box<dyn Fn(&mut ThreadRng) -> Call>;

struct PageCall {
    name: &'static str,
    make: MakeCall,
}

fn call(name: &'static str, make: impl Fn(&mut ThreadRng) -> Call + 'static) -> PageCall {
    PageCall {
        name,
        make: Box::new(make),
    }
}

/// A task of a chain: a root (`WT0…`) or one a hop created (`WTb…`).
fn random_task(rng: &mut ThreadRng, hops: i64, chains: i64) -> String {
    if rng.gen_bool(0.4) {
        sid("WT", rng.gen_range(0..chains)).to_string()
    } else {
        format!("WTb{:031x}", rng.gen_range(0..hops))
    }
}

fn page_calls(args: &YearArgs, dead: Vec<i64>, last_id: i64) -> Vec<PageCall> {
    let (hops, chains, workers, queues) = (args.hops, args.chains(), args.workers, args.queues);
    let pick = move |rng: &mut ThreadRng| dead[rng.gen_range(0..dead.len())];
    let pick_dead = pick.clone();
    let mut calls = vec![];
    for (name, window) in [
        ("overview?window=1h", TimeDelta::hours(1)),
        ("overview?window=24h", TimeDelta::hours(24)),
        ("overview?window=7d", TimeDelta::days(7)),
    ] {
        calls.push(call(name, move |_| Call::Overview { window }));
    }
    calls.extend([
        call("transfers (first page)", |_| {
            Call::Transfers(Box::new(TransferQuery {
                filter: TransferFilter::default(),
                cursor: None,
                limit: DEFAULT_LIMIT,
            }))
        }),
        call("tasks/{WT}/chain", move |rng| {
            Call::Chain(random_task(rng, hops, chains))
        }),
        call("conversations/{CH}", move |rng| {
            Call::Conversation(sid("CH", rng.gen_range(0..chains)).to_string())
        }),
        call("parks?state=parked", |_| {
            Call::Parks(Some(ParkState::Parked))
        }),
        call("parks?state=resumed", |_| {
            Call::Parks(Some(ParkState::Resumed))
        }),
        call("parks?state=expired", |_| {
            Call::Parks(Some(ParkState::Expired))
        }),
        call("parks?state=ended", |_| Call::Parks(Some(ParkState::Ended))),
        call("parks (all)", |_| Call::Parks(None)),
        call("outbox (all)", |_| Call::Outbox(None, None)),
        call("outbox (all, random cursor)", move |rng| {
            Call::Outbox(None, Some(rng.gen_range(1..=last_id)))
        }),
        call("outbox?state=pending", |_| {
            Call::Outbox(Some(CallState::Pending), None)
        }),
        call("outbox?state=in_flight", |_| {
            Call::Outbox(Some(CallState::InFlight), None)
        }),
        call("outbox?state=done", |_| {
            Call::Outbox(Some(CallState::Done), None)
        }),
        call("outbox?state=dead", |_| {
            Call::Outbox(Some(CallState::Dead), None)
        }),
        call("outbox?state=dead (random cursor)", move |rng| {
            Call::Outbox(Some(CallState::Dead), Some(pick(rng)))
        }),
        call("outbox/{id} (a dead call)", move |rng| {
            Call::OutboxId(pick_dead(rng))
        }),
        call("outbox/{id} (any call)", move |rng| {
            Call::OutboxId(rng.gen_range(1..=last_id))
        }),
        call("sids/{WT…}", move |rng| {
            Call::Sid(parse(&random_task(rng, hops, chains)))
        }),
        call("sids/{WR…}", move |rng| {
            Call::Sid(sid("WR", rng.gen_range(0..2 * hops)))
        }),
        call("sids/{WK…}", move |rng| {
            Call::Sid(sid("WK", rng.gen_range(0..workers)))
        }),
        call("sids/{WQ…}", move |rng| {
            Call::Sid(sid("WQ", rng.gen_range(0..queues)))
        }),
        call("sids/{CH…}", move |rng| {
            Call::Sid(sid("CH", rng.gen_range(0..chains)))
        }),
        call("sids/{KD…}", move |rng| {
            Call::Sid(sid("KD", rng.gen_range(0..chains)))
        }),
        call("sids/{UO…}", move |rng| {
            Call::Sid(sid("UO", rng.gen_range(0..chains)))
        }),
    ]);
    calls
}

fn parse(raw: &str) -> Sid {
    // Well-formed by construction (`random_task`).
    Sid::parse(raw).unwrap_or_else(|_| unreachable!())
}

/// Runs the store functions the call's route runs; returns how many items the page shows.
/// Every key is one the loaded year holds: finding nothing is an error.
async fn run_call(pool: &PgPool, call: &Call) -> anyhow::Result<usize> {
    Ok(match call {
        Call::Overview { window } => {
            let until = Utc::now();
            let o = overview::overview(pool, until - *window, until).await?;
            o.by_queue.len() + o.parked_now.len() + o.attention.len()
        }
        Call::Transfers(q) => history::list_transfers(pool, q).await?.transfers.len(),
        Call::Chain(task) => {
            let chain = chains::fetch_chain(pool, task)
                .await?
                .with_context(|| format!("no chain of {task}"))?;
            let reservations: usize = chain.tasks.iter().map(|t| t.reservations.len()).sum();
            chain.tasks.len() + reservations + chain.hops.len() + chain.calls.len()
        }
        Call::Conversation(ch) => {
            let view = conversations::fetch_view(pool, ch)
                .await?
                .with_context(|| format!("no conversation {ch}"))?;
            let parks = parks::of_conversation(pool, ch).await?;
            view.tasks.len() + parks.len()
        }
        Call::Parks(state) => parks::list(pool, *state, None, 100).await?.len(),
        Call::Outbox(state, before) => outbox::list(pool, *state, *before, 100).await?.len(),
        Call::OutboxId(id) => {
            outbox::get(pool, *id)
                .await?
                .with_context(|| format!("no outbox call {id}"))?;
            1 + outbox::attempts(pool, *id).await?.len()
        }
        Call::Sid(sid) => {
            lookup::find(pool, sid)
                .await?
                .with_context(|| format!("{sid} not found"))?;
            1
        }
    })
}

/// Sequential scans per table and scans per index, as the statistics have them.
#[derive(Default)]
struct Scans {
    tables: BTreeMap<String, i64>,
    indexes: BTreeMap<String, i64>,
}

/// The statistics, after this connection's own are flushed: `pool` has one connection, so the
/// flush requested here happens when it goes idle, before the next statement reads them.
async fn scans(pool: &PgPool) -> anyhow::Result<Scans> {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await?;
    let tables: Vec<(String, i64)> =
        sqlx::query_as("SELECT relname::text, seq_scan FROM pg_stat_user_tables")
            .fetch_all(pool)
            .await?;
    let indexes: Vec<(String, i64)> =
        sqlx::query_as("SELECT indexrelname::text, idx_scan FROM pg_stat_user_indexes")
            .fetch_all(pool)
            .await?;
    Ok(Scans {
        tables: tables.into_iter().collect(),
        indexes: indexes.into_iter().collect(),
    })
}

fn grown(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> Vec<String> {
    after
        .iter()
        .filter(|(name, n)| **n > before.get(*name).copied().unwrap_or(0))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Runs the call with fresh keys on a connection of its own, often enough for Postgres to
/// choose between its custom and generic plans, and returns the tables it scanned
/// sequentially and the indexes it used.
async fn check(
    pool: &PgPool,
    page: &PageCall,
    rng: &mut ThreadRng,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let before = scans(pool).await?;
    for _ in 0..8 {
        run_call(pool, &(page.make)(rng))
            .await
            .with_context(|| page.name)?;
    }
    let after = scans(pool).await?;
    Ok((
        grown(&before.tables, &after.tables),
        grown(&before.indexes, &after.indexes),
    ))
}

pub async fn run(args: ConsoleBenchArgs) -> anyhow::Result<()> {
    on_fresh_database(&args.year, "baton_console_bench", |pool| bench(&args, pool)).await
}

async fn bench(args: &ConsoleBenchArgs, pool: PgPool) -> anyhow::Result<()> {
    let now = Utc::now();
    let started = Instant::now();
    load_year(&pool, &args.year, now).await?;
    for (what, statement) in LOAD_CONSOLE {
        sqlx::query(statement)
            .bind(now.timestamp_millis())
            .execute(&pool)
            .await
            .with_context(|| format!("loading the {what} failed"))?;
    }
    history_bench::vacuum_analyze(&pool).await?;
    let loaded = started.elapsed();
    let mut sizes = Table::new(&[
        ("TABLE", Align::Left),
        ("ROWS", Align::Right),
        ("WITH INDEXES", Align::Right),
    ]);
    let mut big = Vec::new();
    for table in TABLES {
        let (rows, size, estimate): (i64, String, f32) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM {table}),
                    pg_size_pretty(pg_total_relation_size('{table}')),
                    (SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass)"
        ))
        .fetch_one(&pool)
        .await?;
        sizes.row(vec![table.to_string(), rows.to_string(), size]);
        if estimate >= BIG_TABLE_ROWS {
            big.push(table.to_string());
        }
    }
    println!(
        "loaded a year of {} hops in {:.0} s ({} workers, {} queues):\n\n{}",
        args.year.hops,
        loaded.as_secs_f64(),
        args.year.workers,
        args.year.queues,
        sizes.render()
    );
    let dead: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox WHERE state = 'dead'")
        .fetch_all(&pool)
        .await?;
    let last_id: i64 = sqlx::query_scalar("SELECT max(id) FROM outbox")
        .fetch_one(&pool)
        .await?;
    if dead.is_empty() {
        bail!("the year has no dead call: load more hops");
    }
    let calls = page_calls(&args.year, dead, last_id);
    let mut rng = rand::thread_rng();

    // The plans first, on a connection of their own, while nothing else runs (the statistics
    // of the loading connections have been flushed by now: they go out within a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let checker = PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    let mut checked = Vec::new();
    for page in &calls {
        checked.push(check(&checker, page, &mut rng).await?);
    }
    checker.close().await;

    let mut table = Table::new(&[
        ("CALL (/api/v1/…)", Align::Left),
        ("ITEMS", Align::Right),
        ("P50 MS", Align::Right),
        ("P99 MS", Align::Right),
        ("MAX MS", Align::Right),
        ("INDEXES", Align::Left),
    ]);
    let mut failures = Vec::new();
    let mut slow = Vec::new();
    for (page, (seq_scans, indexes)) in calls.iter().zip(checked) {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut items = 0;
        for _ in 0..args.iterations {
            let call = (page.make)(&mut rng);
            let start = Instant::now();
            items = run_call(&pool, &call).await.with_context(|| page.name)?;
            histogram.record(start.elapsed().as_micros().max(1) as u64)?;
        }
        let p99 = histogram.value_at_quantile(0.99);
        if p99 > 200_000 {
            slow.push(format!("{}: p99 {} ms", page.name, ms(p99)));
        }
        let bad: Vec<&String> = seq_scans.iter().filter(|t| big.contains(t)).collect();
        if !bad.is_empty() {
            failures.push(format!(
                "{} scanned {} sequentially",
                page.name,
                bad.iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut read: Vec<String> = seq_scans
            .iter()
            .map(|t| format!("Seq Scan on {t}"))
            .collect();
        read.extend(indexes);
        table.row(vec![
            page.name.to_owned(),
            items.to_string(),
            ms(histogram.value_at_quantile(0.5)),
            ms(p99),
            ms(histogram.max()),
            read.join(", "),
        ]);
    }
    println!(
        "\n{} runs of each call (ITEMS: what the page showed on the last run)\n",
        args.iterations
    );
    print!("{}", table.render());
    if !failures.is_empty() {
        bail!(
            "these calls scanned a table of more than {BIG_TABLE_ROWS} rows sequentially:\n{}",
            failures.join("\n")
        );
    }
    if !slow.is_empty() {
        bail!(
            "these calls took more than 200 ms at p99:\n{}",
            slow.join("\n")
        );
    }
    println!(
        "\nno call scans a table of more than {BIG_TABLE_ROWS} rows ({}) sequentially; \
         every p99 is under 200 ms",
        big.join(", ")
    );
    Ok(())
}
