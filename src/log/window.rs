//! The tail window: the most recently committed records of each topic, kept in memory
//! so live subscribers are served without a query per subscriber per event. Only this
//! process's commits enter it, in offset order; a commit from another replica leaves
//! a gap, which resets the window. Anything not in it is read from PostgreSQL.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{PageRequest, Record, SharedRecord};

/// Default bound on each topic's window.
pub const DEFAULT_WINDOW_RECORDS: usize = 4096;
/// Default bound on each topic's window, in (approximate) bytes.
pub const DEFAULT_WINDOW_BYTES: usize = 8 * 1024 * 1024;

/// A page of records and how far it looked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The records, in offset order.
    pub records: Vec<Arc<SharedRecord>>,
    /// Every offset up to this one was examined (returned, or filtered out by type);
    /// the next page starts after it.
    pub scanned_to: i64,
}

#[derive(Default)]
struct TopicWindow {
    records: VecDeque<Arc<SharedRecord>>,
    bytes: usize,
}

/// Per-topic windows, each bounded by record count and bytes.
pub struct Window {
    topics: Mutex<HashMap<String, TopicWindow>>,
    max_records: usize,
    max_bytes: usize,
}

impl Window {
    /// Windows holding at most `max_records` records and about `max_bytes` per topic.
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        Self {
            topics: Mutex::default(),
            max_records,
            max_bytes,
        }
    }

    /// Adds just-committed records (consecutive offsets, in order).
    pub fn push(&self, topic: &str, records: Vec<Record>) {
        let Some(first) = records.first() else { return };
        let first = first.offset;
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let w = topics.entry(topic.to_owned()).or_default();
        if w.records
            .back()
            .is_some_and(|last| last.record().offset + 1 != first)
        {
            *w = TopicWindow::default();
        }
        for record in records {
            w.bytes += record.approximate_size();
            w.records.push_back(SharedRecord::new(record));
        }
        while w.records.len() > self.max_records
            || (w.bytes > self.max_bytes && w.records.len() > 1)
        {
            let old = w.records.pop_front().expect("non-empty");
            w.bytes -= old.record().approximate_size();
        }
    }

    /// The page `req` asks for, if the window holds its first offset.
    pub fn read(&self, req: &PageRequest<'_>) -> Option<Page> {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let w = topics.get(req.topic)?;
        let first = w.records.front()?.record().offset;
        let last = w.records.back()?.record().offset;
        if req.from < first || req.from > last {
            return None;
        }
        let mut page = Page {
            records: Vec::new(),
            scanned_to: req.from - 1,
        };
        let mut bytes = 0;
        for shared in w.records.range((req.from - first) as usize..) {
            let record = shared.record();
            let full = page.records.len() as i64 >= req.limit || bytes >= req.max_bytes;
            if record.offset > req.to || full {
                break;
            }
            page.scanned_to = record.offset;
            if req.types.is_empty() || req.types.contains(&record.event.event_type) {
                bytes += record.approximate_size();
                page.records.push(Arc::clone(shared));
            }
        }
        Some(page)
    }
}
