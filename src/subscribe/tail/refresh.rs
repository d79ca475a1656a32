//! The safety net for lost notifications, in one place: every interval one query
//! re-reads the heads of all topics this process watches, however many streams watch
//! them (per-stream polling would cost a query per stream per interval).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Tail;
use crate::log::EventLog;

/// Refreshes until `token` is cancelled.
pub async fn run(tail: Arc<Tail>, log: EventLog, every: Duration, token: CancellationToken) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
            _ = tail.refresh.notified() => {}
        }
        refresh(&tail, &log).await;
    }
}

async fn refresh(tail: &Tail, log: &EventLog) {
    let topics = tail.heads.watched();
    if topics.is_empty() {
        return;
    }
    match log.heads_of(&topics).await {
        Ok(heads) => {
            for (topic, head) in heads {
                tail.heads.advance(&topic, head);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot re-read topic heads; retrying next interval"),
    }
}
