//! The `pulsebus` binary: its private PostgreSQL, graceful shutdown, crash restarts.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pulsebus::embedded_pg::PgCluster;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

/// A data directory the test owns; stops its PostgreSQL whatever the test's outcome.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("serve-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        // The private PostgreSQL may run as another user (when tests run as root).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(path)
    }

    fn postmaster_pid(&self) -> PathBuf {
        self.0.join("postgres/data/postmaster.pid")
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

/// A running `pulsebus serve` and its log.
struct Serve {
    child: Child,
    log: Lines<BufReader<ChildStderr>>,
}

fn serve_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulsebus"));
    cmd.args([
        "--log-format",
        "json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data_dir)
    .env_remove("DATABASE_URL")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    cmd
}

impl Serve {
    fn spawn(data_dir: &Path) -> Self {
        let mut child = serve_command(data_dir).spawn().expect("the binary starts");
        let log = BufReader::new(child.stderr.take().unwrap()).lines();
        Self { child, log }
    }

    /// Waits for the "serving" log line and returns the address it names.
    async fn serving(&mut self) -> String {
        let wait = async {
            while let Some(line) = self.log.next_line().await.unwrap() {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["fields"]["message"] == "pulsebus serving" {
                    return json["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("the server exited before serving");
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("the server starts in time")
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id().unwrap() as i32), signal).unwrap();
    }

    async fn exit_code(mut self) -> Option<i32> {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the server exits in time");
        status.unwrap().code()
    }
}

async fn client_at(addr: &str) -> Client<tonic::transport::Channel> {
    Client::connect(format!("http://{addr}"))
        .await
        .expect("client connects")
}

/// Without DATABASE_URL, serve initialises and starts a private PostgreSQL, serves,
/// and on SIGTERM stops it and exits 0.
#[tokio::test]
async fn serve_runs_a_private_postgres_and_stops_it_on_sigterm() {
    let dir = DataDir::new();
    let mut server = Serve::spawn(&dir.0);
    let addr = server.serving().await;

    let results = publish(
        &mut client_at(&addr).await,
        "lessons",
        vec![event("lesson.published", "{}")],
    )
    .await;
    assert_eq!(results[0].offset, 1);
    server.signal(Signal::SIGTERM);

    assert_eq!(server.exit_code().await, Some(0));
    assert!(
        !dir.postmaster_pid().exists(),
        "the private PostgreSQL was left running"
    );
}

/// A second serve on a data directory in use fails with a message that says what to do.
#[tokio::test]
async fn a_second_serve_on_the_same_data_dir_is_refused_clearly() {
    let dir = DataDir::new();
    let mut first = Serve::spawn(&dir.0);
    first.serving().await;

    let second = serve_command(&dir.0).output().await.unwrap();

    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another pulsebus server") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
    first.signal(Signal::SIGTERM);
    assert_eq!(first.exit_code().await, Some(0));
}

/// After SIGKILL the private PostgreSQL is orphaned; the next serve adopts it and the
/// acknowledged events are all there.
#[tokio::test]
async fn after_sigkill_the_next_serve_adopts_the_orphaned_postgres() {
    let dir = DataDir::new();
    let mut crashed = Serve::spawn(&dir.0);
    let addr = crashed.serving().await;
    publish(
        &mut client_at(&addr).await,
        "lessons",
        vec![event("lesson.published", "{}"); 3],
    )
    .await;
    crashed.signal(Signal::SIGKILL);
    crashed.exit_code().await;
    assert!(
        dir.postmaster_pid().exists(),
        "PostgreSQL should outlive a SIGKILLed server"
    );

    let mut restarted = Serve::spawn(&dir.0);
    let addr = restarted.serving().await;

    let records = read_all(&mut client_at(&addr).await, "lessons").await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    restarted.signal(Signal::SIGTERM);
    assert_eq!(restarted.exit_code().await, Some(0));
}

/// `pulsebus migrate` applies the schema to the database it is given and exits 0.
#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let url = fresh_database().await;

    let out = Command::new(env!("CARGO_BIN_EXE_pulsebus"))
        .args(["migrate", "--database-url", &url])
        .output()
        .await
        .unwrap();

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('events', 'topics') ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(tables, ["events", "topics"]);
}
