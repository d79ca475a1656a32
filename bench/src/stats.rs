//! Latency bookkeeping: send timestamps embedded in payloads, and histograms.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;

/// The common clock: every timestamp is nanoseconds since this instant. Publishers and
/// subscribers live in this one process, so a monotonic base is exact. Also the wall
/// clock at that instant (nanoseconds since the Unix epoch).
fn base() -> (Instant, u64) {
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    *BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (Instant::now(), wall)
    })
}

/// Nanoseconds since the common base.
pub fn now_nanos() -> u64 {
    base().0.elapsed().as_nanos() as u64
}

/// A stamp as wall-clock nanoseconds since the Unix epoch, to line it up with a
/// server's timestamps on this machine.
pub fn wall_nanos(stamp: u64) -> u64 {
    base().1 + stamp
}

/// A payload of `size` bytes (at least 8) whose first 8 bytes are the send time.
pub fn stamped(size: usize, at: u64) -> Bytes {
    let mut buf = BytesMut::zeroed(size.max(8));
    buf[..8].copy_from_slice(&at.to_le_bytes());
    for (i, b) in buf[8..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    buf.freeze()
}

/// The send time stamped into `payload`, if it has one.
pub fn stamp_of(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?))
}

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    /// Records the time from `sent` (a stamp) until now.
    pub fn record_since(&mut self, sent: u64) {
        let micros = now_nanos().saturating_sub(sent) / 1000;
        self.0.saturating_record(micros.max(1));
    }

    /// Records the payload's age, if it carries a stamp.
    pub fn record_payload(&mut self, payload: &[u8]) {
        if let Some(sent) = stamp_of(payload) {
            self.record_since(sent);
        }
    }

    /// Records one duration `n` times (a batch acknowledged by one call).
    pub fn record_n(&mut self, took: Duration, n: u64) {
        let micros = (took.as_micros() as u64).max(1);
        let _ = self.0.record_n(micros.min(600_000_000), n);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }

    /// p50, p99 and p99.9 in milliseconds (None when empty).
    pub fn percentiles_ms(&self) -> Option<[f64; 3]> {
        if self.0.is_empty() {
            return None;
        }
        let at = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        Some([at(0.50), at(0.99), at(0.999)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let p = stamped(1024, 123_456_789);
        assert_eq!(p.len(), 1024);
        assert_eq!(stamp_of(&p), Some(123_456_789));
        assert_eq!(stamp_of(&[1, 2]), None);
    }

    #[test]
    fn percentiles_in_ms() {
        let mut l = Latencies::default();
        l.record_n(Duration::from_millis(2), 100);
        let [p50, p99, _] = l.percentiles_ms().unwrap();
        assert!((p50 - 2.0).abs() < 0.01 && (p99 - 2.0).abs() < 0.01);
    }
}
