//! Group commit for the inbox: concurrent deliveries are gathered into one multi-row insert
//! while the previous one commits, so many callbacks share one WAL flush. Each delivery still
//! gets its answer only after its rows are committed.

use super::inbox::{self, InsertReport, NewInboxEvent};
use super::StoreError;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply = oneshot::Sender<Result<InsertReport, StoreError>>;

struct Job {
    rows: Vec<NewInboxEvent>,
    reply: Reply,
}

/// Hands deliveries to a few writer tasks; cheap to clone.
#[derive(Clone)]
pub struct InboxWriter {
    jobs: mpsc::Sender<Job>,
}

/// How the writer batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Concurrent insert statements (each a transaction).
    pub writers: usize,
    /// Most rows in one statement.
    pub max_rows: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            writers: 1,
            max_rows: 512,
        }
    }
}

impl InboxWriter {
    /// Starts the writer tasks. They stop when every `InboxWriter` clone is dropped.
    pub fn start(pool: PgPool, config: WriterConfig) -> InboxWriter {
        let (tx, rx) = mpsc::channel::<Job>(config.max_rows * config.writers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..config.writers.max(1) {
            tokio::spawn(write_loop(pool.clone(), rx.clone(), config.max_rows.max(1)));
        }
        InboxWriter { jobs: tx }
    }

    /// Stores the rows durably (or reports why not). Returns once they are committed.
    pub async fn insert(&self, rows: Vec<NewInboxEvent>) -> Result<InsertReport, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { rows, reply })
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?
    }
}

async fn write_loop(pool: PgPool, jobs: Arc<Mutex<mpsc::Receiver<Job>>>, max_rows: usize) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = jobs.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut rows = first.rows.len();
            batch.push(first);
            while rows < max_rows {
                match rx.try_recv() {
                    Ok(job) => {
                        rows += job.rows.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        write_batch(&pool, batch).await;
    }
}

async fn write_batch(pool: &PgPool, batch: Vec<Job>) {
    if batch.len() == 1 {
        let job = batch.into_iter().next().expect("one job");
        let result = inbox::insert(pool, &job.rows).await;
        let _ = job.reply.send(result);
        return;
    }
    // Move the rows into one statement, keeping each delivery's keys to answer it.
    let mut rows: Vec<NewInboxEvent> = Vec::new();
    let mut deliveries: Vec<(Vec<String>, Reply)> = Vec::with_capacity(batch.len());
    for job in batch {
        deliveries.push((
            job.rows.iter().map(|r| r.event_key.clone()).collect(),
            job.reply,
        ));
        rows.extend(job.rows);
    }
    match inbox::insert_returning_keys(pool, &rows).await {
        Ok(inserted) => {
            let mut inserted: HashSet<String> = inserted.into_iter().collect();
            for (keys, reply) in deliveries {
                // A key stored by this statement counts for the first delivery that carried it.
                let stored = keys.iter().filter(|k| inserted.remove(*k)).count();
                let _ = reply.send(Ok(InsertReport {
                    stored,
                    duplicates: keys.len() - stored,
                }));
            }
        }
        Err(e) if e.is_transient() => {
            let message = e.to_string();
            for (_, reply) in deliveries {
                let _ = reply.send(Err(StoreError::Unavailable(sqlx::Error::Protocol(
                    message.clone(),
                ))));
            }
        }
        Err(_) => {
            // One delivery's rows must not fail the others: store each on its own.
            let mut rows = rows.into_iter();
            for (keys, reply) in deliveries {
                let own: Vec<NewInboxEvent> = rows.by_ref().take(keys.len()).collect();
                let _ = reply.send(inbox::insert(pool, &own).await);
            }
        }
    }
}
