//! The LISTEN side of the doorbells: one connection per server process turns NOTIFYs
//! from every replica into in-process wake-ups. A notification is only a hint: after a
//! reconnect every watched head is re-read, and the tail's refresher re-reads them every
//! heartbeat interval anyway, so a lost notification costs latency, never an event.
//! Removal notices are the exception that cannot be re-read: after a reconnect the tail
//! window is cleared instead, so a removal nobody heard of is not served from memory.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::postgres::{PgListener, PgNotification};
use tokio_util::sync::CancellationToken;

use super::signals::Signals;
use super::tail::Tail;
use crate::log::{CHANNELS, EventLog, Notice, parse_notice};

/// Pauses between attempts while the database is unreachable: from 100 ms, doubling
/// up to this, with jitter so replicas do not reconnect in step.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(MAX_RECONNECT_DELAY)
        .without_max_times()
        .with_jitter()
        .build()
}

/// Runs until `token` is cancelled, reconnecting as needed.
pub async fn run(log: EventLog, tail: Arc<Tail>, signals: Arc<Signals>, token: CancellationToken) {
    let mut delays = reconnect_delays();
    while !token.is_cancelled() {
        match listen(&log).await {
            Ok(listener) => {
                delays = reconnect_delays();
                serve(listener, &tail, &signals, &token).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for notifications; retrying"),
        }
        let delay = delays.next().unwrap_or(MAX_RECONNECT_DELAY);
        tokio::select! {
            _ = token.cancelled() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn listen(log: &EventLog) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(log.pool()).await?;
    listener.ignore_pool_close_event(false);
    listener.listen_all(CHANNELS).await?;
    Ok(listener)
}

/// Dispatches notifications until the listener fails or the token is cancelled.
async fn serve(
    mut listener: PgListener,
    tail: &Tail,
    signals: &Signals,
    token: &CancellationToken,
) {
    tail.resync();
    loop {
        let next = tokio::select! {
            _ = token.cancelled() => return,
            next = listener.try_recv() => next,
        };
        match next {
            Ok(Some(n)) => dispatch(&n, tail, signals),
            // The connection dropped and was re-established: notifications sent in
            // between are lost, so re-read what they would have told us.
            Ok(None) => tail.resync(),
            Err(e) => {
                tracing::warn!(error = %e, "notification listener failed; reconnecting");
                return;
            }
        }
    }
}

fn dispatch(n: &PgNotification, tail: &Tail, signals: &Signals) {
    match parse_notice(n.channel(), n.payload()) {
        Some(Notice::Head { topic, head }) => tail.heads().advance(&topic, head),
        Some(Notice::Consumer {
            topic,
            consumer,
            position,
        }) => signals.moved(&topic, &consumer, position),
        Some(Notice::Released { topic, consumer }) => signals.released(&topic, &consumer),
        Some(Notice::Settled { topic, consumer }) => signals.settled(&topic, &consumer),
        Some(Notice::Removed {
            topic,
            through,
            topic_gone,
        }) => tail.removed(&topic, through, topic_gone),
        None => tracing::warn!(
            channel = n.channel(),
            payload = n.payload(),
            "unexpected notification"
        ),
    }
}
