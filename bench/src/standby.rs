//! `--pg-sync-standby`: a synchronous streaming standby for the harness's cluster, so
//! that every commit of pulsebus and of the SQL baselines waits for it (issue 16: what
//! synchronous replication costs). The standby runs on the same machine (loopback),
//! so the figures show the protocol's cost, not a network's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pulsebus::embedded_pg::PgCluster;
use sqlx::PgPool;

/// The standby's `application_name` and replication slot.
const NAME: &str = "s1";
/// How long the standby may take to stream and become synchronous.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running standby (stopped when dropped).
pub struct Standby {
    cluster: PgCluster,
}

impl Standby {
    /// Makes and starts a standby of the primary on `primary_port` under `root`, with
    /// the primary's `settings` (a hot standby refuses to start with a lower
    /// `max_connections` than its primary's), waits until it streams, then names it in
    /// `synchronous_standby_names` on the primary.
    pub async fn start(
        root: PathBuf,
        primary_port: u16,
        settings: Vec<(String, String)>,
        admin: &PgPool,
    ) -> Result<Self> {
        let cluster = tokio::task::spawn_blocking(move || {
            let cluster = settings
                .iter()
                .fold(PgCluster::new(&root)?, |c, (name, value)| {
                    c.with_setting(name, value)
                });
            cluster.base_backup_from(primary_port, NAME)?;
            cluster.ensure_running()?;
            Ok::<_, anyhow::Error>(cluster)
        })
        .await??;
        let standby = Self { cluster };
        wait_for(admin, "streaming").await?;
        sqlx::query("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s1)'")
            .execute(admin)
            .await?;
        sqlx::query("SELECT pg_reload_conf()")
            .execute(admin)
            .await?;
        wait_for(admin, "sync").await?;
        Ok(standby)
    }
}

/// Waits until the standby's `pg_stat_replication` row says `state` (`streaming`) or
/// `sync_state` (`sync`).
async fn wait_for(admin: &PgPool, want: &str) -> Result<()> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1",
        )
        .bind(NAME)
        .fetch_optional(admin)
        .await
        .context("read pg_stat_replication")?;
        if found.is_some_and(|(state, sync)| state == want || sync == want) {
            return Ok(());
        }
        if started.elapsed() > READY_WITHIN {
            bail!("the standby is not {want} after {READY_WITHIN:?}");
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.stop() {
            eprintln!("pulsebus-bench: stopping the standby: {e}");
        }
    }
}
