//! Server processes the harness starts and always stops: the PostgreSQL cluster, the
//! `pulsebus serve` binary and nats-server. Every guard kills or stops its server when
//! dropped, so an error, a panic or Ctrl-C (which drops the running future) cleans up.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use pulsebus::embedded_pg::PgCluster;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use crate::procs::ProcGroup;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A scratch directory removed on drop (cluster data, NATS stores, configs).
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    /// Creates `parent/pulsebus-bench-<pid>`.
    pub fn create(parent: &Path) -> Result<Self> {
        let dir = parent.join(format!("pulsebus-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL cluster of one run; stopped (fast shutdown) on drop.
pub struct Cluster {
    pub cluster: PgCluster,
    pub port: u16,
}

impl Cluster {
    /// Initialises and starts a cluster under `root` with these `-c` settings.
    pub async fn start(root: PathBuf, settings: Vec<(String, String)>) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            let mut cluster = PgCluster::new(&root)?;
            for (name, value) in &settings {
                cluster = cluster.with_setting(name, value);
            }
            let port = cluster.ensure_running()?;
            Ok::<_, anyhow::Error>(Self { cluster, port })
        })
        .await?
    }

    /// The postmaster, whose children are the whole cluster.
    pub fn group(&self) -> Result<ProcGroup> {
        let pid_file = self.cluster.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)?;
        let pid = text.lines().next().unwrap_or_default().trim().parse()?;
        Ok(ProcGroup::Postmaster(pid))
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        pulsebus::embedded_pg::cluster_url(self.port, db)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.stop() {
            eprintln!("pulsebus-bench: stopping PostgreSQL: {e}");
        }
    }
}

/// Warnings and errors a server logged, to report alongside its numbers.
#[derive(Debug, Default)]
pub struct LogProblems {
    pub count: u64,
    /// How often each kind (level and message) was logged (the first 8 kinds).
    pub kinds: std::collections::BTreeMap<String, u64>,
}

impl LogProblems {
    /// "3x WARN slow statement; 1x ERROR ..." or "" when nothing was logged.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| format!("{n}x {k}"))
            .collect();
        kinds.join("; ")
    }
}

/// A pulsebus JSON log line's level and message, when it is a warning or an error.
fn pulsebus_problem(line: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    let level = json["level"].as_str()?;
    if level != "WARN" && level != "ERROR" {
        return None;
    }
    let f = &json["fields"];
    let mut text = format!("{level} {}", f["message"].as_str().unwrap_or("?"));
    for key in ["error", "summary"] {
        if let Some(v) = f[key].as_str() {
            text.push_str(&format!(
                " ({key}: {})",
                v.chars().take(120).collect::<String>()
            ));
        }
    }
    Some(text)
}

/// A nats-server log line's text, when it is a warning or an error.
fn nats_problem(line: &str) -> Option<String> {
    let (_, rest) = line
        .split_once("[WRN] ")
        .or_else(|| line.split_once("[ERR] "))?;
    let level = if line.contains("[ERR] ") {
        "ERR"
    } else {
        "WRN"
    };
    Some(format!(
        "{level} {}",
        rest.chars().take(150).collect::<String>()
    ))
}

/// A child server process, SIGKILLed on drop, whose stderr is watched for problems.
pub struct ServerProc {
    pub name: &'static str,
    child: Child,
    pub problems: Arc<Mutex<LogProblems>>,
    /// pulsebus's stage trace lines (target `pulsebus::stages`), when it logs them.
    pub stages: StageLines,
}

/// Log lines of pulsebus's delivery stages, at most [`STAGE_LINES`] of them.
pub type StageLines = Arc<Mutex<Vec<String>>>;

/// Most stage lines kept per server (about 300 bytes each).
pub const STAGE_LINES: usize = 2_000_000;

/// The target of pulsebus's delivery stage events (`pulsebus::telemetry::stages`).
const STAGE_TARGET: &str = "\"target\":\"pulsebus::stages\"";

impl ServerProc {
    pub fn group(&self) -> ProcGroup {
        ProcGroup::Pid(self.child.id().unwrap_or(0))
    }

    /// Takes the stage lines logged since the last call.
    pub fn take_stages(&self) -> Vec<String> {
        std::mem::take(&mut *self.stages.lock().unwrap())
    }

    /// Takes (and resets) what the server logged since the last call.
    pub fn take_problems(&self) -> LogProblems {
        std::mem::take(&mut *self.problems.lock().unwrap())
    }

