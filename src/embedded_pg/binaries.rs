//! Where the PostgreSQL binaries are: `PATH`, then `pg_config --bindir`, then
//! Debian/Ubuntu's `/usr/lib/postgresql/<version>/bin`, newest first.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first directory holding both `initdb` and `pg_ctl`, resolved to where `initdb`
/// really is (a directory on `PATH` may hold only symlinks to a few of the programs,
/// and the others, `pg_basebackup` say, are beside the real one).
pub fn find_bin_dir() -> Option<PathBuf> {
    let found = find_tools_dir()?;
    let real = fs::canonicalize(found.join("initdb")).ok();
    Some(
        real.and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(found),
    )
}

fn find_tools_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    from_path
        .chain(from_pg_config)
        .chain(debian_bin_dirs())
        .find(|dir| has_tools(dir))
}

/// `/usr/lib/postgresql/<version>/bin`, newest version first.
fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    dirs.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_found_on_this_machine() {
        assert!(
            find_bin_dir().is_some(),
            "install PostgreSQL to run the tests"
        );
    }
}
