//! What one start attempt created, so that a first start which fails leaves nothing
//! half-made behind (and the next attempt starts clean).

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Creates `dir` and its missing ancestors (`dir` must be absolute) and returns the
/// ones made here, outermost first. With `mode`, each new directory gets exactly those
/// permission bits whatever the umask, so another user (PostgreSQL's) can pass through.
pub fn create_dirs(dir: &Path, mode: Option<u32>) -> io::Result<Vec<PathBuf>> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    let mut made = Vec::new();
    for new in missing.into_iter().rev() {
        match fs::create_dir(new) {
            Ok(()) => made.push(new.to_path_buf()),
            // Someone else made it in the meantime: theirs, not ours.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        if let Some(mode) = mode {
            fs::set_permissions(new, Permissions::from_mode(mode))?;
        }
    }
    Ok(made)
}

/// Paths created by this attempt, in creation order.
#[derive(Debug, Default)]
pub struct Created(Vec<PathBuf>);

impl Created {
    /// Creates `dir` like [`create_dirs`] and records what it made.
    pub fn dirs(&mut self, dir: &Path, mode: Option<u32>) -> io::Result<()> {
        self.0.extend(create_dirs(dir, mode)?);
        Ok(())
    }

    /// Records `path` as ours if it does not exist yet (the caller creates it next).
    pub fn note_if_missing(&mut self, path: &Path) {
        if !path.exists() {
            self.0.push(path.to_path_buf());
        }
    }

    /// Removes everything recorded, newest first. Best effort: this runs on a path
    /// that already failed, and the first error is the one worth reporting.
    pub fn undo(self) {
        for path in self.0.iter().rev() {
            let removed = if path.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!(path = %path.display(), error = %e, "could not clean up");
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_removes_only_what_was_created_here() {
        let base = tempfile::tempdir().unwrap();
        let kept = base.path().join("kept");
        fs::create_dir(&kept).unwrap();
        let mut created = Created::default();

        created.dirs(&kept.join("a/b"), Some(0o755)).unwrap();
        created.note_if_missing(&kept.join("lock"));
        fs::write(kept.join("lock"), "").unwrap();
        assert_eq!(
            fs::metadata(kept.join("a")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        created.undo();

        assert!(kept.is_dir());
        assert_eq!(fs::read_dir(&kept).unwrap().count(), 0);
    }
}