    /// Fails if the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited during the run: {status}", self.name),
            None => Ok(()),
        }
    }
}

fn spawn(name: &'static str, mut cmd: Command) -> Result<(ServerProc, ChildStderr)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let proc = ServerProc {
        name,
        child,
        problems: Arc::default(),
        stages: Arc::default(),
    };
    Ok((proc, stderr))
}

/// Reads the log until `ready` finds what it waits for; then keeps draining it in the
/// background, counting lines that `problem` flags.
async fn watch_log(
    name: &str,
    stderr: ChildStderr,
    (problems, stages): (Arc<Mutex<LogProblems>>, StageLines),
    ready: impl Fn(&str) -> Option<String>,
    problem: fn(&str) -> Option<String>,
) -> Result<String> {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(found) = ready(&line) {
                return Ok(found);
            }
            seen.push(line);
        }
        Err(anyhow!("{name} exited before it was ready"))
    })
    .await
    .map_err(|_| anyhow!("{name} not ready within {START_TIMEOUT:?}"))
    .and_then(|r| r)
    .with_context(|| format!("{name} log:\n{}", seen.join("\n")))?;
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(STAGE_TARGET) {
                let mut kept = stages.lock().unwrap();
                if kept.len() < STAGE_LINES {
                    kept.push(line);
                }
                continue;
            }
            if let Some(kind) = problem(&line) {
                let mut p = problems.lock().unwrap();
                p.count += 1;
                if p.kinds.len() < 8 || p.kinds.contains_key(&kind) {
                    *p.kinds.entry(kind).or_default() += 1;
                }
            }
        }
    });
    Ok(found)
}

/// Starts `pulsebus serve` on `database_url`; returns it and its gRPC address. With
/// `trace_stages` it logs its delivery stages too (kept in [`ServerProc::stages`]).
pub async fn start_pulsebus(
    bin: &Path,
    database_url: &str,
    extra: &[String],
    trace_stages: bool,
) -> Result<(ServerProc, String)> {
    let mut cmd = Command::new(bin);
    if trace_stages {
        cmd.env("RUST_LOG", "info,pulsebus::stages=trace");
    }
    cmd.args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--database-url", database_url])
        .args(extra);
    // Only what we pass configures the server, not the caller's PULSEBUS_* variables.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PULSEBUS_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    let (proc, stderr) = spawn("pulsebus", cmd)?;
    let ready = |line: &str| {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        (json["fields"]["message"] == "pulsebus serving")
            .then(|| json["fields"]["addr"].as_str().map(str::to_owned))
            .flatten()
    };
    let logs = (Arc::clone(&proc.problems), Arc::clone(&proc.stages));
    let addr = watch_log("pulsebus", stderr, logs, ready, pulsebus_problem).await?;
    Ok((proc, addr))
}

/// Starts a JetStream nats-server on a free loopback port with its store in `dir`;
/// `sync_always` makes it fsync before every ack. Returns it and its URL.
pub async fn start_nats(bin: &Path, dir: &Path, sync_always: bool) -> Result<(ServerProc, String)> {
    std::fs::create_dir_all(dir)?;
    let sync = if sync_always {
        "sync_interval: always"
    } else {
        ""
    };
    let conf = format!(
        "host: 127.0.0.1\nport: -1\njetstream {{\n  store_dir: \"{}\"\n  {sync}\n}}\n",
        dir.join("store").display()
    );
    let conf_path = dir.join("nats.conf");
    std::fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf_path);
    let (proc, stderr) = spawn("nats-server", cmd)?;
    let ready = |line: &str| {
        let (_, addr) = line.split_once("Listening for client connections on ")?;
        Some(format!("nats://{}", addr.trim()))
    };
    let logs = (Arc::clone(&proc.problems), Arc::clone(&proc.stages));
    let url = watch_log("nats-server", stderr, logs, ready, nats_problem).await?;
    Ok((proc, url))
}

/// The nats-server to use: the flag, else the project venv, else PATH.
pub fn find_nats_server(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    let venv = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.venv-bench/bin/nats-server"
    ));
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// The pulsebus binary: the flag, else `pulsebus` next to this harness binary.
pub fn find_pulsebus(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("pulsebus");
    if !bin.is_file() {
        bail!(
            "no pulsebus binary at {} (build it: cargo build --release -p pulsebus, or pass --pulsebus-bin)",
            bin.display()
        );
    }
    Ok(bin)
}
