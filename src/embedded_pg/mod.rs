//! A private PostgreSQL cluster run from the machine's own PostgreSQL binaries, so that
//! `pulsebus serve` works with no `DATABASE_URL` and the tests need no database set up.
//!
//! We drive `initdb`/`pg_ctl` ourselves instead of using an embedded-Postgres crate
//! because those download PostgreSQL at build or run time, which fails offline and is
//! not what a Debian/Ubuntu operator expects. PostgreSQL refuses to run as root, so as
//! root every command runs as the unprivileged `postgres` user.
//!
//! Layout under the cluster root: `data/` (the cluster), `run/` (its socket),
//! `postgres.log`, and `setup.lock`, which serialises init/start between processes.

mod binaries;
mod created;
mod instance;
mod reach;

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::unistd::{Uid, User};

use binaries::find_bin_dir;
use created::{Created, create_dirs};
pub use instance::EmbeddedPostgres;
pub use reach::Unreachable;

/// Directories we create when PostgreSQL runs as another user: it must pass through.
const SHARED_DIR_MODE: u32 = 0o755;

/// Why the private PostgreSQL could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No `initdb`/`pg_ctl` anywhere we looked.
    #[error(
        "no PostgreSQL binaries found (looked in PATH, `pg_config --bindir` and \
         /usr/lib/postgresql/*/bin): install them (Debian/Ubuntu: `apt-get install \
         postgresql`) or set DATABASE_URL to an existing PostgreSQL"
    )]
    BinariesNotFound,
    /// Running as root, but there is no unprivileged `postgres` user to run as.
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` user to run it as: \
         create one (`useradd --system postgres`) or set DATABASE_URL"
    )]
    NoPostgresUser,
    /// Running as root, and the `postgres` user cannot reach the cluster directory.
    #[error(
        "PostgreSQL refuses to run as root, so pulsebus runs it as user `{user}`, and \
         `{user}` cannot enter {blocked} (owner {owner}, mode {mode:o}) on the way to \
         {cluster}: pass a --data-dir that `{user}` can reach (e.g. `--data-dir \
         /var/lib/pulsebus`; pulsebus creates it), run pulsebus as a non-root user, or \
         set DATABASE_URL to an existing PostgreSQL",
        user = .found.user,
        blocked = .found.blocked.display(),
        owner = .found.owner,
        mode = .found.mode,
        cluster = .cluster.display()
    )]
    Unreachable {
        /// The cluster directory PostgreSQL would live in.
        cluster: PathBuf,
        /// What blocks it.
        found: Unreachable,
    },
    /// A file-system step failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `initdb`, `pg_ctl` or a helper exited with an error.
    #[error("`{program}` failed: {detail} (PostgreSQL log: {log})")]
    Command {
        /// The program that failed.
        program: String,
        /// Its stderr/stdout, trimmed.
        detail: String,
        /// Where the server log is.
        log: PathBuf,
    },
    /// Another live server holds the data directory.
    #[error(
        "data directory {path} is in use by another pulsebus server: stop it, choose \
         another --data-dir, or run replicas against one PostgreSQL via DATABASE_URL"
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
    },
}

type Result<T> = std::result::Result<T, EmbeddedError>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let path = path.to_path_buf();
    move |source| EmbeddedError::Io {
        action,
        path,
        source,
    }
}

/// A PostgreSQL cluster kept under one directory, started on demand and shareable by
/// several processes (the test harness shares one across all tests).
#[derive(Debug, Clone)]
pub struct PgCluster {
    bin_dir: PathBuf,
    root: PathBuf,
    run_as: Option<User>,
    settings: Vec<(String, String)>,
}

impl PgCluster {
    /// Locates the PostgreSQL binaries and the user to run them as; touches nothing yet.
    pub fn new(root: &Path) -> Result<Self> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::BinariesNotFound)?;
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name("postgres").ok().flatten();
            Some(user.ok_or(EmbeddedError::NoPostgresUser)?)
        } else {
            None
        };
        let root = std::path::absolute(root).map_err(io_err("resolve", root))?;
        Ok(Self {
            bin_dir,
            root,
            run_as,
            settings: Vec::new(),
        })
    }

    /// Adds a server setting (`-c name=value`) used when this process starts the cluster.
    pub fn with_setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The server log, where PostgreSQL's own messages go.
    pub fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// Initialises the cluster if new and starts it if not running (adopting one left
    /// running by a killed process); returns the port it listens on.
    pub fn ensure_running(&self) -> Result<u16> {
        self.check_reachable()?;
        self.prepare_dirs()?;
        let lock_path = self.root.join("setup.lock");
        let lock = File::create(&lock_path).map_err(io_err("create", &lock_path))?;
        lock.lock().map_err(io_err("lock", &lock_path))?;
        if !self.is_initialised() {
            self.initdb()?;
        }
        if let Some(port) = self.running_port() {
            return Ok(port);
        }
        self.start()
    }

    /// Fails with [`EmbeddedError::Unreachable`] when PostgreSQL runs as another user
    /// (we are root) and that user cannot enter a directory on the way to the cluster.
    pub fn check_reachable(&self) -> Result<()> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        reach::check(&self.bin_dir.join("pg_ctl"), user, &self.root).map_err(|found| {
            EmbeddedError::Unreachable {
                cluster: self.root.clone(),
                found,
            }
        })
    }

    /// Whether `initdb` completed here once (an initialised cluster is never removed).
    pub fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").exists()
    }

    /// Stops the cluster (fast shutdown: active sessions are ended, data is safe).
    pub fn stop(&self) -> Result<()> {
        if self.running_port().is_none() {
            return Ok(());
        }
        let data = self.data_dir();
        let out = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
        )?;
        self.check("pg_ctl stop", out)
    }

    /// Makes this (not yet initialised) cluster a streaming standby of the primary on
    /// 127.0.0.1:`primary_port`: `pg_basebackup -X stream -R -C -S <name>`, which
    /// creates replication slot `name` there and writes `primary_conninfo` with
    /// `application_name=<name>`. Start it with [`PgCluster::ensure_running`]. For
    /// test and benchmark clusters.
    pub fn base_backup_from(&self, primary_port: u16, name: &str) -> Result<()> {
        self.check_reachable()?;
        self.prepare_dirs()?;
        let conninfo =
            format!("host=127.0.0.1 port={primary_port} user=postgres application_name={name}");
        let data = self.data_dir();
        let args = [
            "-d",
            &conninfo,
            "-D",
            path_str(&data),
            "-X",
            "stream",
            "-R",
            "-C",
        ];
        let out = self.run("pg_basebackup", &[&args[..], &["-S", name]].concat())?;
        self.check("pg_basebackup", out)
    }

    /// Promotes this standby to primary (`pg_ctl promote -w`).
    pub fn promote(&self) -> Result<()> {
        let data = self.data_dir();
        let out = self.run("pg_ctl", &["promote", "-w", "-D", path_str(&data)])?;
        self.check("pg_ctl promote", out)
    }

    /// The port of the postmaster serving this data directory, if one is alive.
    ///
    /// `pg_ctl status` checks that the pid in `postmaster.pid` is alive, so a stale
    /// file left by a SIGKILL is not mistaken for a running server.
    fn running_port(&self) -> Option<u16> {
        let data = self.data_dir();
        let status = self
            .run("pg_ctl", &["-D", path_str(&data), "status"])
            .ok()?;
        if !status.status.success() {
            return None;
        }
        let pid_file = fs::read_to_string(data.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn prepare_dirs(&self) -> Result<()> {
        let mode = self.run_as.as_ref().map(|_| SHARED_DIR_MODE);
        for dir in [self.root.clone(), self.root.join("run")] {
            create_dirs(&dir, mode).map_err(io_err("create", &dir))?;
            self.give_to_run_as(&dir)?;
        }
        Ok(())
    }

    fn give_to_run_as(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(io_err("chown", path))?;
        }
        Ok(())
    }

    /// Runs `initdb`; if it fails, removes the data directory when it made it.
    fn initdb(&self) -> Result<()> {
        let data = self.data_dir();
        let mut made = Created::default();
        made.note_if_missing(&data);
        let result = self.run_initdb(&data);
        if result.is_err() {
            made.undo();
        }
        result
    }

    fn run_initdb(&self, data: &Path) -> Result<()> {
        tracing::info!(data_dir = %data.display(), "initialising private PostgreSQL cluster");
        let args = [
            "-D",
            path_str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
        ];
        let out = self.run("initdb", &[&args[..], &["--no-instructions"]].concat())?;
        self.check("initdb", out)
    }

    fn start(&self) -> Result<u16> {
        let port = self.port_to_use()?;
        let data = self.data_dir();
        let log = self.log_file();
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}'",
            self.root.join("run").display()
        );
        for (name, value) in &self.settings {
            opts.push_str(&format!(" -c {name}={value}"));
        }
        tracing::info!(port, log = %log.display(), "starting private PostgreSQL");
        let args = [
            "-D",
            path_str(&data),
            "-l",
            path_str(&log),
            "-w",
            "-t",
            "60",
        ];
        let out = self.run("pg_ctl", &[&args[..], &["-o", &opts, "start"]].concat())?;
        self.check("pg_ctl start", out)?;
        let port_file = self.root.join("port");
        fs::write(&port_file, port.to_string()).map_err(io_err("write", &port_file))?;
        Ok(port)
    }

    /// The port of the previous start when it is still free (clients configured with
    /// it reconnect after a restart), else a fresh one.
    fn port_to_use(&self) -> Result<u16> {
        let previous = fs::read_to_string(self.root.join("port"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        if let Some(port) = previous.filter(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok(port);
        }
        free_port().map_err(io_err("pick a free port for", &self.root))
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let path = self.bin_dir.join(program);
        let mut cmd = Command::new(&path);
        cmd.args(args).env("LC_ALL", "C").current_dir(&self.root);
        if let Some(user) = &self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd.output().map_err(io_err("run", &path))
    }

    fn check(&self, program: &str, out: Output) -> Result<()> {
        if out.status.success() {
            return Ok(());
        }
        let text = [out.stderr, out.stdout].concat();
        Err(EmbeddedError::Command {
            program: program.to_owned(),
            detail: String::from_utf8_lossy(&text).trim().to_owned(),
            log: self.log_file(),
        })
    }
}

/// The URL of database `db` on a private cluster listening on `port`.
pub fn cluster_url(port: u16, db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{db}")
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
