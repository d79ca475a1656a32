//! Can the user PostgreSQL runs as reach the cluster directory? As root, PostgreSQL runs
//! as `postgres`, which cannot enter a mode-700 directory such as root's home or a
//! `mktemp -d` folder; without this check `initdb` fails with a bare
//! "Permission denied" that names neither the user nor the directory.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Uid, User};

/// A directory on the way to the cluster that the PostgreSQL user cannot enter.
#[derive(Debug)]
pub struct Unreachable {
    /// The user PostgreSQL runs as.
    pub user: String,
    /// The first directory (from `/` down) that user cannot enter.
    pub blocked: PathBuf,
    /// Its owner and permission bits, for the message.
    pub owner: String,
    /// Its permission bits.
    pub mode: u32,
}

/// Checks that `user` can enter every existing directory from `/` down to `target`
/// (or its deepest existing ancestor: what does not exist yet, we create reachable).
///
/// The check is the kernel's own: a child runs as `user` (exactly as `initdb` and
/// `pg_ctl` will, with the same uid and gid) in each directory, so ACLs and group
/// bits count. `probe` is any program that user may run (`pg_ctl`).
pub fn check(probe: &Path, user: &User, target: &Path) -> Result<(), Unreachable> {
    let Some(deepest) = target.ancestors().find(|dir| dir.is_dir()) else {
        return Ok(());
    };
    if can_enter(probe, user, deepest) {
        return Ok(());
    }
    let mut chain: Vec<&Path> = deepest.ancestors().collect();
    chain.reverse();
    let blocked = chain
        .into_iter()
        .find(|dir| !can_enter(probe, user, dir))
        .unwrap_or(deepest);
    let meta = std::fs::metadata(blocked).ok();
    Err(Unreachable {
        user: user.name.clone(),
        blocked: blocked.to_path_buf(),
        owner: meta
            .as_ref()
            .map_or_else(String::new, |m| owner_name(m.uid())),
        mode: meta.map_or(0, |m| m.mode() & 0o7777),
    })
}

/// Whether a process running as `user` can make `dir` its working directory.
fn can_enter(probe: &Path, user: &User, dir: &Path) -> bool {
    let spawned = Command::new(probe)
        .arg("--version")
        .current_dir(dir)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // Only a refused chdir counts; any other oddity is left to the real commands.
    !matches!(spawned, Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied)
}

fn owner_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}
