//! The live tail: what this process knows about each topic's recent commits, so
//! subscribers at the head are served from memory. The log announces every commit
//! here ([`CommitSink`]); this keeps the heads (to wake streams) and the window of
//! recent records (each shared by every stream that sends it, and encoded once).
//! Commits of other replicas arrive as heads only (through NOTIFY, and the periodic
//! refresh); their records are read from PostgreSQL.

mod heads;
mod refresh;
mod shared;
mod window;

pub use heads::{DELETED, HeadWatch, Heads};
pub use shared::SharedRecord;
pub use window::{
    DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_RECORDS, DEFAULT_WINDOW_TOTAL_BYTES, Page, Window,
};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::log::{CommitSink, EventLog, LogError, PageRequest, Record};
use crate::tasks::Tasks;

/// The heads and the window of one server process.
pub struct Tail {
    heads: Heads,
    window: Window,
    refresh: Notify,
}

impl Tail {
    /// A tail with windows of the default size.
    pub fn new() -> Arc<Self> {
        Self::with_window(Window::new(
            DEFAULT_WINDOW_RECORDS,
            DEFAULT_WINDOW_BYTES,
            DEFAULT_WINDOW_TOTAL_BYTES,
        ))
    }

    /// A tail keeping recent records in `window`.
    pub fn with_window(window: Window) -> Arc<Self> {
        Arc::new(Self {
            heads: Heads::default(),
            window,
            refresh: Notify::new(),
        })
    }

    /// About how many bytes of recent records this process keeps (for the metrics).
    pub fn window_bytes(&self) -> usize {
        self.window.bytes()
    }

    /// The heads of watched topics.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// One page of `req`: from the window when it holds `req.from`, else from
    /// PostgreSQL.
    pub async fn page(&self, log: &EventLog, req: &PageRequest<'_>) -> Result<Page, LogError> {
        if let Some(page) = self.window.read(req) {
            return Ok(page);
        }
        let stored = log.page(req).await?;
        Ok(Page {
            records: stored.records.into_iter().map(SharedRecord::new).collect(),
            scanned_to: stored.scanned_to,
        })
    }

    /// PostgreSQL deleted `topic`'s events up to `through` (the topic itself with
    /// `topic_gone`): memory forgets them (see [`Window::remove_through`]).
    pub fn removed(&self, topic: &str, through: i64, topic_gone: bool) {
        self.window.remove_through(topic, through, topic_gone);
        if topic_gone {
            self.heads.deleted(topic);
        }
    }

    /// Notifications may have been lost (the listener reconnected): forgets every
    /// record in memory, since a removal may have gone unannounced, and re-reads the
    /// heads.
    pub fn resync(&self) {
        self.window.clear();
        self.refresh_now();
    }

    /// Re-reads every watched head now (after notifications may have been lost).
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    /// Starts the refresher: every `every`, and whenever [`Tail::refresh_now`] asks,
    /// one query re-reads the heads of all watched topics.
    pub fn spawn_refresher(self: &Arc<Self>, log: EventLog, every: Duration, tasks: &Tasks) {
        tasks.spawn(refresh::run(Arc::clone(self), log, every, tasks.token()));
    }
}

impl CommitSink for Tail {
    fn committed(&self, topic: &str, records: Vec<Record>) {
        let Some(head) = records.last().map(|r| r.offset) else {
            return;
        };
        self.window.push(topic, records);
        self.heads.advance(topic, head);
    }

    fn deleted(&self, topic: &str, head: i64) {
        self.removed(topic, head, true);
    }
}
