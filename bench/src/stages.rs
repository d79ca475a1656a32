//! `fanout --fanout-stages`: where the time of a delivery goes. pulsebus logs each
//! stage a record passes (`pulsebus::telemetry::stages`: the grouper's flush, the
//! commit, the record queued for a stream, taken by the gRPC stream); the first
//! subscriber of each pulsebus run notes when each record arrived. Lined up by offset
//! on the machine's wall clock, they split every delivery into:
//! - `to flush`: publish call to the grouper's flush (the request on the wire, the
//!   handler, waiting for the group in flight);
//! - `statement`: flush to commit (the SQL statement, its commit and fsync);
//! - `wake+read`: commit to queued (waking the stream, the window read);
//! - `channel`: queued to taken (the stream's channel: HTTP/2 back-pressure);
//! - `send`: taken to received (encoding, HTTP/2 framing and flushing, loopback, the
//!   client's decode).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::stats::{now_nanos, stamp_of, wall_nanos};
use crate::systems::{AckToken, Deliveries};

/// Most receipts kept per run.
const RECEIPTS: usize = 1_000_000;

/// When one record was published and when the subscriber got it (wall-clock ns).
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    offset: i64,
    sent: u64,
    received: u64,
}

/// A subscriber's receipts, shared with the run that reads them.
pub type Receipts = Arc<Mutex<Vec<Receipt>>>;

/// `stream`, noting every record's receipt in `receipts`.
pub fn noted(stream: Deliveries, receipts: Receipts) -> Deliveries {
    stream
        .inspect(move |item| {
            let Ok(d) = item else { return };
            let (AckToken::Offset(offset), Some(sent)) = (&d.token, stamp_of(&d.payload)) else {
                return;
            };
            let mut kept = receipts.lock().unwrap();
            if kept.len() < RECEIPTS {
                kept.push(Receipt {
                    offset: *offset,
                    sent: wall_nanos(sent),
                    received: wall_nanos(now_nanos()),
                });
            }
        })
        .boxed()
}

/// The server's times for one offset.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    flush: u64,
    committed: u64,
    queued: u64,
    taken: u64,
}

/// The stage names, in order.
const STAGES: [&str; 5] = ["to flush", "statement", "wake+read", "channel", "send"];

/// Reads the stage lines of `topic` into times per offset.
fn seen_by_offset(lines: &[String], topic: &str) -> HashMap<i64, Seen> {
    let mut seen: HashMap<i64, Seen> = HashMap::new();
    for line in lines {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = &json["fields"];
        if f["topic"].as_str() != Some(topic) {
            continue;
        }
        let at = f["at_ns"].as_u64().unwrap_or(0);
        match f["stage"].as_str() {
            Some("committed") => {
                let flush = json["span"]["flush_ns"].as_u64().unwrap_or(at);
                let (from, to) = (
                    f["from"].as_i64().unwrap_or(0),
                    f["to"].as_i64().unwrap_or(-1),
                );
                for offset in from..=to {
                    let s = seen.entry(offset).or_default();
                    (s.flush, s.committed) = (flush, at);
                }
            }
            Some("queued") => {
                seen.entry(f["offset"].as_i64().unwrap_or(0))
                    .or_default()
                    .queued = at
            }
            Some("taken") => {
                seen.entry(f["offset"].as_i64().unwrap_or(0))
                    .or_default()
                    .taken = at
            }
            _ => {}
        }
    }
    seen
}

/// One delivery's stages in microseconds, when the server saw every stage.
fn split(r: &Receipt, s: &Seen) -> Option<[f64; 5]> {
    let times = [r.sent, s.flush, s.committed, s.queued, s.taken, r.received];
    if times.contains(&0) {
        return None;
    }
    let us = |a: u64, b: u64| (b as f64 - a as f64) / 1000.0;
    Some(std::array::from_fn(|i| us(times[i], times[i + 1])))
}

/// Notes on the stages of `receipts` for `label`: each stage's p50 and p99 over every
/// delivery, then its mean over the slowest 1 % (by publish-to-receipt time).
pub fn report(label: &str, lines: &[String], topic: &str, receipts: &[Receipt]) -> Vec<String> {
    let seen = seen_by_offset(lines, topic);
    let mut rows: Vec<[f64; 5]> = receipts
        .iter()
        .filter_map(|r| split(r, seen.get(&r.offset)?))
        .collect();
    if rows.is_empty() {
        return vec![format!(
            "{label} stages: no delivery could be lined up with the server's stage log"
        )];
    }
    rows.sort_by(|a, b| a.iter().sum::<f64>().total_cmp(&b.iter().sum::<f64>()));
    let slow = &rows[rows.len() * 99 / 100..];
    let mut notes = vec![format!(
        "{label} stages over {} deliveries (µs; p50 / p99 of each; mean of the slowest {}):",
        rows.len(),
        slow.len()
    )];
    for (i, name) in STAGES.iter().enumerate() {
        let mut col: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        col.sort_by(f64::total_cmp);
        let at = |q: f64| col[((col.len() - 1) as f64 * q) as usize];
        let mean = slow.iter().map(|r| r[i]).sum::<f64>() / slow.len() as f64;
        notes.push(format!(
            "  {name}: {:.0} / {:.0}; slowest: {mean:.0}",
            at(0.5),
            at(0.99)
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stage: &str, fields: &str, at: u64, span: &str) -> String {
        format!(
            r#"{{"level":"TRACE","fields":{{"stage":"{stage}","topic":"t",{fields}"at_ns":{at}}},"target":"pulsebus::stages"{span}}}"#
        )
    }

    #[test]
    fn a_delivery_is_split_into_its_stages_from_the_server_log() {
        let lines = vec![
            line(
                "committed",
                r#""from":1,"to":2,"#,
                300,
                r#","span":{"flush_ns":100,"name":"flush"}"#,
            ),
            line("queued", r#""offset":2,"#, 350, ""),
            line("taken", r#""offset":2,"#, 1350, ""),
            line("queued", r#""offset":1,"#, 340, ""),
        ];
        let receipts = [
            Receipt {
                offset: 2,
                sent: 50,
                received: 3350,
            },
            Receipt {
                offset: 1,
                sent: 50,
                received: 9000,
            },
        ];
        let seen = seen_by_offset(&lines, "t");
        let us = split(&receipts[0], &seen[&2]).unwrap();
        assert_eq!(us, [0.05, 0.2, 0.05, 1.0, 2.0]);
        // Offset 1 was never taken: it cannot be split.
        assert!(split(&receipts[1], &seen[&1]).is_none());
        let notes = report("x", &lines, "t", &receipts);
        assert!(notes[0].contains("over 1 deliveries"), "{notes:?}");
        assert_eq!(notes.len(), 1 + STAGES.len());
    }
}
