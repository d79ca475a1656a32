//! The real `pulsebus` binary as a child process, for tests that kill servers, restart
//! them, or measure their memory. With `TEST_LOG` set, each server's log (its stderr)
//! is forwarded to the test's stderr, line by line, prefixed with its pid.

use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};
use tonic::transport::Channel;

use super::{Client, WAIT, test_log};

/// A running `pulsebus serve` and its (JSON) log.
pub struct ServerProcess {
    child: Child,
    log: Option<Lines<BufReader<ChildStderr>>>,
    /// Where it serves, once [`ServerProcess::serving`] returned.
    pub addr: String,
}

/// `pulsebus --log-format json serve --listen 127.0.0.1:0` plus `args`, without any
/// `DATABASE_URL` from the environment.
pub fn serve_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulsebus"));
    cmd.args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

impl ServerProcess {
    /// Starts a server on `database_url` with extra flags and waits until it serves.
    pub async fn on_database(database_url: &str, args: &[&str]) -> Self {
        let all = [&["--database-url", database_url], args].concat();
        Self::start(serve_command(&all)).await
    }

    /// Starts a server with its private PostgreSQL in `data_dir`; waits until it serves.
    pub async fn on_data_dir(data_dir: &Path) -> Self {
        let mut cmd = serve_command(&["--data-dir"]);
        cmd.arg(data_dir);
        Self::start(cmd).await
    }

    /// Starts `cmd` (a [`serve_command`] the test added flags or environment to) and
    /// waits until it serves.
    pub async fn start(cmd: Command) -> Self {
        Self::spawn(cmd).serving().await
    }

    fn spawn(mut cmd: Command) -> Self {
        super::init_test_log();
        let mut child = cmd.spawn().expect("the binary starts");
        let log = BufReader::new(child.stderr.take().unwrap()).lines();
        Self {
            child,
            log: Some(log),
            addr: String::new(),
        }
    }

    /// The next line of the server's log; forwarded to the test's stderr with TEST_LOG.
    async fn next_log_line(log: &mut Lines<BufReader<ChildStderr>>, pid: u32) -> Option<String> {
        let line = log.next_line().await.ok().flatten()?;
        if test_log() {
            eprintln!("[pulsebus {pid}] {line}");
        }
        Some(line)
    }

    /// Waits for the "serving" log line and records the address it names.
    async fn serving(mut self) -> Self {
        let mut log = self.log.take().expect("the log is read once");
        let pid = self.pid();
        let wait = async {
            while let Some(line) = Self::next_log_line(&mut log, pid).await {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["fields"]["message"] == "pulsebus serving" {
                    return json["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("the server exited before serving");
        };
        self.addr = tokio::time::timeout(WAIT, wait)
            .await
            .expect("the server starts in time");
        // Keep draining the log so the server never blocks on a full stderr pipe.
        tokio::spawn(async move { while Self::next_log_line(&mut log, pid).await.is_some() {} });
        self
    }

    /// A connected tonic client.
    pub async fn client(&self) -> Client<Channel> {
        Client::connect(format!("http://{}", self.addr))
            .await
            .expect("client connects")
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Resident memory of the server, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits for the server to exit and returns its exit code (None if killed).
    pub async fn exit_code(mut self) -> Option<i32> {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the server exits in time");
        status.unwrap().code()
    }

    /// SIGKILLs the server and waits for it to be gone.
    pub async fn kill(self) {
        self.signal(Signal::SIGKILL);
        self.exit_code().await;
    }
}
