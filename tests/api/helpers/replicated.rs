//! A PostgreSQL primary with a synchronous standby on two loopback ports, from the
//! local binaries, for the replication and failover tests.
//!
//! The standby is made with `pg_basebackup -X stream -R -C -S s1` (a slot, and
//! `primary_conninfo` with `application_name=s1`); `synchronous_standby_names` is set
//! only once it streams, since before that even DDL would wait for it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::unistd::{Uid, User};
use pulsebus::embedded_pg::{PgCluster, cluster_url, find_bin_dir};

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
        let pair = tokio::task::spawn_blocking(Self::start_both)
            .await
            .expect("the replicated pair starts");
        pair.wait_streaming(true).await;
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

    fn start_both() -> Self {
        let primary_dir = DataDir::new();
        let primary_port = primary_dir
            .cluster()
            .with_setting("fsync", "off")
            .ensure_running()
            .expect("the primary starts");
        let standby_dir = DataDir::new();
        base_backup(primary_port, &standby_dir.cluster());
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
        let cluster = self.primary_dir.cluster();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap()
            .expect("the primary stops");
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

    /// Promotes the standby (`pg_ctl promote -w`): it is the primary once this returns.
    pub async fn promote_standby(&self) {
        let data = self.standby_dir.cluster().data_dir();
        tokio::task::spawn_blocking(move || {
            let out = as_postgres(Command::new(pg_tool("pg_ctl")).args([
                "promote",
                "-w",
                "-D",
                path(&data),
            ]))
            .output()
            .expect("pg_ctl runs");
            assert!(
                out.status.success(),
                "pg_ctl promote: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await
        .unwrap();
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
        let cluster = self.standby_dir.cluster();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap()
            .expect("the standby stops");
        self.wait_streaming(false).await;
    }

    /// Starts the standby again and waits until it is synchronous once more.
    pub async fn start_standby(&self) {
        let cluster = self.standby_dir.cluster();
        tokio::task::spawn_blocking(move || cluster.ensure_running())
            .await
            .unwrap()
            .expect("the standby starts again");
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

/// `pg_basebackup` of the primary into `standby`'s data directory, as the user
/// PostgreSQL runs as.
fn base_backup(primary_port: u16, standby: &PgCluster) {
    let data = standby.data_dir();
    let root = data.parent().unwrap();
    std::fs::create_dir_all(root).unwrap();
    if let Some(user) = run_as() {
        std::os::unix::fs::chown(root, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    }
    let conninfo =
        format!("host=127.0.0.1 port={primary_port} user=postgres application_name={STANDBY}");
    let mut cmd = Command::new(pg_tool("pg_basebackup"));
    cmd.args([
        "-d",
        &conninfo,
        "-D",
        path(&data),
        "-X",
        "stream",
        "-R",
        "-C",
    ])
    .args(["-S", STANDBY])
    .current_dir(root);
    let out = as_postgres(&mut cmd)
        .output()
        .unwrap_or_else(|e| panic!("pg_basebackup runs in {}: {e}", root.display()));
    assert!(
        out.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL program from the directory `initdb` really is in (the one on `PATH`
/// may be a lone symlink to it).
fn pg_tool(name: &str) -> std::path::PathBuf {
    let bin = find_bin_dir().expect("PostgreSQL binaries are installed");
    let initdb = std::fs::canonicalize(bin.join("initdb")).unwrap();
    initdb.parent().unwrap().join(name)
}

/// `cmd`, run as the user PostgreSQL runs as (`postgres` when we are root).
fn as_postgres(cmd: &mut Command) -> &mut Command {
    if let Some(user) = run_as() {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    cmd
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

fn run_as() -> Option<User> {
    Uid::effective().is_root().then(|| {
        User::from_name("postgres")
            .unwrap()
            .expect("a postgres user")
    })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
