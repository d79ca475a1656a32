//! What tests observe from outside a server: its database sessions, leases and
//! statements (pg_stat_activity, pg_stat_statements) in SQL, its threads and file
//! descriptors in /proc, and a TCP proxy whose connections can be cut.

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A small pool for the test's own SQL assertions (one connection: it shows up in
/// `pg_stat_activity` as exactly one session).
pub async fn sql(database_url: &str) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .expect("the test connects to the database")
}

/// Sessions on the current database, the test's own included.
pub async fn sessions(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Durable consumers whose lease is live now: `topic/name`, sorted.
pub async fn live_leases(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT topic || '/' || name FROM consumers
         WHERE owner IS NOT NULL AND lease_expires_at > clock_timestamp() ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Threads of process `pid`.
pub fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open file descriptors of process `pid` (sockets included).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A TCP proxy in front of a server; [`Proxy::cut`] drops every connection through it
/// at once, as a vanished client or a broken network does: the server sees the TCP
/// connection close with no HTTP/2 frame saying goodbye.
pub struct Proxy {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                pipes.spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self { addr, task }
    }

    /// Closes every connection through the proxy (and the proxy).
    pub async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// What pg_stat_statements counted for the statements of this database whose text
/// contains `fragment`: (executions, rows), summed. Each count is taken when the
/// statement ends, before its result reaches the client, so after an awaited call it
/// is already there. Needs the extension in the database ([`track_statements`]) and
/// the library preloaded (the test cluster does that; with `DATABASE_URL`, preload it
/// in that server).
pub async fn statements(pool: &sqlx::PgPool, fragment: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(sum(calls), 0)::int8, coalesce(sum(rows), 0)::int8
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query LIKE '%' || $1 || '%'",
    )
    .bind(fragment)
    .fetch_one(pool)
    .await
    .expect("pg_stat_statements is readable (preloaded, and the extension created)")
}

/// Creates the pg_stat_statements extension in this database (the view lives in it).
pub async fn track_statements(pool: &sqlx::PgPool) {
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await
        .expect("the pg_stat_statements extension is available");
}

/// Waits until a session of this database waits for a lock while running a statement
/// whose text contains `fragment` (at most [`WAIT`](super::WAIT); fails if none does).
pub async fn wait_for_blocked_statement(pool: &sqlx::PgPool, fragment: &str) {
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%' || $1 || '%'",
        )
        .bind(fragment)
        .fetch_one(pool)
        .await
        .unwrap()
    };
    let (waiting, _) = super::settle(Duration::from_millis(10), waiting, |&n| n > 0).await;
    assert!(
        waiting > 0,
        "no statement containing {fragment:?} waited for a lock"
    );
}
