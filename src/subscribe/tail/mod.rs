//! The live tail: what this process knows about each topic's recent commits, so
//! subscribers at the head are served from memory. The log announces every commit
//! here ([`CommitSink`]); this keeps the heads (to wake streams) and the window of
//! recent records (each shared by every stream that sends it, and encoded once).
//! Commits of other replicas arrive as heads only (through NOTIFY, and the periodic
//! refresh); their records are read from PostgreSQL, and subscribers behind the window
//! share those reads ([`Catchup`]).

mod catchup;
mod heads;
mod refresh;
mod shared;
#[cfg(test)]
mod test_records;
mod window;

pub use catchup::{Catchup, DEFAULT_CACHE_BYTES, RUN_BYTES, RUN_RECORDS, Run};
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
    catchup: Catchup,
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
        Self::with(window, Catchup::new(DEFAULT_CACHE_BYTES))
    }

    /// A tail keeping recent records in `window` and shared catch-up reads in
    /// `catchup`.
    pub fn with(window: Window, catchup: Catchup) -> Arc<Self> {
        Arc::new(Self {
            heads: Heads::default(),
            window,
            catchup,
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

    /// One page of `req`: from the window when it holds `req.from`, else from a
    /// shared catch-up read, else from PostgreSQL on its own.
    pub async fn page(&self, log: &EventLog, req: &PageRequest<'_>) -> Result<Page, LogError> {
        if let Some(page) = self.window.read(req) {
            return Ok(page);
        }
        // A lone stream of the topic has nobody to share with, and keeping its reads
        // costs it (a third more CPU per record in `pulsebus-bench catchup`).
        if self.heads.watchers(req.topic) > 1 {
            let shared = |start, to| read_run(log, req.topic, start, to);
            if let Some(page) = self.catchup.page(req, shared).await {
                return page;
            }
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
        self.catchup.removed(topic);
        if topic_gone {
            self.heads.deleted(topic);
        }
    }

    /// Notifications may have been lost (the listener reconnected): forgets every
    /// record in memory, since a removal may have gone unannounced, and re-reads the
    /// heads.
    pub fn resync(&self) {
        self.window.clear();
        self.catchup.clear();
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

/// Reads the aligned run from `start` (up to `to` and the end of the run's alignment)
/// from PostgreSQL, for every subscriber passing through it.
async fn read_run(log: &EventLog, topic: &str, start: i64, to: i64) -> Result<Run, LogError> {
    let room = RUN_RECORDS - (start - 1).rem_euclid(RUN_RECORDS);
    let req = PageRequest {
        topic,
        from: start,
        to: to.min(start + room - 1),
        types: &[],
        limit: room,
        max_bytes: RUN_BYTES,
    };
    let page = log.page(&req).await?;
    let records = page.records.into_iter().map(SharedRecord::new).collect();
    Ok(Run::new(start, page.scanned_to, records))
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
