//! What a publish's commit waits for before pulsebus answers OK.

/// The `synchronous_commit` level pulsebus pins on every one of its sessions, so that
/// a role or database default cannot weaken it. `off` is not offered: an OK must mean
/// the event is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncCommit {
    /// The primary's own disk only: a failover to a standby can lose acknowledged
    /// publishes even with `synchronous_standby_names` set.
    Local,
    /// A synchronous standby has received and written the commit (not flushed it).
    #[value(name = "remote_write")]
    RemoteWrite,
    /// A synchronous standby has flushed the commit to its disk (PostgreSQL's default).
    On,
    /// A synchronous standby has flushed and applied it (visible to reads there).
    #[value(name = "remote_apply")]
    RemoteApply,
}

impl SyncCommit {
    /// The value PostgreSQL's `synchronous_commit` takes.
    pub fn as_setting(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::RemoteWrite => "remote_write",
            Self::On => "on",
            Self::RemoteApply => "remote_apply",
        }
    }

    /// Whether a commit at this level waits for a synchronous standby (when
    /// `synchronous_standby_names` names one).
    pub fn waits_for_standby(self) -> bool {
        self != Self::Local
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn the_flag_takes_postgresqls_own_spelling() {
        for level in SyncCommit::value_variants() {
            let name = level.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(name, level.as_setting());
        }
    }

    #[test]
    fn only_local_commits_skip_the_standby() {
        let waiting: Vec<_> = [
            SyncCommit::Local,
            SyncCommit::RemoteWrite,
            SyncCommit::On,
            SyncCommit::RemoteApply,
        ]
        .into_iter()
        .filter(|level| level.waits_for_standby())
        .map(SyncCommit::as_setting)
        .collect();
        assert_eq!(waiting, ["remote_write", "on", "remote_apply"]);
    }
}
