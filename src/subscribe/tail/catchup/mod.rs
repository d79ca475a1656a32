//! Catch-up reads shared between subscribers: when many subscribers are behind the
//! tail window at nearby positions (a burst, or a fleet restarting), each of them
//! paging PostgreSQL on its own multiplies the database's work by the number of
//! subscribers, and the laggards fall further behind. Here a read from PostgreSQL
//! covers an aligned run of offsets ([`RUN_RECORDS`]) and is kept, bounded by bytes,
//! so every subscriber passing through that run is served from memory; subscribers
//! that miss at the same moment wait for one read instead of issuing their own.
//!
//! Only reads without a type filter go through here (a filtered read lets
//! PostgreSQL skip what the subscriber does not want). The records are the same
//! [`SharedRecord`]s the streams send, so they are encoded once for all of them.
//!
//! Nothing removed is served: a removal (retention, DeleteTopic, a DELETE in psql)
//! or a resync drops the topic's runs and moves the epoch; a read that started before
//! is not kept, and a subscriber that joined it after the removal reads again itself.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use super::SharedRecord;
use super::window::Page;

#[cfg(test)]
mod tests;
use crate::log::{LogError, PageRequest};

/// Offsets per shared read, aligned (a run starts at 1, 1001, 2001, ...).
pub const RUN_RECORDS: i64 = 1000;
/// Most payload bytes one shared read holds.
pub const RUN_BYTES: usize = 4 * 1024 * 1024;
/// Default bound of all kept runs together.
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Most runs kept, however small.
const MAX_RUNS: usize = 4096;

/// What one shared read found: records from `start` with every offset through `end`
/// examined.
#[derive(Debug)]
pub struct Run {
    start: i64,
    end: i64,
    records: Vec<Arc<SharedRecord>>,
    bytes: usize,
}

impl Run {
    /// A run read from `start`, having looked through `end`.
    pub fn new(start: i64, end: i64, records: Vec<Arc<SharedRecord>>) -> Self {
        let bytes = records
            .iter()
            .map(|r| 2 * r.record().approximate_size())
            .sum();
        Self {
            start,
            end,
            records,
            bytes,
        }
    }

    fn covers(&self, offset: i64) -> bool {
        self.start <= offset && offset <= self.end
    }

    /// The page of `req` this run can give: records from `req.from` (which it covers).
    fn page(&self, req: &PageRequest<'_>) -> Page {
        let first = self
            .records
            .partition_point(|r| r.record().offset < req.from);
        let mut page = Page {
            records: Vec::new(),
            scanned_to: self.end.min(req.to),
        };
        let mut bytes = 0;
        for shared in &self.records[first..] {
            let offset = shared.record().offset;
            if offset > req.to {
                break;
            }
            if page.records.len() as i64 >= req.limit || bytes >= req.max_bytes {
                page.scanned_to = offset - 1;
                break;
            }
            bytes += shared.record().approximate_size();
            page.records.push(Arc::clone(shared));
        }
        page
    }
}

/// A read in flight, which subscribers missing at the same run wait for.
type Flight = Arc<OnceCell<Fetched>>;

/// A finished read: the run, and the removal epoch it started in.
#[derive(Clone)]
struct Fetched {
    epoch: u64,
    run: Arc<Run>,
}

#[derive(Default)]
struct Runs {
    by_topic: HashMap<Arc<str>, BTreeMap<i64, Arc<Run>>>,
    /// (topic, start) of each kept run, oldest first: evicted in that order.
    order: VecDeque<(Arc<str>, i64)>,
    in_flight: HashMap<(Arc<str>, i64), Flight>,
    bytes: usize,
    /// Moves on every removal and resync.
    epoch: u64,
}

impl Runs {
    /// The kept run covering `offset`, if any.
    fn covering(&self, topic: &str, offset: i64) -> Option<Arc<Run>> {
        let runs = self.by_topic.get(topic)?;
        runs.range(..=offset)
            .rev()
            .take(2)
            .find(|(_, run)| run.covers(offset))
            .map(|(_, run)| Arc::clone(run))
    }

    /// Where a read for `from` starts: its aligned run, or just after a kept run that
    /// already covers the beginning of it.
    fn start_for(&self, topic: &str, from: i64) -> i64 {
        let aligned = (from - 1).div_euclid(RUN_RECORDS) * RUN_RECORDS + 1;
        let before = self
            .by_topic
            .get(topic)
            .and_then(|runs| runs.range(..from).next_back())
            .map(|(_, run)| run.end + 1);
        before.map_or(aligned, |after| aligned.max(after).min(from))
    }

