//! The private PostgreSQL of one `pulsebus serve`, in its data directory.

use std::fs::File;
use std::path::Path;

use super::created::Created;
use super::{EmbeddedError, PgCluster, Result, SHARED_DIR_MODE, cluster_url, io_err};

/// The private PostgreSQL of one `pulsebus serve`: the data directory is locked for
/// this process's lifetime (the OS drops the lock if the process dies, even by
/// SIGKILL), so a second server on it fails clearly instead of fighting over it.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    cluster: PgCluster,
    port: u16,
    _owner: File,
}

impl EmbeddedPostgres {
    /// Takes the data directory and makes sure its cluster runs.
    ///
    /// Nothing is created before the checks that can be made up front (binaries, the
    /// `postgres` user, reachability); if initialising a new cluster fails anyway,
    /// what this call created is removed again. An initialised cluster is never removed.
    pub fn start(data_dir: &Path) -> Result<Self> {
        let data_dir = std::path::absolute(data_dir).map_err(io_err("resolve", data_dir))?;
        let cluster = PgCluster::new(&data_dir.join("postgres"))?;
        cluster.check_reachable()?;
        let mut created = Created::default();
        let result = Self::take_and_start(&data_dir, cluster.clone(), &mut created);
        match &result {
            Err(EmbeddedError::InUse { .. }) => {} // the live owner's, not ours to touch
            Err(_) if !cluster.is_initialised() => created.undo(),
            _ => {}
        }
        result
    }

    fn take_and_start(data_dir: &Path, cluster: PgCluster, created: &mut Created) -> Result<Self> {
        let mode = cluster.run_as.as_ref().map(|_| SHARED_DIR_MODE);
        created
            .dirs(data_dir, mode)
            .map_err(io_err("create", data_dir))?;
        let owner_path = data_dir.join("server.lock");
        created.note_if_missing(&owner_path);
        let owner = File::create(&owner_path).map_err(io_err("create", &owner_path))?;
        if owner.try_lock().is_err() {
            return Err(EmbeddedError::InUse {
                path: data_dir.to_path_buf(),
            });
        }
        created.note_if_missing(&cluster.root);
        let port = cluster.ensure_running()?;
        Ok(Self {
            cluster,
            port,
            _owner: owner,
        })
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for the `postgres` database of this cluster.
    pub fn database_url(&self) -> String {
        cluster_url(self.port, "postgres")
    }

    /// Stops the cluster; called on graceful shutdown.
    pub fn stop(&self) -> Result<()> {
        tracing::info!("stopping private PostgreSQL");
        self.cluster.stop()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_second_server_on_the_same_data_dir_is_refused_while_the_first_lives() {
        let dir = tempfile::tempdir().unwrap();
        // Reachable for the `postgres` user when the tests run as root.
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        let lock = File::create(dir.path().join("server.lock")).unwrap();
        lock.try_lock().unwrap();
        let err = EmbeddedPostgres::start(dir.path()).unwrap_err();
        assert!(matches!(err, EmbeddedError::InUse { .. }), "{err}");
    }
}
