//! `fanout-sweep`: the fanout run at `--sweep-subscribers` (500) live subscribers, at
//! each `--sweep-rates` in turn, per system, to find the highest publish rate whose
//! publish-to-receipt p99 stays under `--sweep-p99` (50 ms) with every event delivered.
//! A system stops climbing at its first rate that misses. Each run is a row; a note per
//! system gives the rate found.

use std::time::Duration;

use super::fanout::one;
use super::{Ctx, labelled, limited};
use crate::report::Row;
use crate::scenarios::publish::reads;
use crate::systems::SystemKind;

/// Whether a run kept every delivery and its p99 under `bound_ms`.
fn held(row: &Row, bound_ms: f64) -> bool {
    !row.failed && row.latency_ms.is_some_and(|[_, p99, _]| p99 < bound_ms)
}

/// Runs the sweep for every system that reads (not the PostgreSQL baselines: one
/// LISTEN connection per subscriber).
pub async fn run(ctx: &mut Ctx) {
    let duration = ctx.settings.duration.unwrap_or(Duration::from_secs(5));
    let (subscribers, bound_ms) = (ctx.settings.sweep_subscribers, ctx.settings.sweep_p99_ms);
    for i in 0..ctx.env.systems.len() {
        let kind = ctx.env.systems[i].kind;
        if !reads(kind) || matches!(kind, SystemKind::Postgres | SystemKind::PostgresNolock) {
            continue;
        }
        let mut best = None;
        for rate in ctx.settings.sweep_rates.clone() {
            let variant = format!("{subscribers} sub @ {rate}/s");
            let limit = duration + ctx.settings.drain_timeout + Duration::from_secs(180);
            let row = limited(limit, one(ctx, i, (subscribers, rate), duration)).await;
            let ok = row.as_ref().is_ok_and(|r| held(r, bound_ms));
            labelled(ctx, i, "fanout-sweep", &variant, row).await;
            if !ok {
                break;
            }
            best = Some(rate);
        }
        let label = ctx.env.systems[i].label();
        let found = best.map_or("none of the rates tried".to_owned(), |r| format!("{r}/s"));
        let note = format!(
            "fanout-sweep {label}: highest rate with p99 < {bound_ms} ms and every event \
             delivered at {subscribers} subscribers: {found}"
        );
        ctx.env.notes.push(note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_holds_only_when_complete_and_under_the_bound() {
        let row = |p99: f64, failed| Row {
            latency_ms: Some([1.0, p99, p99]),
            failed,
            ..Default::default()
        };
        assert!(held(&row(49.0, false), 50.0));
        assert!(!held(&row(50.0, false), 50.0));
        assert!(!held(&row(1.0, true), 50.0));
        assert!(!held(&Row::default(), 50.0));
    }
}