    /// Joins the read in flight for `req`'s run, or registers a new one; returns it,
    /// its key and the epoch at joining.
    fn flight(&mut self, req: &PageRequest<'_>) -> (Flight, (Arc<str>, i64), u64) {
        let start = self.start_for(req.topic, req.from);
        let key: (Arc<str>, i64) = (Arc::from(req.topic), start);
        let flight = Arc::clone(self.in_flight.entry(key.clone()).or_default());
        (flight, key, self.epoch)
    }

    fn keep(&mut self, topic: Arc<str>, run: Arc<Run>, max_bytes: usize) {
        let start = run.start;
        self.bytes += run.bytes;
        let runs = self.by_topic.entry(Arc::clone(&topic)).or_default();
        match runs.insert(start, run) {
            // Read again (it was partial): it keeps its place in the order.
            Some(old) => self.bytes -= old.bytes,
            None => self.order.push_back((topic, start)),
        }
        while self.bytes > max_bytes || self.order.len() > MAX_RUNS {
            let Some((topic, start)) = self.order.pop_front() else {
                break;
            };
            self.forget(&topic, start);
        }
    }

    fn forget(&mut self, topic: &str, start: i64) {
        let Some(runs) = self.by_topic.get_mut(topic) else {
            return;
        };
        if let Some(run) = runs.remove(&start) {
            self.bytes -= run.bytes;
        }
        if runs.is_empty() {
            self.by_topic.remove(topic);
        }
    }
}

/// The shared catch-up reads of one server process, bounded by bytes.
pub struct Catchup {
    inner: Mutex<Runs>,
    max_bytes: usize,
}

impl Catchup {
    /// Keeps about `max_bytes` of runs (0: every read goes to PostgreSQL alone).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_bytes,
        }
    }

    /// About how many bytes the kept runs hold.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The page `req` asks for, from a kept run or a shared read through `read`
    /// (`read(start, to)` reads the run from `start` up to `to`); `None` when this
    /// request must read PostgreSQL on its own (a type filter, no cache).
    pub async fn page<F, Fut>(
        &self,
        req: &PageRequest<'_>,
        read: F,
    ) -> Option<Result<Page, LogError>>
    where
        F: FnOnce(i64, i64) -> Fut,
        Fut: Future<Output = Result<Run, LogError>>,
    {
        if !req.types.is_empty() || self.max_bytes == 0 || req.from > req.to {
            return None;
        }
        let (flight, key, joined) = {
            let mut inner = self.lock();
            if let Some(run) = inner.covering(req.topic, req.from) {
                return Some(Ok(run.page(req)));
            }
            inner.flight(req)
        };
        let fetched = flight
            .get_or_try_init(|| self.fetch(&key, &flight, joined, read(key.1, req.to)))
            .await;
        let fetched = match fetched {
            Ok(fetched) => fetched.clone(),
            Err(err) => return Some(Err(err)),
        };
        let usable = fetched.epoch >= joined && fetched.run.covers(req.from);
        usable.then(|| Ok(fetched.run.page(req)))
    }

    /// Runs the read and keeps its run unless a removal happened meanwhile. The
    /// flight is unregistered however this ends (also when the reader goes away
    /// midway: a subscriber still waiting then runs the read itself).
    async fn fetch(
        &self,
        key: &(Arc<str>, i64),
        flight: &Flight,
        epoch: u64,
        read: impl Future<Output = Result<Run, LogError>>,
    ) -> Result<Fetched, LogError> {
        let _landing = Landing {
            catchup: self,
            key,
            flight,
        };
        let run = Arc::new(read.await?);
        let mut inner = self.lock();
        if inner.epoch == epoch && !run.records.is_empty() {
            inner.keep(Arc::clone(&key.0), Arc::clone(&run), self.max_bytes);
        }
        Ok(Fetched { epoch, run })
    }

    /// PostgreSQL removed records of `topic`: its runs go, and reads in flight are not
    /// kept.
    pub fn removed(&self, topic: &str) {
        let mut inner = self.lock();
        inner.epoch += 1;
        if let Some(runs) = inner.by_topic.remove(topic) {
            inner.bytes -= runs.values().map(|r| r.bytes).sum::<usize>();
        }
        inner.order.retain(|(t, _)| &**t != topic);
    }

    /// Forgets every run (removals may have gone unannounced).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.by_topic.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    fn lock(&self) -> MutexGuard<'_, Runs> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Unregisters a read in flight when its fetch ends or is dropped.
struct Landing<'a> {
    catchup: &'a Catchup,
    key: &'a (Arc<str>, i64),
    flight: &'a Flight,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut inner = self.catchup.lock();
        let ours = inner
            .in_flight
            .get(self.key)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight));
        if ours {
            inner.in_flight.remove(self.key);
        }
    }
}
