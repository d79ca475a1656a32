//! What pulsebus's tables and indexes take on disk, and emptying them between layouts.

use anyhow::{Context, Result};
use sqlx::PgPool;

/// The tables a layout fills, emptied after it (`topics` last: the others refer to it).
const TABLES: &str = "deliveries, consumers, events, topics";

/// One table of the `public` schema: heap, indexes, and everything (TOAST included).
#[derive(Debug, Clone)]
pub struct TableSize {
    pub name: String,
    pub heap: i64,
    pub indexes: i64,
    pub total: i64,
}

/// The sizes of a database's tables and indexes at one moment.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Largest first.
    pub tables: Vec<TableSize>,
    /// (table, index, bytes), largest first.
    pub indexes: Vec<(String, String, i64)>,
    pub database: i64,
}

/// The sizes of the tables and indexes of the database at `url`.
pub async fn sizes(url: &str) -> Result<Sizes> {
    let pool = PgPool::connect(url).await?;
    let tables: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.relname::text, pg_relation_size(c.oid), pg_indexes_size(c.oid), \
         pg_total_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations' \
         ORDER BY 4 DESC, 1",
    )
    .fetch_all(&pool)
    .await
    .context("table sizes")?;
    let indexes = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, pg_relation_size(i.oid) FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations' ORDER BY 3 DESC, 2",
    )
    .fetch_all(&pool)
    .await
    .context("index sizes")?;
    let database = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    let tables = tables
        .into_iter()
        .map(|(name, heap, indexes, total)| TableSize {
            name,
            heap,
            indexes,
            total,
        })
        .collect();
    Ok(Sizes {
        tables,
        indexes,
        database,
    })
}

/// Empties pulsebus's tables (TRUNCATE: the files go at once, no dead rows or
/// transition tables, which deleting 50 M rows would leave or spill).
pub async fn truncate(url: &str) -> Result<()> {
    on_tables(url, "TRUNCATE", "CASCADE").await
}

/// `VACUUM (ANALYZE)` of pulsebus's tables: before each size's probes, so that every
/// size is measured with its visibility map and hint bits set and fresh statistics
/// (without it, the first reads of just-loaded rows write hint bits to every page, and
/// the empty table's catch-up from offset 1 ran 60x slower than at 10 M events).
pub async fn vacuum(url: &str) -> Result<()> {
    on_tables(url, "VACUUM (ANALYZE)", "").await
}

/// Runs `command` on pulsebus's tables (`{command} {TABLES} {tail}`).
async fn on_tables(url: &str, command: &str, tail: &str) -> Result<()> {
    let pool = PgPool::connect(url).await?;
    let sql = format!("{command} {TABLES} {tail}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .with_context(|| format!("{command} pulsebus's tables"))?;
    pool.close().await;
    Ok(())
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Sizes {
    /// The bytes every table takes together.
    pub fn total(&self) -> i64 {
        self.tables.iter().map(|t| t.total).sum()
    }

    /// One line for the notes: per table heap / indexes / total (tables over 1 MiB, or
    /// all when none is), every index of `events`, and bytes per stored event.
    pub fn note(&self, what: &str, events: u64) -> String {
        let big: Vec<&TableSize> = self.tables.iter().filter(|t| t.total > 1 << 20).collect();
        let shown = if big.is_empty() {
            self.tables.iter().collect()
        } else {
            big
        };
        let tables: Vec<String> = shown
            .iter()
            .map(|t| {
                format!(
                    "{} heap {} + indexes {} = {}",
                    t.name,
                    mib(t.heap),
                    mib(t.indexes),
                    mib(t.total)
                )
            })
            .collect();
        let events_indexes: Vec<String> = self
            .indexes
            .iter()
            .filter(|(table, _, _)| table == "events")
            .map(|(_, index, bytes)| format!("{index} {}", mib(*bytes)))
            .collect();
        let per_event = match events {
            0 => "-".to_owned(),
            n => format!("{:.0}", self.total() as f64 / n as f64),
        };
        format!(
            "growth {what}: {events} events; {}; events indexes: {}; all tables {}, \
             database {}; {per_event} bytes per event",
            tables.join("; "),
            events_indexes.join(", "),
            mib(self.total()),
            mib(self.database),
        )
    }
}
