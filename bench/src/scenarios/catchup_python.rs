//! The catch-up replay by a Python grpcio reader: `bench/python/catchup.py` run as a
//! child process, which subscribes with raw grpcio stubs (generated before its clock
//! starts), acks every `--ack-every` records, and prints what it measured as one JSON
//! line. Its own clock is used, so interpreter start-up and stub generation are not
//! counted; its CPU seconds are the row's client CPU.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use super::Outcome;
use crate::systems::Topic;

/// The reader script, next to the harness's sources.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/catchup.py")
}

/// The repository's `proto/`, which the script generates its stubs from.
fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto")
}

/// One replay by the Python reader.
pub struct Run<'a> {
    pub python: &'a Path,
    pub addr: &'a str,
    pub topic: &'a Topic,
    pub consumer: &'a str,
    pub events: u64,
    pub ack_every: u64,
    pub max_in_flight: u32,
    pub batch_records: u32,
}

/// What the reader printed.
pub struct Replayed {
    pub events: u64,
    pub messages: u64,
    pub acks: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
}

impl Replayed {
    pub fn outcome(&self) -> Outcome {
        Outcome {
            events: self.events,
            elapsed: Duration::from_secs_f64(self.seconds),
            note: format!(
                "{} events replayed in {} messages by Python grpcio ({:.1} client CPU s), {} acks",
                self.events, self.messages, self.cpu_seconds, self.acks
            ),
            ..Default::default()
        }
    }
}

impl Run<'_> {
    pub async fn replay(&self) -> Result<Replayed> {
        let out = Command::new(self.python)
            .arg(script())
            .args(["--target", self.addr, "--topic", &self.topic.flat()])
            .args(["--consumer", self.consumer])
            .arg("--proto-dir")
            .arg(proto_dir())
            .args(["--events", &self.events.to_string()])
            .args(["--ack-every", &self.ack_every.to_string()])
            .args(["--max-in-flight", &self.max_in_flight.to_string()])
            .args(["--batch-records", &self.batch_records.to_string()])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {}", self.python.display()))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("the Python reader failed ({}): {stderr}", out.status);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("the Python reader printed {line:?} ({stderr})"))?;
        let int = |k: &str| v[k].as_u64().with_context(|| format!("no {k} in {line}"));
        let float = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {line}"));
        Ok(Replayed {
            events: int("events")?,
            messages: int("messages")?,
            acks: int("acks")?,
            seconds: float("seconds")?,
            cpu_seconds: float("cpu_seconds")?,
        })
    }
}
