//! A directory of a test's own for a PostgreSQL cluster: the private PostgreSQL of a
//! `pulsebus serve --data-dir`, or a cluster the test starts and stops itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pulsebus::embedded_pg::{PgCluster, cluster_url};

/// A fresh directory under `target/tmp/`. Whatever the test's outcome, dropping it stops
/// the PostgreSQL in its `postgres/` (which a SIGKILLed server leaves running) and
/// removes the directory.
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new() -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("data-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        // PostgreSQL may run as another user (when tests run as root).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(path)
    }

    /// The directory, for `--data-dir`.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The cluster in `postgres/`: where `serve --data-dir` keeps its private PostgreSQL,
    /// and where a test starts a cluster of its own (nothing runs until it is started).
    pub fn cluster(&self) -> PgCluster {
        PgCluster::new(&self.0.join("postgres")).expect("PostgreSQL binaries are installed")
    }

    /// The cluster's `postmaster.pid`, present while its PostgreSQL runs.
    pub fn postmaster_pid_file(&self) -> PathBuf {
        self.cluster().data_dir().join("postmaster.pid")
    }

    fn postmaster_pid_line(&self, n: usize) -> String {
        let file = std::fs::read_to_string(self.postmaster_pid_file())
            .expect("the PostgreSQL in the data directory is running");
        file.lines().nth(n).unwrap().trim().to_owned()
    }

    /// The pid of the cluster's postmaster (line 1 of postmaster.pid).
    pub fn postmaster_pid(&self) -> u32 {
        self.postmaster_pid_line(0).parse().unwrap()
    }

    /// The URL of the `pulsebus` database of a server's private PostgreSQL (port: line 4
    /// of postmaster.pid).
    pub fn database_url(&self) -> String {
        cluster_url(self.postmaster_pid_line(3).parse().unwrap(), "pulsebus")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(cluster) = PgCluster::new(&self.0.join("postgres")) {
            let _ = cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
