//! A PostgreSQL primary with a synchronous standby on two loopback ports, from the
//! local binaries, for the replication and failover tests.
//!
//! The standby is made with `pg_basebackup -X stream -R -C -S s1` (a slot, and
//! `primary_conninfo` with `application_name=s1`); `synchronous_standby_names` is set
//! only once it streams, since before that even DDL would wait for it.

use std::time::Duration;

use pulsebus::embedded_pg::{EmbeddedError, PgCluster, cluster_url};

use super::{DataDir, settle};

/// The standby's name in `synchronous_standby_names` and its replication slot.
const STANDBY: &str = "s1";

/// A running primary and its standby, each in a [`DataDir`] of its own (dropping the
/// pair stops both and removes their files).
pub struct ReplicatedPair {
    primary_dir: DataDir,
    standby_dir: DataDir,
    /// The primary's port on 127.0.0.1.
    pub primary_port: u16,
    /// The standby's port on 127.0.0.1.
    pub standby_port: u16,
}

impl ReplicatedPair {
    /// Starts the primary, makes and starts the standby, waits until it streams and
    /// then makes it synchronous (`FIRST 1 (s1)`).
    pub async fn start() -> Self {
        let pair = Self::start_async().await;
        let admin = pair.admin().await;
        sqlx::query("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s1)'")
            .execute(&admin)
            .await
            .expect("the standby becomes synchronous");
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&admin)
            .await
            .unwrap();
        pair.wait_sync_state("sync").await;
        pair
    }

    /// The same with asynchronous replication: commits do not wait for the standby.
    pub async fn start_async() -> Self {
        let pair = tokio::task::spawn_blocking(Self::start_both)
            .await
            .expect("the replicated pair starts");
        pair.wait_streaming(true).await;
        pair
    }

    /// Stops (SIGSTOP) the primary's walsender: from now on the standby gets nothing,
    /// while asynchronous commits still return.
    pub async fn stall_walsender(&self) {
        let pid: i32 =
            sqlx::query_scalar("SELECT pid FROM pg_stat_replication WHERE application_name = $1")
                .bind(STANDBY)
                .fetch_one(&self.admin().await)
                .await
                .expect("a walsender serves the standby");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .expect("the walsender is stopped");
    }

    fn start_both() -> Self {
        let primary_dir = DataDir::new();
        let primary_port = primary_dir
            .cluster()
            .with_setting("fsync", "off")
            .ensure_running()
            .expect("the primary starts");
        let standby_dir = DataDir::new();
        standby_dir
            .cluster()
            .base_backup_from(primary_port, STANDBY)
            .expect("pg_basebackup makes the standby");
        let standby_port = standby_dir
            .cluster()
            .ensure_running()
            .expect("the standby starts");
        Self {
            primary_dir,
            standby_dir,
            primary_port,
            standby_port,
        }
    }

    /// The URL of database `db` naming both hosts, the primary first, as a user of a
    /// failover manager writes it.
    pub fn both_hosts_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}",
            self.primary_port, self.standby_port
        )
    }

    /// Stops the primary with a fast shutdown, which sends the standby all of its WAL
    /// first: the first half of a clean switchover.
    pub async fn stop_primary(&self) {
        in_background(
            self.primary_dir.cluster(),
            |c| c.stop(),
            "the primary stops",
        )
        .await;
    }

    /// Kills the primary's postmaster and every one of its children at once, as a
    /// crash would: the postmaster is stopped first so it cannot restart them, and the
    /// children are killed by pid, since they are not in its process group.
    pub fn kill_primary(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let postmaster = Pid::from_raw(self.primary_dir.postmaster_pid() as i32);
        kill(postmaster, Signal::SIGSTOP).expect("the postmaster is stopped");
        for child in children_of(postmaster.as_raw()) {
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        kill(postmaster, Signal::SIGKILL).expect("the postmaster is killed");
    }

    /// Starts the old primary again, as the primary it was (after [`Self::kill_primary`]
    /// and a promotion: split brain, two primaries).
    pub async fn restart_old_primary(&self) {
        in_background(
            self.primary_dir.cluster(),
            |c| c.ensure_running(),
            "the old primary starts again",
        )
        .await;
    }

    /// Promotes the standby (`pg_ctl promote -w`): it is the primary once this returns.
    pub async fn promote_standby(&self) {
        in_background(
            self.standby_dir.cluster(),
            |c| c.promote(),
            "the standby is promoted",
        )
        .await;
    }

    /// The URL of database `db` on the primary.
    pub fn primary_url(&self, db: &str) -> String {
        cluster_url(self.primary_port, db)
    }

    /// Creates database `name` on the primary; returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        pulsebus::db::create_database(&self.primary_url("postgres"), name)
            .await
            .expect("the database is created on the primary");
        self.primary_url(name)
    }

    /// A pool on the primary's `postgres` database.
    pub async fn admin(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.primary_url("postgres"))
            .await
            .expect("the test connects to the primary")
    }

    /// A pool on the standby's database `db` (read-only while it is in recovery).
    pub async fn standby(&self, db: &str) -> sqlx::PgPool {
        sqlx::PgPool::connect(&cluster_url(self.standby_port, db))
            .await
            .expect("the test connects to the standby")
    }

    /// Stops the standby (fast shutdown): synchronous commits wait from now on.
    pub async fn stop_standby(&self) {
        in_background(
            self.standby_dir.cluster(),
            |c| c.stop(),
            "the standby stops",
        )
        .await;
        self.wait_streaming(false).await;
    }

    /// Starts the standby again and waits until it is synchronous once more.
    pub async fn start_standby(&self) {
        in_background(
            self.standby_dir.cluster(),
            |c| c.ensure_running(),
            "the standby starts again",
        )
        .await;
        self.wait_sync_state("sync").await;
    }

    async fn wait_streaming(&self, streaming: bool) {
        let admin = self.admin().await;
        let (found, _) = settle(
            Duration::from_millis(50),
            || async {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_replication \
                     WHERE application_name = $1 AND state = 'streaming'",
                )
                .bind(STANDBY)
                .fetch_one(&admin)
                .await
                .unwrap()
            },
            |n| (*n > 0) == streaming,
        )
        .await;
        assert_eq!(found > 0, streaming, "the standby's streaming state");
    }

    async fn wait_sync_state(&self, state: &str) {
        let admin = self.admin().await;
        let (found, _) = settle(
            Duration::from_millis(50),
            || async {
                sqlx::query_scalar::<_, Option<String>>(
                    "SELECT max(sync_state) FROM pg_stat_replication WHERE application_name = $1",
                )
                .bind(STANDBY)
                .fetch_one(&admin)
                .await
                .unwrap()
            },
            |found| found.as_deref() == Some(state),
        )
        .await;
        assert_eq!(found.as_deref(), Some(state), "the standby's sync_state");
    }
}

/// Runs the blocking `op` on `cluster` off the async threads; panics with `what`.
async fn in_background<T: Send + 'static>(
    cluster: PgCluster,
    op: impl FnOnce(&PgCluster) -> Result<T, EmbeddedError> + Send + 'static,
    what: &str,
) -> T {
    tokio::task::spawn_blocking(move || op(&cluster))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The pids whose parent is `parent` (from /proc).
fn children_of(parent: i32) -> Vec<i32> {
    let entries = std::fs::read_dir("/proc").unwrap();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: the comm may hold spaces, so split after ')'.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1) == Some(parent.to_string().as_str())
        })
        .collect()
}
