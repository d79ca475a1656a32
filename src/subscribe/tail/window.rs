//! The tail window: the most recently committed records of each topic, kept in memory
//! so live subscribers are served without a query per subscriber per event. Only this
//! process's commits enter it, in offset order; a commit from another replica leaves
//! a gap, which resets the topic's window. Anything not in it is read from PostgreSQL.
//!
//! Deleted events leave it too ([`Window::remove_through`], on every replica, from the
//! `pulsebus_removed` NOTIFY): see that method for why nothing removed is served after.
//!
//! Bounded twice: per topic (records and bytes), and in total across topics, so the
//! number of topics does not multiply the memory. Over the total, the records
//! committed longest ago go first, whichever topic holds them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::SharedRecord;
use crate::log::{PageRequest, Record};

/// Default bound on each topic's window.
pub const DEFAULT_WINDOW_RECORDS: usize = 4096;
/// Default bound on each topic's window, in (approximate) bytes, counting each record
/// and its wire encoding (4096 records of 1 KiB fit).
pub const DEFAULT_WINDOW_BYTES: usize = 16 * 1024 * 1024;
/// Default bound on all topics' windows together, in (approximate) bytes, counted the
/// same way.
pub const DEFAULT_WINDOW_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// Most topics whose removal floor is remembered (see [`Window::remove_through`]); past
/// it the floors are all forgotten at once, which only reopens the microseconds-wide
/// race they close, never serves a record removed before.
const MAX_FLOORS: usize = 4096;

/// A page of records and how far it looked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The records, in offset order.
    pub records: Vec<Arc<SharedRecord>>,
    /// Every offset up to this one was examined (returned, or filtered out by type);
    /// the next page starts after it.
    pub scanned_to: i64,
}

/// What a record in the window may hold in memory: the record, and its wire encoding
/// once a subscriber sent it (`SharedRecord::wire`), about as large again.
fn footprint(record: &Record) -> usize {
    2 * record.approximate_size()
}

#[derive(Default)]
struct TopicWindow {
    records: VecDeque<Arc<SharedRecord>>,
    bytes: usize,
}

impl TopicWindow {
    fn front_offset(&self) -> Option<i64> {
        self.records.front().map(|r| r.record().offset)
    }

    /// Drops the oldest record; returns its size.
    fn pop(&mut self) -> usize {
        let old = self.records.pop_front().expect("a non-empty window");
        let size = footprint(old.record());
        self.bytes -= size;
        size
    }
}

/// The windows and the order their records arrived in, across topics.
#[derive(Default)]
struct Windows {
    topics: HashMap<Arc<str>, TopicWindow>,
    /// (topic, offset) of every record pushed, oldest first; entries whose record
    /// already left (trimmed per topic, or reset) are skipped and compacted away.
    arrivals: VecDeque<(Arc<str>, i64)>,
    /// Per topic, the highest offset announced as removed: a push at or below it is a
    /// record committed before the delete whose announcement came late, and is dropped.
    floors: HashMap<Arc<str>, i64>,
    records: usize,
    bytes: usize,
}

impl Windows {
    fn is_live(&self, (topic, offset): &(Arc<str>, i64)) -> bool {
        let front = self.topics.get(topic).and_then(TopicWindow::front_offset);
        front.is_some_and(|front| front <= *offset)
    }

    /// The topic's shared name; its window emptied first unless `first` follows its
    /// last record (a gap means another replica committed in between).
    fn reset_unless_follows(&mut self, topic: &str, first: i64) -> Arc<str> {
        let Some((name, w)) = self.topics.get_key_value(topic) else {
            let name: Arc<str> = Arc::from(topic);
            self.topics
                .insert(Arc::clone(&name), TopicWindow::default());
            return name;
        };
        let name = Arc::clone(name);
        let follows = w
            .records
            .back()
            .is_none_or(|last| last.record().offset + 1 == first);
        if !follows {
            let w = std::mem::take(self.topics.get_mut(topic).expect("present"));
            self.bytes -= w.bytes;
            self.records -= w.records.len();
        }
        name
    }

    fn append(&mut self, name: &Arc<str>, records: Vec<Record>) {
        let w = self
            .topics
            .get_mut(name)
            .expect("created by reset_unless_follows");
        for record in records {
            let size = footprint(&record);
            self.arrivals.push_back((Arc::clone(name), record.offset));
            w.bytes += size;
            self.bytes += size;
            self.records += 1;
            w.records.push_back(SharedRecord::new(record));
        }
    }

