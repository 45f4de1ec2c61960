//! `baton-load bench-history`: loads a year of hops (1,000,000 by default) into a fresh database,
//! runs every query shape of the transfer history many times through the same store functions
//! the API and `baton history` use, reports p50/p99 per shape, and checks with EXPLAIN that no
//! shape scans `hops` sequentially. The database is created for the run and dropped after it.

use anyhow::{bail, Context};
use baton::app::table::{Align, Table};
use baton::domain::history::{
    Cursor, GroupBy, OutcomeFilter, StatsQuery, TransferFilter, TransferQuery, DEFAULT_LIMIT,
};
use baton::domain::sid::Sid;
use baton::domain::transfer::TargetType;
use baton::store::history::{self, HistoryQuery};
use baton::store::{self, PoolSettings};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::time::Instant;

/// The year of history the benchmarks load, and the database they load it into.
#[derive(Debug, Clone, Args)]
pub struct YearArgs {
    /// The Postgres server to create the benchmark database on (any database of it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub server_url: String,
    /// Hops to load, spread over the year before now.
    #[arg(long, default_value_t = 1_000_000)]
    pub hops: i64,
    #[arg(long, default_value_t = 300)]
    pub workers: i64,
    #[arg(long, default_value_t = 40)]
    pub queues: i64,
    /// Keep the database afterwards (its name is printed).
    #[arg(long)]
    pub keep: bool,
}

impl YearArgs {
    /// Chains the hops belong to (`chain_id` = `WT` + the chain's number in hex).
    pub fn chains(&self) -> i64 {
        (self.hops - 1) * 5 / 8 + 1
    }
}

#[derive(Debug, Clone, Args)]
pub struct HistoryBenchArgs {
    #[command(flatten)]
    pub year: YearArgs,
    /// Runs of each query shape.
    #[arg(long, default_value_t = 100)]
    pub iterations: u32,
    /// Print each shape's whole plan, not only its scans.
    #[arg(long)]
    pub plans: bool,
}

pub(crate) fn sid(prefix: &str, n: i64) -> Sid {
    // Well-formed by construction: two letters and 32 hex digits.
    Sid::parse(&format!("{prefix}{n:032x}")).unwrap_or_else(|_| unreachable!())
}

const LOAD_WORKERS: &str = "INSERT INTO workers (worker_sid, friendly_name)
     SELECT 'WK' || lpad(to_hex(w), 32, '0'), 'agent ' || w FROM generate_series(0, $1 - 1) w";

