//! Running an outside test program (a Python or Node test suite of a client package)
//! against servers this process owns, and doing to those servers what the program asks.
//!
//! The program gets `PULSEBUS_URL` (`http://127.0.0.1:<port>`) and
//! `PULSEBUS_DATABASE_URL` in its environment. To ask for something it prints one line
//! on stdout and waits for the answer line on its stdin:
//!
//! | it prints | what happens | answer |
//! |---|---|---|
//! | `pulsebus-test: restart` | the server stops gracefully and a new one starts on the same address and database | `ok` |
//! | `pulsebus-test: stop` | the server stops gracefully (the address refuses connections) | `ok` |
//! | `pulsebus-test: start` | a stopped server starts again on the same address and database | `ok` |
//! | `pulsebus-test: replica` | a second server starts on the same database | `ok http://127.0.0.1:<port>` |
//! | `pulsebus-test: rewind <topic> <offset>` | (with the server stopped) the topic's log is cut back to `offset`, its later events deleted and consumers past it moved back, as an asynchronous PostgreSQL failover would leave it | `ok` |
//!
//! Every other line is kept as the program's output. The test passes when the program
//! exits with status 0 within the timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};

use crate::helpers::TestServer;

/// The prefix of a request line.
const PREFIX: &str = "pulsebus-test: ";

/// What a driven program did.
pub struct Driven {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Driven {
    /// Panics with the program's output unless it exited with 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// The servers a program may ask for.
struct Servers {
    database_url: String,
    addr: SocketAddr,
    primary: Option<TestServer>,
    replicas: Vec<TestServer>,
}

impl Servers {
    async fn handle(&mut self, request: &str) -> String {
        match request {
            "restart" => {
                self.stop().await;
                self.start().await;
                "ok".into()
            }
            "stop" => {
                self.stop().await;
                "ok".into()
            }
            "start" => {
                self.start().await;
                "ok".into()
            }
            "replica" => {
                let replica = TestServer::start_on(self.database_url.clone(), |_| {}).await;
                let url = format!("ok http://{}", replica.addr);
                self.replicas.push(replica);
                url
            }
            other if other.starts_with("rewind ") => {
                let mut args = other.split_whitespace().skip(1);
                let (Some(topic), Some(offset)) = (args.next(), args.next()) else {
                    panic!("rewind wants a topic and an offset: {other:?}");
                };
                assert!(self.primary.is_none(), "rewind only a stopped server's log");
                rewind(&self.database_url, topic, offset.parse().unwrap()).await;
                "ok".into()
            }
            other => panic!("the driven program asked for {other:?}, which is not a request"),
        }
    }

    async fn stop(&mut self) {
        if let Some(server) = self.primary.take() {
            server.stop().await;
        }
    }

    async fn start(&mut self) {
        if self.primary.is_none() {
            let addr = self.addr;
            let server = TestServer::start_on(self.database_url.clone(), |c| c.listen = addr).await;
            self.primary = Some(server);
        }
    }
}

/// Cuts `topic`'s log back to `head`, as an asynchronous failover that lost the later
/// events would.
async fn rewind(database_url: &str, topic: &str, head: i64) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    for sql in [
        "DELETE FROM events WHERE topic = $1 AND \"offset\" > $2",
        "UPDATE topics SET head = $2 WHERE name = $1",
        "UPDATE consumers SET committed = LEAST(committed, $2) WHERE topic = $1",
    ] {
        sqlx::query(sql)
            .bind(topic)
            .bind(head)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

/// Runs `program args...` in `dir` against `server` (which it owns from now on), answering
/// its requests, and kills it after `timeout`.
pub async fn drive(
    program: &Path,
    args: &[&str],
    dir: &Path,
    server: TestServer,
    timeout: Duration,
) -> Driven {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("PULSEBUS_URL", format!("http://{}", server.addr))
        .env("PULSEBUS_DATABASE_URL", &server.database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let described = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {described}: {e}"));
    let mut servers = Servers {
        database_url: server.database_url.clone(),
        addr: server.addr,
        primary: Some(server),
        replicas: Vec::new(),
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let run = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut kept = String::new();
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            match line.strip_prefix(PREFIX) {
                Some(request) => answer(&mut stdin, servers.handle(request.trim()).await).await,
                None => {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        }
        let status = child.wait().await.expect("the program can be waited for");
        (status, kept)
    };
    let (status, stdout) = match tokio::time::timeout(timeout, run).await {
        Ok(done) => done,
        Err(_) => panic!("{described} did not finish within {timeout:?}"),
    };
    let stderr = errors.await.unwrap_or_default();
    Driven {
        status,
        stdout,
        stderr,
    }
}

async fn answer(stdin: &mut ChildStdin, line: String) {
    // A program that exited meanwhile is not an error here; its status tells.
    let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
    let _ = stdin.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::{manifest_dir, python};

    /// A program that asks for a restart and a replica gets both answered, and what it
    /// prints otherwise is kept.
    #[tokio::test]
    async fn a_driven_program_gets_its_server_restarted_and_a_replica() {
        let server = TestServer::start().await;
        let addr = format!("http://{}", server.addr);
        let script = "import os, sys\n\
            print(os.environ['PULSEBUS_URL'])\n\
            print('pulsebus-test: restart', flush=True)\n\
            print('restart:', sys.stdin.readline().strip())\n\
            print('pulsebus-test: replica', flush=True)\n\
            print('replica:', sys.stdin.readline().strip())\n";

        let out = drive(
            python(),
            &["-c", script],
            manifest_dir(),
            server,
            Duration::from_secs(60),
        )
        .await;

        out.assert_success("the driven script");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], addr);
        assert_eq!(lines[1], "restart: ok");
        assert!(
            lines[2].starts_with("replica: ok http://127.0.0.1:"),
            "{lines:?}"
        );
        assert_ne!(lines[2].trim_start_matches("replica: ok "), addr);
    }
}
