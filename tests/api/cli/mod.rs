//! The operator CLI (`pulsebus topics|publish|read|tail|consumers|consumer|ack|seek|top|
//! health`) as a real process against a real server, one file per area.

mod errors;
mod payloads;
mod pipe;
mod tail;
mod tls;
mod topic;
mod workflow;

use std::process::Output;

use crate::helpers::*;
use serde_json::Value;
use tokio::process::Command;

/// The `pulsebus` binary with no client settings from the environment.
fn pulsebus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulsebus"));
    for var in [
        "PULSEBUS_SERVER",
        "PULSEBUS_TOKEN",
        "PULSEBUS_CA",
        "PULSEBUS_CLIENT_CERT",
        "PULSEBUS_CLIENT_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `pulsebus <args> --server <bare host:port>` to completion.
async fn run(server: &TestServer, args: &[&str]) -> Output {
    let server = server.addr.to_string();
    tokio::time::timeout(
        WAIT,
        pulsebus().args(args).args(["--server", &server]).output(),
    )
    .await
    .expect("the CLI finishes in time")
    .unwrap()
}

/// Runs a command that must succeed and returns its stdout.
async fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = run(server, args).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command with `--json` that must succeed and returns its JSON lines.
async fn json(server: &TestServer, args: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    ok(server, &args)
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Publishes `n` JSON events of type `t` to `topic` through the API.
async fn seed(server: &TestServer, topic: &str, t: &str, n: usize) {
    let mut client = server.client().await;
    publish(&mut client, topic, events(t, n)).await;
}