/// A year of hops, in the order the processor would have written them (by time). Chains of one
/// or two hops (1.6 on average), a few busy queues and workers and many quiet ones, four in five
/// completed, the last hundred still in flight.
/// `$1` hops, `$2` workers, `$3` queues, `$4` the year's start (ms), `$5` a year (ms). Hop `n`
/// creates task `WTb…n` and its reservation `WR…(2n+1)`; it transfers from the chain's root
/// (the chain id, `WT0…`, with reservation `WR…2n`) or from the task the hop before created.
const LOAD_HOPS: &str =
    "INSERT INTO hops (chain_id, seq, from_task_sid, to_task_sid, from_reservation_sid,
         to_reservation_sid, from_worker_sid, to_worker_sid, from_queue_sid, to_queue_sid,
         target_type, target_sid, target_name, mode, vocabulary, initiated_ms, offered_ms,
         accepted_ms, finished_ms, ended_ms, outcome)
     SELECT chain_id, seq,
            CASE seq WHEN 1 THEN chain_id ELSE 'WTb' || lpad(to_hex(n - 1), 31, '0') END,
            'WTb' || lpad(to_hex(n), 31, '0'),
            'WR' || lpad(to_hex(CASE seq WHEN 1 THEN 2 * n ELSE 2 * n - 1 END), 32, '0'),
            'WR' || lpad(to_hex(2 * n + 1), 32, '0'),
            'WK' || lpad(to_hex(from_w), 32, '0'),
            CASE WHEN accepted IS NOT NULL THEN 'WK' || lpad(to_hex(to_w), 32, '0') END,
            'WQ' || lpad(to_hex(from_q), 32, '0'), 'WQ' || lpad(to_hex(to_q), 32, '0'),
            target_type,
            CASE target_type WHEN 'worker' THEN 'WK' || lpad(to_hex(to_w), 32, '0')
                             WHEN 'queue' THEN 'WQ' || lpad(to_hex(to_q), 32, '0')
                             ELSE 'WW' || lpad(to_hex(to_q % 3), 32, '0') END,
            CASE WHEN target_type = 'queue' THEN 'queue ' || to_q END,
            'cold', 'baton', at, at + 1500, accepted, coalesce(accepted, at + 60000),
            coalesce(accepted, at) + 60000 + (r3 * 1800000)::bigint, outcome
     FROM (
         SELECT n, at, from_w, to_w, from_q, to_q, r3,
                'WT' || lpad(to_hex((n * 5) / 8), 32, '0') AS chain_id,
                (n - ((((n * 5) / 8) * 8 + 4) / 5) + 1)::int AS seq,
                CASE WHEN r1 < 0.55 THEN 'worker' WHEN r1 < 0.95 THEN 'queue' ELSE 'workflow' END
                    AS target_type,
                CASE WHEN n >= $1 - 100 THEN NULL
                     WHEN r2 < 0.80 THEN 'completed' WHEN r2 < 0.90 THEN 'failed'
                     WHEN r2 < 0.97 THEN 'canceled' ELSE 'returned' END AS outcome,
                CASE WHEN n < $1 - 100 AND r2 < 0.80
                     THEN at + 2000 + (r3 * r3 * 118000)::bigint END AS accepted
         FROM (
             SELECT n,
                    $4::bigint + n * ($5::bigint / $1) + (random() * 30000)::bigint AS at,
                    floor($2 * random() ^ 2)::int AS from_w, floor($2 * random() ^ 2)::int AS to_w,
                    floor($3 * random() ^ 2)::int AS from_q, floor($3 * random() ^ 2)::int AS to_q,
                    random() AS r1, random() AS r2, random() AS r3
             FROM generate_series(0, $1 - 1) n
         ) raw
     ) hop";

const LOAD_LINKS: &[&str] = &[
    // Every task of a chain named its customer conversation (`conv:CH…`).
    "INSERT INTO chain_tasks (task_sid, chain_id, position)
     SELECT task_sid, chain_id, position FROM (
         SELECT chain_id AS task_sid, chain_id, 0 AS position FROM hops WHERE seq = 1
         UNION ALL SELECT to_task_sid, chain_id, seq FROM hops) t",
    "INSERT INTO task_links (task_sid, link)
     SELECT task_sid, 'conv:CH' || substr(chain_id, 3) FROM chain_tasks",
    "INSERT INTO chains (chain_id, root_task_sid, task_count, hop_count, started_ms)
     SELECT chain_id, chain_id, count(*) + 1, count(*), min(initiated_ms) FROM hops GROUP BY chain_id",
];

/// A shape's query for run `i` (parameters vary between runs).
type MakeQuery = Box<dyn Fn(u32, &mut rand::rngs::ThreadRng) -> Query>;

struct Shape {
    name: &'static str,
    /// Whether EXPLAIN must show no sequential scan of `hops`.
    indexed: bool,
    /// A query for iteration `i` (parameters vary between runs).
    make: MakeQuery,
}

enum Query {
    List(TransferQuery),
    Stats(StatsQuery),
}

fn list(filter: TransferFilter, cursor: Option<Cursor>) -> Query {
    Query::List(TransferQuery {
        filter,
        cursor,
        limit: DEFAULT_LIMIT,
    })
}

/// A first page of the list with a filter made for each run; every such query must use an index.
fn listing(
    name: &'static str,
    filter: impl Fn(&mut rand::rngs::ThreadRng) -> TransferFilter + 'static,
) -> Shape {
    Shape {
        name,
        indexed: true,
        make: Box::new(move |_, rng| list(filter(rng), None)),
    }
}

