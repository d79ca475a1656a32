//! Whether an acknowledged publish survives a failover: what PostgreSQL's replication
//! settings promise for pulsebus's commits, read at start and by the health probe.
//!
//! A commit waits for a synchronous standby only when `synchronous_standby_names`
//! names one and the session's `synchronous_commit` is above `local`. Without that, a
//! standby promoted after the primary's loss may lack publishes pulsebus answered OK,
//! and its next publishes take their offsets again.

use sqlx::PgPool;

/// What PostgreSQL's settings say about pulsebus's commits, as its sessions see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// `synchronous_commit` of pulsebus's sessions (pinned, see [`super::session`]).
    pub synchronous_commit: String,
    /// `synchronous_standby_names`; empty when no standby is synchronous.
    pub standby_names: String,
    /// Synchronous standbys streaming now (`pg_stat_replication`), when pulsebus's
    /// role may see them (superuser or `pg_read_all_stats`); `None` otherwise.
    pub streaming: Option<i64>,
}

/// Whether acknowledged publishes survive a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit waits for a synchronous standby before pulsebus answers OK.
    AcrossFailover,
    /// Only the primary holds an acknowledged publish; the reason says which setting.
    PrimaryOnly(&'static str),
}

const READ: &str = "SELECT current_setting('synchronous_commit'), \
    current_setting('synchronous_standby_names'), \
    (SELECT count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')) FROM pg_stat_replication), \
    pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')";

impl Replication {
    /// Reads the settings on one of the pool's sessions.
    pub async fn read(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let (synchronous_commit, standby_names, streaming, visible): (String, String, i64, bool) =
            sqlx::query_as(READ).fetch_one(pool).await?;
        Ok(Self {
            synchronous_commit,
            standby_names,
            streaming: visible.then_some(streaming),
        })
    }

    /// What the settings promise.
    pub fn durability(&self) -> Durability {
        if self.standby_names.trim().is_empty() {
            return Durability::PrimaryOnly(
                "synchronous_standby_names is empty, so commits wait for no standby",
            );
        }
        if matches!(self.synchronous_commit.as_str(), "local" | "off") {
            return Durability::PrimaryOnly(
                "synchronous_commit is local, so commits wait for no standby",
            );
        }
        Durability::AcrossFailover
    }

    /// Whether publishes can be answered now without losing that promise: durable, and
    /// a synchronous standby streams (or pulsebus cannot see, so assumes it does).
    pub fn healthy(&self) -> bool {
        self.durability() == Durability::AcrossFailover && self.streaming != Some(0)
    }

    /// Logs what the settings promise, plainly: a warning when acknowledged publishes
    /// would not survive a failover, or when no synchronous standby streams.
    pub fn log(&self) {
        let (commit, names) = (&self.synchronous_commit, &self.standby_names);
        match self.durability() {
            Durability::PrimaryOnly(reason) => tracing::warn!(
                synchronous_commit = %commit,
                synchronous_standby_names = %names,
                "acknowledged publishes are NOT durable across a PostgreSQL failover: {reason}; \
                 a standby promoted after the primary's loss may lack them and reuse their \
                 offsets. Set synchronous_standby_names on the primary (README \"Running with \
                 PostgreSQL HA\"), or pass --require-sync-replication to refuse to start"
            ),
            Durability::AcrossFailover if self.streaming == Some(0) => tracing::warn!(
                synchronous_commit = %commit,
                synchronous_standby_names = %names,
                "no synchronous standby is streaming: publishes wait, unanswered, until one \
                 connects"
            ),
            Durability::AcrossFailover => tracing::info!(
                synchronous_commit = %commit,
                synchronous_standby_names = %names,
                streaming = ?self.streaming,
                "acknowledged publishes wait for a synchronous standby"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replication(commit: &str, names: &str, streaming: Option<i64>) -> Replication {
        Replication {
            synchronous_commit: commit.to_owned(),
            standby_names: names.to_owned(),
            streaming,
        }
    }

    #[test]
    fn commits_survive_a_failover_only_with_a_named_standby_and_a_waiting_level() {
        for commit in ["on", "remote_write", "remote_apply"] {
            let r = replication(commit, "FIRST 1 (s1)", Some(1));
            assert_eq!(r.durability(), Durability::AcrossFailover, "{commit}");
        }
        for (commit, names) in [("on", ""), ("on", "  "), ("local", "s1"), ("off", "s1")] {
            let r = replication(commit, names, Some(1));
            assert!(
                matches!(r.durability(), Durability::PrimaryOnly(_)),
                "{commit} {names:?}"
            );
        }
    }

    #[test]
    fn a_named_standby_that_does_not_stream_is_unhealthy_unless_unseen() {
        assert!(!replication("on", "s1", Some(0)).healthy());
        assert!(replication("on", "s1", None).healthy());
        assert!(replication("on", "s1", Some(1)).healthy());
        assert!(!replication("on", "", None).healthy());
    }
}
