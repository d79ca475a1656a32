//! Smoke test: the harness runs publish, catchup and fanout on pulsebus and the
//! PostgreSQL baseline with tiny counts, and prints a table with a row for each. No
//! speed is asserted, and NATS is not needed.
//!
//! The harness spawns the `pulsebus` binary next to itself (target/debug/pulsebus,
//! built by `cargo build` / `cargo nextest run --workspace`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn the_harness_prints_a_row_per_scenario_and_system() {
    let bin = env!("CARGO_BIN_EXE_pulsebus-bench");
    let server = std::path::Path::new(bin).with_file_name("pulsebus");
    assert!(
        server.is_file(),
        "{} is missing: build it first (cargo build -p pulsebus)",
        server.display()
    );
    let mut child = Command::new(bin)
        .args([
            "publish",
            "catchup",
            "fanout",
            "--systems",
            "pulsebus,postgres",
        ])
        .args(["--duration", "1s", "--publishers", "1"])
        .args([
            "--catchup-events",
            "1000",
            "--load-batch",
            "250",
            "--ack-every",
            "100",
        ])
        .args([
            "--subscribers",
            "2",
            "--rate",
            "200",
            "--drain-timeout",
            "30s",
        ])
        .env_remove("NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            // SIGTERM: the harness stops its servers before exiting.
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
            let _ = child.wait();
            panic!("the harness did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "harness failed: {status}\n{out}\n{err}");
    for row in [
        "| publish | 1 pub x 1 evt | pulsebus |",
        "| publish | 1 pub x 1 evt | postgres |",
        "| catchup | 1000 events | pulsebus |",
        "| catchup | 1000 events | postgres |",
        "| fanout | 2 sub @ 200/s | pulsebus |",
        "| fanout | 2 sub @ 200/s | postgres |",
    ] {
        assert!(out.contains(row), "no row {row:?} in:\n{out}\n{err}");
    }
    assert!(!out.contains("FAILED"), "a run failed:\n{out}\n{err}");
    let table_rows = out.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(table_rows, 7, "header plus six rows:\n{out}");
}