fn shapes(args: &YearArgs, now: DateTime<Utc>, middle: Cursor) -> Vec<Shape> {
    let (workers, queues, chains) = (args.workers, args.queues, args.chains());
    let year_start = now - TimeDelta::days(365);
    let mut shapes: Vec<Shape> = vec![
        listing("list, no filter", |_| TransferFilter::default()),
        listing("list, worker_sid", move |rng| TransferFilter {
            worker_sid: Some(sid("WK", rng.gen_range(0..workers))),
            ..TransferFilter::default()
        }),
        listing("list, queue_sid", move |rng| TransferFilter {
            queue_sid: Some(sid("WQ", rng.gen_range(0..queues))),
            ..TransferFilter::default()
        }),
        listing("list, target_type=workflow", |_| TransferFilter {
            target_type: Some(TargetType::Workflow),
            ..TransferFilter::default()
        }),
        listing("list, outcome=returned", |_| TransferFilter {
            outcome: Some(OutcomeFilter::Returned),
            ..TransferFilter::default()
        }),
        listing("list, outcome=in_flight", |_| TransferFilter {
            outcome: Some(OutcomeFilter::InFlight),
            ..TransferFilter::default()
        }),
        listing("list, conversation_sid", move |rng| TransferFilter {
            conversation_sid: Some(sid("CH", rng.gen_range(0..chains))),
            ..TransferFilter::default()
        }),
        listing("list, since/until (one day)", move |rng| {
            let since = year_start + TimeDelta::days(rng.gen_range(0..364));
            TransferFilter {
                since: Some(since),
                until: Some(since + TimeDelta::days(1)),
                ..TransferFilter::default()
            }
        }),
        listing("list, queue_sid + outcome=failed + 30 days", move |rng| {
            TransferFilter {
                since: Some(now - TimeDelta::days(30)),
                queue_sid: Some(sid("WQ", rng.gen_range(0..queues))),
                outcome: Some(OutcomeFilter::Failed),
                ..TransferFilter::default()
            }
        }),
    ];
    let deep = middle.clone();
    shapes.push(Shape {
        name: "list, deep cursor (6 months back)",
        indexed: true,
        make: Box::new(move |_, _| list(TransferFilter::default(), Some(deep.clone()))),
    });
    shapes.push(Shape {
        name: "list, worker_sid, deep cursor",
        indexed: true,
        make: Box::new(move |_, rng| {
            list(
                TransferFilter {
                    worker_sid: Some(sid("WK", rng.gen_range(0..workers))),
                    ..TransferFilter::default()
                },
                Some(middle.clone()),
            )
        }),
    });
    for group_by in GroupBy::ALL {
        shapes.push(Shape {
            name: match group_by {
                GroupBy::Queue => "stats by queue, 30 days",
                GroupBy::Worker => "stats by worker, 30 days",
                GroupBy::TargetType => "stats by target_type, 30 days",
                GroupBy::FromQueue => "stats by from_queue, 30 days",
                GroupBy::FromWorker => "stats by from_worker, 30 days",
            },
            indexed: true,
            make: Box::new(move |_, _| {
                Query::Stats(StatsQuery::new(TransferFilter::default(), group_by, now))
            }),
        });
    }
    shapes.push(Shape {
        name: "stats by queue, 7 days, one worker",
        indexed: true,
        make: Box::new(move |_, rng| {
            Query::Stats(StatsQuery::new(
                TransferFilter {
                    since: Some(now - TimeDelta::days(7)),
                    worker_sid: Some(sid("WK", rng.gen_range(0..workers))),
                    ..TransferFilter::default()
                },
                GroupBy::Queue,
                now,
            ))
        }),
    });
    // The whole year is every row: a sequential scan is the right plan, so it is reported, not
    // checked.
    shapes.push(Shape {
        name: "stats by queue, whole year",
        indexed: false,
        make: Box::new(move |_, _| {
            Query::Stats(StatsQuery::new(
                TransferFilter {
                    since: Some(year_start - TimeDelta::days(1)),
                    ..TransferFilter::default()
                },
                GroupBy::Queue,
                now,
            ))
        }),
    });
    shapes
}

