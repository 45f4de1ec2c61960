//! Storage: sqlx queries and transactions over Postgres. The inbox, the facts tables, and (in
//! later layers) the outbox. Migrations are embedded from `migrations/`.

pub mod backfill;
pub mod chains;
pub mod conversations;
pub mod facts;
pub mod history;
pub mod inbox;
pub mod insights_backfill;
pub mod lookup;
pub mod outbox;
pub mod overview;
pub mod parks;
pub mod transfers;
pub mod writer;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// The embedded, forward-only migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Begins a transaction whose statements all look rows up by key (`= ANY($1)` over SID
/// arrays), telling the planner to use the keys' indexes. Tables that grew since their last
/// `ANALYZE` (a fresh deployment under load, autovacuum's naptime) otherwise get sequential
/// scans that compare every row with the whole array: measured 241 ms instead of 7 ms per
/// 500-event batch, the processor falling minutes behind.
pub async fn begin_keyed(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Why a store operation failed, in the terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or has no free connection: retry later (HTTP 503).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A transaction lost a deadlock or serialization race: retrying it is safe.
    #[error("transaction conflict: {0}")]
    Conflict(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data could not be decoded: {0}")]
    Decode(String),
}

/// Whether an error means the database cannot be reached right now (retry later).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        // WorkerCrashed: the connection's background task died with its socket.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57P01" | "57P02" | "57P03" | "53300")
        ),
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            return StoreError::Unavailable(e);
        }
        match &e {
            // deadlock_detected, serialization_failure
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
            {
                StoreError::Conflict(e)
            }
            _ => StoreError::Database(e),
        }
    }
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before baton answers 503.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 20,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// A pool that connects lazily, so the server starts (and answers 503) while Postgres is down.
pub fn connect_lazy(database_url: &str, settings: &PoolSettings) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(database_url)?.application_name("baton");
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

/// Migrations whose comments were reworded after they were applied, their SQL unchanged: each
/// version and the SHA-384 of its earlier text. A database that applied the earlier text takes
/// the new checksum, instead of refusing to start over a comment.
const REWORDED: [(i64, &str); 7] = [
    (
        20261123000003,
        "0490928f3d367a07ae00b44d6307a19d30e43659ab2935e213606e85ff40b722341c743560534e40ff4bf4968540a0d5",
    ),
    (
        20261123000004,
        "a50893b2c3a479c99ab4c686c2623be4e30bd7489be1d8a32546e93f4d17b1c9899cd225295c5922ba9c56a76cfe129f",
    ),
    (
        20261201000100,
        "0be17f2acb4419537eeb25bdecd79aa4d9d36a0f237f6869b67287291c244ea141c4c969ee7645b95a81c8fb7de021bb",
    ),
    (
        20261201000200,
        "436d2f026d1f2be66e8206e8b8e6e0030a2b8ada651e31657c1ab1d844c24e4608f313178f95b203601326668afa69ea",
    ),
    (
        20261201000400,
        "ee09d48952078b5049812fc7b63dcb1becfac145ed5539844fa8fb31c3cccf91f93ea48d7e7410f8dcc055e1ec665a70",
    ),
    (
        20261201000500,
        "b7ab1cb7472d7f436729ee471915664c91da5d29bae83e9253ead6af9a37753cc54453b1608ed3e551066a479dd0942b",
    ),
    (
        20261201000600,
        "b7f078048ecfcd6966b1802cb94138f635c14dfec79c18f8bf114a28521498f83c9b9318137a361e960db92bd2978f20",
    ),
];

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    accept_reworded(pool).await?;
    MIGRATOR.run(pool).await
}

/// Records the current checksum of each [`REWORDED`] migration applied with its earlier text.
async fn accept_reworded(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(());
    }
    for (version, earlier) in REWORDED {
        let Some(migration) = MIGRATOR.iter().find(|m| m.version == version) else {
            continue;
        };
        let earlier = hex_bytes(earlier);
        sqlx::query(
            "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
        )
        .bind(migration.checksum.as_ref())
        .bind(version)
        .bind(earlier)
        .execute(pool)
        .await?;
    }
    Ok(())
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Whether the database answers and every embedded migration has been applied.
pub async fn is_ready(pool: &PgPool) -> Result<bool, StoreError> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .or_else(|e| match &e {
                // No migrations table yet: reachable, not migrated.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(None),
                _ => Err(e),
            })?;
    Ok(applied.is_some_and(|v| v >= latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reworded_migration_is_embedded_with_a_new_checksum() {
        for (version, earlier) in REWORDED {
            let migration = MIGRATOR
                .iter()
                .find(|m| m.version == version)
                .unwrap_or_else(|| panic!("{version} is not embedded"));
            let earlier = hex_bytes(earlier);
            assert_eq!(earlier.len(), 48, "{version}: a SHA-384");
            assert_ne!(earlier, migration.checksum.as_ref(), "{version}");
        }
    }

    #[test]
    fn outages_are_unavailable_and_bugs_are_not() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            assert!(is_unavailable(&e), "{e}");
            assert!(matches!(StoreError::from(e), StoreError::Unavailable(_)));
        }
        for e in [
            sqlx::Error::RowNotFound,
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::ColumnNotFound("x".into()),
        ] {
            assert!(!is_unavailable(&e), "{e}");
            assert!(matches!(StoreError::from(e), StoreError::Database(_)));
        }
    }
}