    /// Holds the topic to its own limits, oldest records first.
    fn trim_topic(&mut self, name: &str, max_records: usize, max_bytes: usize) {
        let w = self.topics.get_mut(name).expect("just appended to");
        while w.records.len() > max_records || (w.bytes > max_bytes && w.records.len() > 1) {
            self.bytes -= w.pop();
            self.records -= 1;
        }
    }

    /// Evicts the record that arrived first, whichever topic holds it.
    fn evict_oldest(&mut self) {
        while let Some(entry) = self.arrivals.pop_front() {
            if !self.is_live(&entry) {
                continue;
            }
            let w = self.topics.get_mut(&entry.0).expect("a live topic");
            self.bytes -= w.pop();
            self.records -= 1;
            if w.records.is_empty() {
                self.topics.remove(&entry.0);
            }
            return;
        }
    }

    /// Drops the topic's records at or below `through` (all of them with `whole`).
    fn remove_through(&mut self, topic: &str, through: i64, whole: bool) {
        if let Some(w) = self.topics.get_mut(topic) {
            while w.front_offset().is_some_and(|o| whole || o <= through) {
                self.bytes -= w.pop();
                self.records -= 1;
            }
            if w.records.is_empty() {
                self.topics.remove(topic);
            }
        }
        if self.floors.len() >= MAX_FLOORS {
            self.floors.clear();
        }
        let floor = self.floors.entry(Arc::from(topic)).or_insert(through);
        *floor = (*floor).max(through);
    }

    /// `records` without those at or below the topic's removal floor.
    fn above_floor(&self, topic: &str, mut records: Vec<Record>) -> Vec<Record> {
        if let Some(&floor) = self.floors.get(topic) {
            records.retain(|r| r.offset > floor);
        }
        records
    }

    /// Keeps `arrivals` within a constant factor of the records it tracks.
    fn compact(&mut self) {
        if self.arrivals.len() > 2 * self.records + 1024 {
            let arrivals = std::mem::take(&mut self.arrivals);
            self.arrivals = arrivals.into_iter().filter(|e| self.is_live(e)).collect();
        }
    }
}

/// Per-topic windows, each bounded by record count and bytes, and all of them by
/// total bytes.
pub struct Window {
    inner: Mutex<Windows>,
    max_records: usize,
    max_bytes: usize,
    max_total_bytes: usize,
}

