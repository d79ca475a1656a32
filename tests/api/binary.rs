//! The `pulsebus` binary: its private PostgreSQL, graceful shutdown, crash restarts.

use crate::helpers::process::{ServerProcess, serve_command};
use crate::helpers::*;
use nix::sys::signal::Signal;
use tokio::process::Command;

/// Without DATABASE_URL, serve initialises and starts a private PostgreSQL, serves,
/// and on SIGTERM stops it and exits 0.
#[tokio::test]
async fn serve_runs_a_private_postgres_and_stops_it_on_sigterm() {
    let dir = DataDir::new();
    let server = ServerProcess::on_data_dir(dir.path()).await;

    let results = publish(
        &mut server.client().await,
        "lessons",
        events("lesson.published", 1),
    )
    .await;
    assert_eq!(results[0].offset, 1);
    server.signal(Signal::SIGTERM);

    assert_eq!(server.exit_code().await, Some(0));
    assert!(
        !dir.postmaster_pid_file().exists(),
        "the private PostgreSQL was left running"
    );
}

/// A second serve on a data directory in use fails with a message that says what to do.
#[tokio::test]
async fn a_second_serve_on_the_same_data_dir_is_refused_clearly() {
    let dir = DataDir::new();
    let first = ServerProcess::on_data_dir(dir.path()).await;

    let second = serve_command(&["--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();

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
    let crashed = ServerProcess::on_data_dir(dir.path()).await;
    publish(
        &mut crashed.client().await,
        "lessons",
        events("lesson.published", 3),
    )
    .await;
    crashed.kill().await;
    assert!(
        dir.postmaster_pid_file().exists(),
        "PostgreSQL should outlive a SIGKILLed server"
    );

    let restarted = ServerProcess::on_data_dir(dir.path()).await;

    let records = read_all(&mut restarted.client().await, "lessons").await;
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
