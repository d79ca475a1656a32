//! Smoke tests: the harness runs publish, catchup and fanout on pulsebus and the
//! PostgreSQL baseline, and work-queue and growth on pulsebus, with tiny counts, and
//! prints a table with a row for each. No speed is asserted, and NATS is not needed.
//!
//! The harness spawns the `pulsebus` binary next to itself (target/debug/pulsebus,
//! built by `cargo build` / `cargo nextest run --workspace`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LIMIT: Duration = Duration::from_secs(300);

/// Runs the harness with `args` (no NATS), fails the test if it fails or takes longer
/// than [`LIMIT`], and returns what it printed on stdout.
fn run_harness(args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_pulsebus-bench");
    let server = std::path::Path::new(bin).with_file_name("pulsebus");
    assert!(
        server.is_file(),
        "{} is missing: build it first (cargo build -p pulsebus)",
        server.display()
    );
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness starts");
    // Read the pipes while it runs, so a full pipe cannot stall it.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            // SIGTERM: the harness stops its servers before exiting.
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
            let _ = child.wait();
            panic!(
                "the harness did not finish within {LIMIT:?}\n{}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "harness failed: {status}\n{out}\n{err}");
    assert!(!out.contains("FAILED"), "a run failed:\n{out}\n{err}");
    out
}

#[test]
fn the_harness_prints_a_row_per_scenario_and_system() {
    let out = run_harness(&[
        "publish",
        "catchup",
        "fanout",
        "--systems",
        "pulsebus,postgres",
        "--duration",
        "1s",
        "--publishers",
        "1",
        "--catchup-events",
        "1000",
        "--load-batch",
        "250",
        "--ack-every",
        "100",
        "--subscribers",
        "2",
        "--rate",
        "200",
        "--drain-timeout",
        "30s",
    ]);
    for row in [
        "| publish | 1 pub x 1 evt | pulsebus |",
        "| publish | 1 pub x 1 evt | postgres |",
        "| catchup | 1000 events | pulsebus |",
        "| catchup | 1000 events | postgres |",
        "| fanout | 2 sub @ 200/s | pulsebus |",
        "| fanout | 2 sub @ 200/s | postgres |",
    ] {
        assert!(out.contains(row), "no row {row:?} in:\n{out}");
    }
    let table_rows = out.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(table_rows, 7, "header plus six rows:\n{out}");
}

/// work-queue on pulsebus (shared on two servers, and exclusive) with a tiny backlog:
/// a drain row and a keep-up row each, with the statement counts that need
/// pg_stat_statements in the harness's cluster.
#[test]
fn the_work_queue_scenario_prints_its_rows() {
    let out = run_harness(&[
        "work-queue",
        "--systems",
        "pulsebus,postgres",
        "--wq-backlog",
        "400",
        "--load-batch",
        "100",
        "--wq-rate",
        "100",
        "--duration",
        "2s",
        "--wq-timeout",
        "120s",
    ]);
    for row in [
        "| work-queue | drain 400 (+100/s) | pulsebus-shared |",
        "| work-queue | drain 400 (+100/s) | pulsebus-exclusive |",
        "| work-queue | drain 400 (+100/s) | postgres |",
        "| work-queue | keep up 100/s | pulsebus-shared |",
        "| work-queue | keep up 100/s | pulsebus-exclusive |",
    ] {
        assert!(out.contains(row), "no row {row:?} in:\n{out}");
    }
    let shared = out
        .lines()
        .find(|l| l.contains("| drain 400 (+100/s) | pulsebus-shared |"))
        .unwrap();
    assert!(
        shared.contains("statements per record: drain ") && !shared.contains("drain -,"),
        "pg_stat_statements counted the shared run's statements: {shared}"
    );
    let table_rows = out.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(table_rows, 6, "header plus five rows:\n{out}");
}

/// growth on pulsebus with tiny sizes and two layouts: a row per probe on the empty
/// table and at each size, the table sizes at each step, and the tables emptied after
/// each layout. Only the rows are checked, never a speed.
#[test]
fn the_growth_scenario_prints_a_row_per_probe_and_size() {
    let out = run_harness(&[
        "growth",
        "--systems",
        "pulsebus",
        "--growth-sizes",
        "2000,5000",
        "--growth-topics",
        "1,3",
        "--growth-catchup-events",
        "500",
        "--growth-probe",
        "300ms",
        "--growth-consumers",
        "10",
        "--load-batch",
        "250",
        "--ack-every",
        "100",
    ]);
    let probes = [
        "publish 1 |",
        "publish 32 |",
        "catch-up from 1 |",
        "catch-up from middle (",
        "Read deep |",
        "start by time |",
        "ListConsumers |",
    ];
    for layout in ["1 topic", "3 topics"] {
        for size in ["empty (1k)", "2k", "5k"] {
            for probe in probes {
                let row = format!("| growth | {layout} @ {size}: {probe}");
                assert!(out.contains(&row), "no row {row:?} in:\n{out}");
            }
        }
        let at_5k = format!("| growth | {layout} @ 5k: Read deep |");
        let line = out.lines().find(|l| l.starts_with(&at_5k)).unwrap();
        assert!(line.contains("vs empty: rate "), "{line}");
        assert!(
            out.contains(&format!("- growth {layout} @ 5k: ")) && out.contains("bytes per event"),
            "table sizes in the notes:\n{out}"
        );
        assert!(
            out.contains(&format!("- growth {layout}: emptied pulsebus's tables")),
            "{out}"
        );
    }
    let table_rows = out.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(
        table_rows,
        1 + 2 * 3 * probes.len(),
        "header plus 42 rows:\n{out}"
    );
}