impl Window {
    /// Windows holding at most `max_records` records and about `max_bytes` per topic,
    /// and about `max_total_bytes` in all.
    pub fn new(max_records: usize, max_bytes: usize, max_total_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_records,
            max_bytes,
            max_total_bytes,
        }
    }

    /// Adds just-committed records (consecutive offsets, in order).
    pub fn push(&self, topic: &str, records: Vec<Record>) {
        let mut inner = self.lock();
        let records = inner.above_floor(topic, records);
        let Some(first) = records.first().map(|r| r.offset) else {
            return;
        };
        let name = inner.reset_unless_follows(topic, first);
        inner.append(&name, records);
        inner.trim_topic(&name, self.max_records, self.max_bytes);
        while inner.bytes > self.max_total_bytes && inner.records > 1 {
            inner.evict_oldest();
        }
        inner.compact();
    }

    /// Forgets `topic`'s records at or below `through` (every record of it when
    /// `topic_gone`: the name may start again at 1), because PostgreSQL deleted them.
    ///
    /// Why nothing removed is served afterwards, whatever runs concurrently:
    /// - A page being assembled ([`Window::read`]) takes the same lock, so it either
    ///   ran wholly before this call (it holds records that were still announced as
    ///   stored, exactly like a PostgreSQL read whose snapshot predates the DELETE: the
    ///   subscriber gets what existed when its read began) or wholly after (it sees
    ///   none of them). No page mixes the two, and a page is never re-read from here.
    /// - A push of records committed before the delete but announced to this process
    ///   after it (the commit sink runs after COMMIT, the NOTIFY may be handled first)
    ///   would put a removed record back: the floor remembered here drops it.
    /// - Records committed after the delete are above `through`, except in a topic
    ///   created again after `topic_gone`; its first records (up to the old head) are
    ///   then read from PostgreSQL instead of memory: slower, never wrong.
    ///
    /// The remaining window is the NOTIFY's latency (a delete on another replica, or
    /// in psql, is seen here milliseconds after its COMMIT), and a listener that lost
    /// its connection clears the whole window ([`Window::clear`]), since notifications
    /// sent meanwhile are lost.
    pub fn remove_through(&self, topic: &str, through: i64, topic_gone: bool) {
        self.lock().remove_through(topic, through, topic_gone);
    }

    /// Forgets every record (notifications of removals may have been lost).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.topics.clear();
        inner.arrivals.clear();
        (inner.records, inner.bytes) = (0, 0);
    }

    /// About how many bytes all windows hold now (for the metrics).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The page `req` asks for, if the window holds its first offset.
    pub fn read(&self, req: &PageRequest<'_>) -> Option<Page> {
        let inner = self.lock();
        let w = inner.topics.get(req.topic)?;
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

impl Window {
    fn lock(&self) -> MutexGuard<'_, Windows> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribe::tail::test_records::record;

    fn size() -> usize {
        footprint(&record("a", 1))
    }

    fn offsets(window: &Window, topic: &str) -> Vec<i64> {
        let first = window
            .lock()
            .topics
            .get(topic)
            .and_then(TopicWindow::front_offset);
        let Some(from) = first else { return Vec::new() };
        let req = PageRequest {
            topic,
            from,
            to: i64::MAX,
            types: &[],
            limit: i64::MAX,
            max_bytes: usize::MAX,
        };
        let page = window
            .read(&req)
            .expect("the window holds its first offset");
        page.records.iter().map(|r| r.record().offset).collect()
    }

    /// Over the total budget, the records that arrived first leave first, whichever
    /// topic holds them; a topic left empty is forgotten.
    #[test]
    fn the_total_budget_evicts_the_oldest_records_across_topics() {
        let window = Window::new(100, usize::MAX, 3 * size());
        window.push("a", vec![record("a", 1), record("a", 2)]);
        window.push("b", vec![record("b", 1)]);
        assert_eq!(offsets(&window, "a"), [1, 2]);

        window.push("b", vec![record("b", 2)]);
        assert_eq!(offsets(&window, "a"), [2]);
        window.push("b", vec![record("b", 3)]);
        assert_eq!(offsets(&window, "a"), Vec::<i64>::new());
        assert!(!window.lock().topics.contains_key("a"));
        assert_eq!(offsets(&window, "b"), [1, 2, 3]);
    }

    /// Records trimmed by a topic's own limit leave entries behind in the arrival
    /// order; they are compacted, so the bookkeeping stays bounded.
    #[test]
    fn arrival_bookkeeping_stays_bounded() {
        let window = Window::new(4, usize::MAX, usize::MAX);
        window.push("idle", vec![record("idle", 1)]);
        for offset in 1..=20_000 {
            window.push("busy", vec![record("busy", offset)]);
        }
        let inner = window.lock();
        assert_eq!(inner.records, 5);
        assert!(inner.arrivals.len() <= 2 * inner.records + 1024);
        let expected = footprint(&record("idle", 1)) + 4 * footprint(&record("busy", 1));
        assert_eq!(inner.bytes, expected);
        drop(inner);
        assert_eq!(offsets(&window, "idle"), [1]);
        assert_eq!(offsets(&window, "busy"), [19_997, 19_998, 19_999, 20_000]);
    }

    /// Removed records leave the window, and a late push of one (committed before the
    /// delete, announced after) does not bring it back.
    #[test]
    fn removed_records_are_not_served_even_when_pushed_late() {
        let window = Window::new(100, usize::MAX, usize::MAX);
        window.push("a", (1..=4).map(|o| record("a", o)).collect());
        window.remove_through("a", 2, false);
        assert_eq!(offsets(&window, "a"), [3, 4]);
        window.remove_through("a", 6, false);
        assert_eq!(offsets(&window, "a"), Vec::<i64>::new());
        window.push("a", vec![record("a", 5), record("a", 6), record("a", 7)]);
        assert_eq!(offsets(&window, "a"), [7]);
        let inner = window.lock();
        assert_eq!((inner.records, inner.bytes), (1, size()));
    }

    /// A deleted topic's records all go, whatever offset the notice names.
    #[test]
    fn a_deleted_topic_is_forgotten() {
        let window = Window::new(100, usize::MAX, usize::MAX);
        window.push("a", vec![record("a", 1), record("a", 2)]);
        window.push("b", vec![record("b", 1)]);
        window.remove_through("a", 1, true);
        assert!(!window.lock().topics.contains_key("a"));
        assert_eq!(offsets(&window, "b"), [1]);
        window.clear();
        assert_eq!(offsets(&window, "b"), Vec::<i64>::new());
    }

    /// A gap (another replica committed in between) resets the topic's window and
    /// its share of the total.
    #[test]
    fn a_gap_resets_the_topic() {
        let window = Window::new(100, usize::MAX, usize::MAX);
        window.push("a", vec![record("a", 1), record("a", 2)]);
        window.push("a", vec![record("a", 5)]);
        assert_eq!(offsets(&window, "a"), [5]);
        let inner = window.lock();
        assert_eq!((inner.records, inner.bytes), (1, size()));
    }
}
