//! A new user's first run, with the real binary: `serve` as root in a private
//! directory, a first start that fails half-way, a wrong `DATABASE_URL`, logs in a
//! pipe, the CLI's flags and help, and the README's TLS recipe and token example
//! followed as written.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::helpers::process::{ServerProcess, serve_command};
use crate::helpers::*;
use pulsebus::embedded_pg::PgCluster;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pulsebus");

/// `pulsebus <args>` without the settings a developer's shell may have exported.
fn pulsebus(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let exported = "DATABASE_URL NO_COLOR PULSEBUS_CA PULSEBUS_DATA_DIR PULSEBUS_LOG_FORMAT \
                    PULSEBUS_SERVER PULSEBUS_TOKEN";
    for var in exported.split_whitespace() {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` to its end (within [`WAIT`]) and captures its output.
async fn output(cmd: &mut Command) -> Output {
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("the command ends in time")
        .expect("the command starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn is_root() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("skipped: this behaviour is about running as root");
    }
    root
}

/// A fresh directory under target/tmp with `mode`; on drop, stops a private
/// PostgreSQL left in its `data/` and removes it.
struct Scratch(PathBuf);

impl Scratch {
    fn new(mode: u32) -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("first-run-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(cluster) = PgCluster::new(&self.0.join("data/postgres")) {
            let _ = cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// As root, `serve` started in a mode-700 directory (root's home, `mktemp -d`) fails
/// before creating anything, naming the user, the directory it cannot enter and the
/// ways out.
#[tokio::test]
async fn serve_as_root_in_a_private_directory_names_the_directory_postgres_cannot_enter() {
    if !is_root() {
        return;
    }
    let private = Scratch::new(0o700);

    let out = output(serve_command(&[]).current_dir(&private.0)).await;

    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let blocked = format!(
        "`postgres` cannot enter {} (owner root, mode 700)",
        private.0.display()
    );
    assert!(stderr.contains(&blocked), "{stderr}");
    assert!(
        stderr.contains("--data-dir") && stderr.contains("non-root user"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&private.0).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `initdb` and `pg_ctl` stand-ins: initdb makes part of a data directory, then fails
/// unless `FAKE_INITDB=ok`; pg_ctl answers `--version`, reports "not running" and
/// fails to start.
fn fake_postgres_bin(scratch: &Scratch) -> String {
    let bin = scratch.0.join("fake-bin");
    std::fs::create_dir(&bin).unwrap();
    let initdb = r#"#!/bin/sh
mkdir -p "$2" && echo half > "$2/half-made"
[ "$FAKE_INITDB" = ok ] && echo 15 > "$2/PG_VERSION" && exit 0
echo "simulated initdb failure" >&2; exit 1
"#;
    let pg_ctl = r#"#!/bin/sh
case "$*" in
  --version) echo "pg_ctl (PostgreSQL) 15"; exit 0 ;;
  *" status") exit 3 ;;
  *) echo "simulated pg_ctl failure" >&2; exit 1 ;;
esac
"#;
    for (name, script) in [("initdb", initdb), ("pg_ctl", pg_ctl)] {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", bin.display())
}

/// When `initdb` fails on a first start, everything that start created (the data
/// directory, its parents, the lock, the cluster root) is removed again.
#[tokio::test]
async fn a_failed_first_initdb_leaves_nothing_half_made_behind() {
    let scratch = Scratch::new(0o755);
    let path = fake_postgres_bin(&scratch);
    let data = scratch.0.join("new/data");

    let out = output(
        serve_command(&["--data-dir"])
            .arg(&data)
            .env("PATH", path)
            .env("FAKE_INITDB", "fail"),
    )
    .await;

    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("simulated initdb failure"), "{stderr}");
    assert!(!scratch.0.join("new").exists(), "half-made data dir left");
}

/// A cluster that `initdb` completed is kept when the start after it fails, and again
/// on the next failing start: cleaning up never removes an initialised cluster.
#[tokio::test]
async fn a_cluster_that_was_initialised_is_never_removed_by_a_failed_start() {
    let scratch = Scratch::new(0o755);
    let path = fake_postgres_bin(&scratch);
    let data = scratch.0.join("data");
    let pg_version = data.join("postgres/data/PG_VERSION");

    for initdb in ["ok", "fail"] {
        let out = output(
            serve_command(&["--data-dir"])
                .arg(&data)
                .env("PATH", &path)
                .env("FAKE_INITDB", initdb),
        )
        .await;

        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("simulated pg_ctl failure"), "{stderr}");
        assert!(pg_version.exists(), "the cluster was removed");
    }
}

/// As root with umask 077, the data directory pulsebus creates is still one `postgres`
/// can enter (mode 755): `migrate` sets up the private PostgreSQL there and exits 0.
#[tokio::test]
async fn a_data_dir_created_as_root_under_umask_077_is_reachable_for_postgres() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new(0o755);
    let data = scratch.0.join("data");

    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "umask 077 && exec \"$0\" migrate --data-dir \"$1\"",
        BIN,
    ])
    .arg(&data)
    .env_remove("DATABASE_URL");
    let out = output(&mut cmd).await;

    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

/// `serve` with a DATABASE_URL to a closed port says the connection was refused
/// (not "pool timed out"), with the password masked.
#[tokio::test]
async fn serve_with_a_database_url_to_a_closed_port_names_the_refusal() {
    let url = format!("postgres://app:s3cret@127.0.0.1:{}/pulsebus", closed_port());

    let out = output(&mut serve_command(&[
        "--database-url",
        &url,
        "--db-timeout",
        "1s",
    ]))
    .await;

    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("postgres://app:***@127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// `migrate` with a DATABASE_URL naming a database that does not exist says so.
#[tokio::test]
async fn migrate_with_a_url_to_a_missing_database_says_it_does_not_exist() {
    let url = fresh_database().await.replacen("/test_", "/missing_", 1);

    let out = output(&mut pulsebus(&["migrate", "--database-url", &url])).await;

    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("database \"missing_") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

/// Text logs written into a pipe carry no ANSI colour codes.
#[tokio::test]
async fn text_logs_into_a_pipe_have_no_colour_codes() {
    let url = format!("postgres://app@127.0.0.1:{}/pulsebus", closed_port());

    let out = output(&mut pulsebus(&[
        "migrate",
        "--database-url",
        &url,
        "--db-timeout",
        "100ms",
    ]))
    .await;

    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("INFO") && stderr.contains("using PostgreSQL from DATABASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}

/// `serve --help` lists no client flags, `read --help` does, and client flags before a
/// launcher command are refused rather than silently ignored.
#[tokio::test]
async fn client_flags_belong_to_the_client_commands_only() {
    let serve = output(&mut pulsebus(&["serve", "--help"])).await;
    let read = output(&mut pulsebus(&["read", "--help"])).await;
    let misplaced = output(&mut pulsebus(&["--server", "http://127.0.0.1:1", "serve"])).await;

    let serve = text(&serve.stdout);
    assert!(serve.contains("--data-dir"), "{serve}");
    for client_flag in [
        "--server",
        "PULSEBUS_SERVER",
        "PULSEBUS_TOKEN",
        "PULSEBUS_CA",
    ] {
        assert!(!serve.contains(client_flag), "{client_flag} in\n{serve}");
    }
    let read = text(&read.stdout);
    for client_flag in ["--server", "PULSEBUS_SERVER", "--token", "--ca"] {
        assert!(
            read.contains(client_flag),
            "{client_flag} missing in\n{read}"
        );
    }
    assert!(!misplaced.status.success());
    assert!(text(&misplaced.stderr).contains("are for the client commands"));
}

/// `--server 127.0.0.1:PORT`, without a scheme, reaches a plaintext server.
#[tokio::test]
async fn a_bare_host_and_port_reaches_the_server() {
    let server = TestServer::start().await;
    publish(
        &mut server.client().await,
        "lessons",
        events("lesson.note", 1),
    )
    .await;

    let addr = server.addr.to_string();
    let out = output(&mut pulsebus(&["topics", "--json", "--server", &addr])).await;

    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""topic":"lessons""#));
}

/// `pulsebus read ... | head -1`: when the reader has closed the pipe, the CLI exits 0
/// with nothing on stderr (no broken-pipe panic).
#[tokio::test]
async fn a_closed_output_pipe_ends_the_cli_quietly() {
    let server = TestServer::start().await;
    publish(
        &mut server.client().await,
        "lessons",
        events("lesson.note", 3),
    )
    .await;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // every write now fails with EPIPE, as after `head -1` exits

    let addr = server.addr.to_string();
    let mut cmd = pulsebus(&["read", "lessons", "--server", &addr]);
    let child = cmd.stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the CLI ends in time")
        .unwrap();

    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

/// The body of the first fenced `lang` block after `marker` in README.md.
fn readme_block(marker: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let at = readme.find(marker).expect("the marker is in README.md");
    let fence = format!("```{lang}\n");
    let start = at + readme[at..].find(&fence).expect("a block follows") + fence.len();
    let len = readme[start..].find("```").expect("the block ends");
    readme[start..start + len].to_owned()
}

/// grpcurl: `PULSEBUS_GRPCURL`, else the project's `.venv`, else PATH.
fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("PULSEBUS_GRPCURL").filter(|p| !p.is_empty()) {
        return path.into();
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/grpcurl");
    if local.exists() {
        local
    } else {
        "grpcurl".into()
    }
}

/// The README's TLS recipe, run as written with openssl, makes certificates that both
/// grpcurl (`-cacert ca.pem`, by IP) and the CLI (`--ca ca.pem`, bare `localhost:port`,
/// so https by the CA and DNS name) accept.
#[tokio::test]
async fn the_readme_tls_recipe_works_with_grpcurl_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = readme_block("tests/first_run.rs runs the next block", "sh");
    let openssl = output(Command::new("openssl").arg("version")).await;
    assert!(openssl.status.success(), "install openssl (.ci/run does)");
    let made = output(
        Command::new("sh")
            .args(["-ec", &recipe])
            .current_dir(dir.path()),
    )
    .await;
    assert!(made.status.success(), "{}", text(&made.stderr));
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let tls = [
        "--tls-cert",
        &file("server.pem"),
        "--tls-key",
        &file("server.key"),
    ];
    let server = ServerProcess::on_database(&fresh_database().await, &tls).await;
    let port = server.addr.rsplit_once(':').unwrap().1;

    let body = r#"{"topic": "lessons", "events": [{"type": "lesson.published", "source": "readme", "contentType": "application/json", "textData": "{}"}]}"#;
    let mut call = Command::new(grpcurl());
    call.args(["-cacert", &file("ca.pem"), "-d", body, &server.addr])
        .arg("pulsebus.v1.EventBus/Publish");
    let published = output(&mut call).await;
    let server_arg = format!("localhost:{port}");
    let read = [
        "read",
        "lessons",
        "--json",
        "--ca",
        &file("ca.pem"),
        "--server",
        &server_arg,
    ];
    let read = output(&mut pulsebus(&read)).await;

    assert!(published.status.success(), "{}", text(&published.stderr));
    assert!(read.status.success(), "{}", text(&read.stderr));
    assert!(
        text(&read.stdout).contains(r#""offset":1"#),
        "{}",
        text(&read.stdout)
    );
}

/// The README's auth file, as written: `lesson-service` may publish to the README's
/// own topic `lessons`, and is refused `payments` with the message the README quotes.
#[tokio::test]
async fn the_readme_token_example_lets_lesson_service_publish_to_lessons() {
    let dir = tempfile::tempdir().unwrap();
    let mut auth = readme_block("pulsebus hash-token    # prints the hash", "toml");
    for n in 1..=3 {
        let hash = hex::encode(pulsebus::auth::hash_token(&format!("token-{n}")));
        auth = auth.replacen("<64 hex digits>", &hash, 1);
    }
    let auth_file = dir.path().join("auth.toml");
    std::fs::write(&auth_file, auth).unwrap();
    let flags = ["--auth-file", auth_file.to_str().unwrap()];
    let server = ServerProcess::on_database(&fresh_database().await, &flags).await;
    let publish_to = |topic: &'static str| {
        let args = [
            "publish",
            topic,
            "--type",
            "lesson.published",
            "--token",
            "token-1",
        ];
        let mut cmd = pulsebus(&args);
        cmd.args(["--server", &server.addr]);
        cmd
    };

    let lessons = output(&mut publish_to("lessons")).await;
    let payments = output(&mut publish_to("payments")).await;

    assert!(lessons.status.success(), "{}", text(&lessons.stderr));
    assert!(!payments.status.success());
    let refused = text(&payments.stderr);
    assert!(
        refused.contains("'lesson-service' may not publish topic 'payments'"),
        "{refused}"
    );
}
