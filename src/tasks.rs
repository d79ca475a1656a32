//! The one cancellation tree of a server: every background task (group-commit
//! flushes, subscriptions, the notification listener, the head refresher, the health
//! probe) runs on one tracker and stops with one token, so shutdown can wait for all of
//! them under one budget.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The server's background tasks and the token that stops them.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` in the tree (it should select on [`Tasks::token`] to stop).
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// The tracker, for components that spawn on it themselves.
    pub fn tracker(&self) -> TaskTracker {
        self.tracker.clone()
    }

    /// A child token: cancelled when the tree is.
    pub fn token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Tells every task to stop (without waiting).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Cancels every task and waits for them until `deadline`; returns whether all
    /// ended in time.
    pub async fn stop(&self, deadline: Instant) -> bool {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// What is left of a budget that ends at `deadline` (zero once it passed).
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
