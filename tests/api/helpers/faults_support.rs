//! Helpers shared by the fault-injection tests (`tests/faults_*.rs`): a private data
//! directory, a TCP proxy whose connections can be cut, a seeded RNG, process figures
//! and bounded waits on conditions only SQL can observe.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pulsebus::embedded_pg::{PgCluster, cluster_url};
use sqlx::postgres::PgPoolOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A data directory for a server's private PostgreSQL; stops that PostgreSQL (which a
/// SIGKILLed server leaves running) and removes the directory whatever the outcome.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("faults-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        // The private PostgreSQL may run as another user (when tests run as root).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(path)
    }

    fn postmaster_pid_file(&self) -> String {
        std::fs::read_to_string(self.0.join("postgres/data/postmaster.pid"))
            .expect("the private PostgreSQL is running")
    }

    /// The pid of the private PostgreSQL's postmaster (line 1 of postmaster.pid).
    pub fn postmaster_pid(&self) -> u32 {
        self.postmaster_pid_file()
            .lines()
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The URL of the `pulsebus` database in the private PostgreSQL (port: line 4).
    pub fn database_url(&self) -> String {
        let port: u16 = self
            .postmaster_pid_file()
            .lines()
            .nth(3)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        cluster_url(port, "pulsebus")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(cluster) = PgCluster::new(&self.0.join("postgres")) {
            let _ = cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// Re-evaluates `probe` every `every` until `done` accepts its value or `bound` passed;
/// returns the last value and how long it took. For conditions that only a query can
/// observe (no event to wait on); the loop is bounded in time.
pub async fn settle<T, F, Fut>(
    bound: Duration,
    every: Duration,
    mut probe: F,
    done: impl Fn(&T) -> bool,
) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let started = Instant::now();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let value = probe().await;
        if done(&value) || started.elapsed() >= bound {
            return (value, started.elapsed());
        }
    }
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

/// xorshift64*: a tiny seeded generator, so a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `FAULTS_SEED` when set, else at random; prints the seed.
    pub fn from_env_or_random(test: &str) -> Self {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u128() as u64);
        eprintln!("{test}: seed {seed} (replay the choices with FAULTS_SEED={seed})");
        Self::new(seed)
    }

    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `range` (small ranges; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn between(&mut self, low: usize, high_inclusive: usize) -> usize {
        low + self.below(high_inclusive - low + 1)
    }
}
