//! Back-off between attempts: exponential with jitter (backon), bounded in delay and,
//! for unary calls, in tries.

use std::time::Duration;

use backon::ExponentialBuilder;

/// How a client waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub min_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// Attempts of a unary call after the first (consumers reconnect without limit).
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    /// 50 ms doubling to 5 s, with jitter; a unary call gives up after 10 retries
    /// (about 30 s of outage).
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            max_retries: 10,
        }
    }
}

impl RetryPolicy {
    /// The back-off for a unary call.
    pub fn unary(&self) -> ExponentialBuilder {
        self.base().with_max_times(self.max_retries)
    }

    /// The back-off between reconnects of a consumer: never gives up.
    pub fn reconnect(&self) -> ExponentialBuilder {
        self.base().without_max_times()
    }

    fn base(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
    }
}