async fn run_query(pool: &PgPool, query: &Query) -> anyhow::Result<usize> {
    Ok(match query {
        Query::List(q) => history::list_transfers(pool, q).await?.transfers.len(),
        Query::Stats(q) => history::transfer_stats(pool, q).await?.groups.len(),
    })
}

async fn explain(pool: &PgPool, query: &Query) -> anyhow::Result<Vec<String>> {
    Ok(match query {
        Query::List(q) => history::explain(pool, HistoryQuery::List(q)).await?,
        Query::Stats(q) => history::explain(pool, HistoryQuery::Stats(q)).await?,
    })
}

/// The indexes of `hops` a plan reads: `Index Scan Backward using hops_to_worker on hops`,
/// `Bitmap Index Scan on hops_at` → `hops_to_worker`, `hops_at`.
fn indexes_used(plan: &[String]) -> Vec<String> {
    let mut out: Vec<String> = plan
        .iter()
        .filter_map(|line| {
            let index = match line.split_once(" using ") {
                Some((_, rest)) if rest.contains(" on hops") => rest.split_whitespace().next(),
                _ => line
                    .split_once("Bitmap Index Scan on ")
                    .and_then(|(_, rest)| rest.split_whitespace().next()),
            }?;
            index.starts_with("hops").then(|| index.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(crate) fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

pub async fn run(args: HistoryBenchArgs) -> anyhow::Result<()> {
    on_fresh_database(&args.year, "baton_history_bench", |pool| bench(&args, pool)).await
}

/// Creates a database of its own on the server (`{prefix}_…`), migrates it, runs `body` on a
/// pool of two connections to it, and drops it afterwards (unless `--keep`).
pub async fn on_fresh_database<F, Fut>(args: &YearArgs, prefix: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if args.hops < 1000 || args.workers < 2 || args.queues < 2 {
        bail!("--hops must be at least 1000, --workers and --queues at least 2");
    }
    let name = format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut admin = PgConnection::connect(&args.server_url)
        .await
        .context("could not connect to the Postgres server")?;
    admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .context("could not create the benchmark database")?;
    eprintln!("database {name}");
    let mut url = url::Url::parse(&args.server_url).context("the server URL is not a URL")?;
    url.set_path(&format!("/{name}"));
    let result = async {
        let pool = store::connect_lazy(
            url.as_str(),
            &PoolSettings {
                max_connections: 2,
                ..PoolSettings::default()
            },
        )?;
        store::migrate(&pool).await.context("migrations failed")?;
        let result = body(pool.clone()).await;
        pool.close().await;
        result
    }
    .await;
    if args.keep {
        eprintln!("kept database {name}");
    } else {
        admin
            .execute(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str())
            .await
            .context("could not drop the benchmark database")?;
    }
    result
}

/// Loads the year: the workers, the hops (in time order, the year before `now`) and their
/// chains (`chains`, `chain_tasks`, and the `task_links` naming each chain's conversation).
pub async fn load_year(pool: &PgPool, args: &YearArgs, now: DateTime<Utc>) -> anyhow::Result<()> {
    let year_ms = TimeDelta::days(365).num_milliseconds();
    sqlx::query(LOAD_WORKERS)
        .bind(args.workers)
        .execute(pool)
        .await
        .context("loading the workers failed")?;
    sqlx::query(LOAD_HOPS)
        .bind(args.hops)
        .bind(args.workers)
        .bind(args.queues)
        .bind(now.timestamp_millis() - year_ms)
        .bind(year_ms)
        .execute(pool)
        .await
        .context("loading the hops failed")?;
    for statement in LOAD_LINKS {
        sqlx::query(statement)
            .execute(pool)
            .await
            .context("loading the chains failed")?;
    }
    Ok(())
}

/// What autovacuum would have done on year-old tables: statistics and the visibility map.
pub async fn vacuum_analyze(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql("VACUUM ANALYZE")
        .execute(pool)
        .await
        .context("VACUUM ANALYZE failed")?;
    Ok(())
}

async fn bench(args: &HistoryBenchArgs, pool: PgPool) -> anyhow::Result<()> {
    let now = Utc::now();
    let started = Instant::now();
    load_year(&pool, &args.year, now).await?;
    vacuum_analyze(&pool).await?;
    let (count, size): (i64, String) =
        sqlx::query_as("SELECT count(*), pg_size_pretty(pg_total_relation_size('hops')) FROM hops")
            .fetch_one(&pool)
            .await?;
    println!(
        "loaded {count} hops ({} workers, {} queues, table and indexes {size}) in {:.0} s",
        args.year.workers,
        args.year.queues,
        started.elapsed().as_secs_f64()
    );
    let (at_ms, chain_id, seq): (i64, String, i32) = sqlx::query_as(
        "SELECT at_ms, chain_id, seq FROM hops ORDER BY at_ms DESC, chain_id DESC, seq DESC
         OFFSET $1 LIMIT 1",
    )
    .bind(args.year.hops / 2)
    .fetch_one(&pool)
    .await?;
    let middle = Cursor {
        at_ms,
        chain_id,
        seq,
    };
    let mut rng = rand::thread_rng();
    let mut table = Table::new(&[
        ("QUERY", Align::Left),
        ("ROWS", Align::Right),
        ("P50 MS", Align::Right),
        ("P99 MS", Align::Right),
        ("MAX MS", Align::Right),
        ("INDEXES", Align::Left),
    ]);
    let mut failures = Vec::new();
    for shape in shapes(&args.year, now, middle) {
        let plan = explain(&pool, &(shape.make)(0, &mut rng)).await?;
        let seq_scan = plan.iter().any(|l| l.contains("Seq Scan on hops"));
        if args.plans {
            println!("\n{}:\n{}", shape.name, plan.join("\n"));
        }
        if shape.indexed && seq_scan {
            failures.push(format!("{}:\n{}", shape.name, plan.join("\n")));
        }
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut rows = 0;
        // The whole-year stats read every row: a tenth of the runs.
        let runs = if shape.indexed {
            args.iterations
        } else {
            (args.iterations / 10).max(1)
        };
        for i in 0..runs {
            let query = (shape.make)(i, &mut rng);
            let start = Instant::now();
            rows = run_query(&pool, &query).await?;
            histogram.record(start.elapsed().as_micros().max(1) as u64)?;
        }
        let mut indexes = indexes_used(&plan).join(", ");
        if seq_scan {
            indexes = format!("Seq Scan on hops {indexes}").trim_end().to_owned();
        }
        table.row(vec![
            shape.name.to_owned(),
            rows.to_string(),
            ms(histogram.value_at_quantile(0.5)),
            ms(histogram.value_at_quantile(0.99)),
            ms(histogram.max()),
            indexes,
        ]);
    }
    println!(
        "\n{} runs of each query (ROWS: of the last run; list pages of {DEFAULT_LIMIT})\n",
        args.iterations
    );
    print!("{}", table.render());
    if !failures.is_empty() {
        bail!(
            "these queries scanned hops sequentially:\n{}",
            failures.join("\n\n")
        );
    }
    println!("\nno query but the whole-year stats scans hops sequentially");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::indexes_used;

    #[test]
    fn the_indexes_of_a_plan_are_read_from_its_scans() {
        let plan: Vec<String> = [
            "Limit  (cost=1.1..2.2 rows=51 width=8)",
            "  ->  Index Scan Backward using hops_to_worker on hops  (cost=0.42..8.44)",
            "  ->  Index Only Scan Backward using hops_from_worker on hops hops_1  (cost=0.42..8.44)",
            "  ->  Index Scan using workers_pkey on workers fw  (cost=0.27..0.29)",
            "        ->  Bitmap Index Scan on hops_at  (cost=0.00..4.2 rows=80 width=0)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            indexes_used(&plan),
            vec!["hops_at", "hops_from_worker", "hops_to_worker"]
        );
    }
}
