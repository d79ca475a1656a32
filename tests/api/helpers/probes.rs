//! What the fault-injection tests observe from outside a server: its database sessions
//! and leases in SQL, its threads and file descriptors in /proc, and a TCP proxy whose
//! connections can be cut.

use std::net::SocketAddr;

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
