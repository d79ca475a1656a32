//! The one table: a row per (scenario, variant, system), with pulsebus's ratios to the
//! baselines on its rows (`pulsebus`, and the work-queue scenario's `pulsebus-shared`
//! and `pulsebus-exclusive`; shared / exclusive on `pulsebus-shared` rows).

use std::fmt::Write;

/// What one (scenario, variant, system) run measured.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub scenario: String,
    pub variant: String,
    pub system: String,
    /// Events per second (published; for catchup, replayed).
    pub rate: Option<f64>,
    /// What the latency measures: "ack" (publish call) or "e2e" (publish start to receipt).
    pub latency_kind: &'static str,
    /// p50, p99, p99.9 in ms.
    pub latency_ms: Option<[f64; 3]>,
    pub wall_s: f64,
    pub server_cpu_s: Option<f64>,
    pub pg_cpu_s: Option<f64>,
    pub bench_cpu_s: Option<f64>,
    /// Both cores together, percent busy.
    pub machine_busy_pct: Option<f64>,
    /// CPU seconds used on the machine by anything else (other processes, the kernel).
    pub other_cpu_s: Option<f64>,
    pub server_peak_mib: Option<f64>,
    pub pg_peak_mib: Option<f64>,
    pub note: String,
    /// The run failed (errors, lost events): the harness exits non-zero.
    pub failed: bool,
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) if v >= 1000.0 => format!("{v:.0}"),
        Some(v) if v >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// pulsebus / baseline: events/s ratio, and p99 ratio for latency.
fn ratio(rows: &[Row], me: &Row, baseline: &str) -> String {
    let Some(base) = rows.iter().find(|r| {
        r.scenario == me.scenario && r.variant == me.variant && r.system == baseline && !r.failed
    }) else {
        return "-".to_owned();
    };
    let thr = match (me.rate, base.rate) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    };
    let lat = match (me.latency_ms, base.latency_ms) {
        (Some(a), Some(b)) if b[1] > 0.0 => format!("{:.1}x", a[1] / b[1]),
        _ => "-".to_owned(),
    };
    format!("{thr} / {lat}")
}

/// The markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | variant | system | events/s | latency | p50 ms | p99 ms | p99.9 ms \
         | wall s | server CPU s | pg CPU s | bench CPU s | other CPU s | machine busy % \
         | server peak MiB | pg peak MiB | pulsebus / postgres (evt/s / p99) \
         | pulsebus / nats-sync (evt/s / p99) | shared / exclusive (evt/s / p99) | notes |\n",
    );
    out.push_str(
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let [p50, p99, p999] = r.latency_ms.map_or([None; 3], |l| l.map(Some));
        let (vs_pg, vs_nats) = if r.system == "pulsebus" || r.system.starts_with("pulsebus-") {
            (ratio(rows, r, "postgres"), ratio(rows, r, "nats-sync"))
        } else {
            (String::new(), String::new())
        };
        let vs_exclusive = if r.system == "pulsebus-shared" {
            ratio(rows, r, "pulsebus-exclusive")
        } else {
            String::new()
        };
        let note = if r.failed {
            format!("**FAILED** {}", r.note)
        } else {
            r.note.clone()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.variant,
            r.system,
            r.rate.map_or("-".to_owned(), |v| format!("{v:.0}")),
            if r.latency_ms.is_some() {
                r.latency_kind
            } else {
                "-"
            },
            num(p50),
            num(p99),
            num(p999),
            r.wall_s,
            num(r.server_cpu_s),
            num(r.pg_cpu_s),
            num(r.bench_cpu_s),
            num(r.other_cpu_s),
            r.machine_busy_pct
                .map_or("-".to_owned(), |v| format!("{v:.0}")),
            num(r.server_peak_mib),
            num(r.pg_peak_mib),
            vs_pg,
            vs_nats,
            vs_exclusive,
            note.replace('|', "/"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, rate: f64, p99: f64) -> Row {
        Row {
            scenario: "publish".into(),
            variant: "1 pub".into(),
            system: system.into(),
            rate: Some(rate),
            latency_kind: "ack",
            latency_ms: Some([1.0, p99, 9.0]),
            ..Default::default()
        }
    }

    #[test]
    fn ratios_land_on_pulsebus_rows() {
        let rows = vec![row("pulsebus", 500.0, 4.0), row("postgres", 1000.0, 2.0)];
        let t = table(&rows);
        assert!(t.contains("| 0.50x / 2.0x |"), "{t}");
        assert_eq!(t.lines().count(), 4);
    }

    #[test]
    fn shared_rows_get_the_exclusive_ratio() {
        let rows = vec![
            row("pulsebus-shared", 300.0, 8.0),
            row("pulsebus-exclusive", 1000.0, 2.0),
            row("nats-sync", 600.0, 4.0),
        ];
        let t = table(&rows);
        let shared = t.lines().find(|l| l.contains("pulsebus-shared")).unwrap();
        assert!(
            shared.contains("| - | 0.50x / 2.0x | 0.30x / 4.0x |"),
            "{t}"
        );
        let exclusive = t
            .lines()
            .find(|l| l.contains("pulsebus-exclusive"))
            .unwrap();
        assert!(exclusive.contains("| - | 1.67x / 0.5x |  |"), "{t}");
    }
}
