//! Group commit, generically: work for one key (a topic, a consumer) is written by one
//! task at a time; whatever arrives for that key while a write is in flight waits and
//! goes into the next write together. A lone caller starts at once (no timer), and the
//! batch grows with the load.
//!
//! Each job carries its own reply channel; the flush function answers every job it is
//! given. The queue per key is bounded by the callers waiting on it (each caller waits
//! for its reply), and one flush takes at most `max_batch` units of work.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::task::TaskTracker;

/// A boxed flush future.
pub type Flush = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a batch of jobs for one key is written.
type FlushFn<K, J> = dyn Fn(K, Vec<J>) -> Flush + Send + Sync;

/// Queues jobs per key and runs at most one flush per key at a time.
pub struct Grouper<K, J> {
    pending: Mutex<HashMap<K, Vec<J>>>,
    flush: Box<FlushFn<K, J>>,
    weight: fn(&J) -> usize,
    max_batch: usize,
    tracker: TaskTracker,
}

impl<K, J> Grouper<K, J>
where
    K: Hash + Eq + Clone + Send + 'static,
    J: Send + 'static,
{
    /// A grouper whose flushes take jobs until their `weight`s reach `max_batch` (at
    /// least one job each time) and run on `tracker`.
    pub fn new(
        flush: impl Fn(K, Vec<J>) -> Flush + Send + Sync + 'static,
        weight: fn(&J) -> usize,
        max_batch: usize,
        tracker: TaskTracker,
    ) -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::default(),
            flush: Box::new(flush),
            weight,
            max_batch,
            tracker,
        })
    }

    /// Queues `job` under `key`, starting a flusher if none runs for that key.
    pub fn submit(self: &Arc<Self>, key: K, job: J) {
        let start = {
            let mut pending = self.lock();
            let start = !pending.contains_key(&key);
            pending.entry(key.clone()).or_default().push(job);
            start
        };
        if start {
            self.tracker.spawn(Arc::clone(self).drain(key));
        }
    }

    /// Flushes batches for `key` until nothing is waiting, then forgets the key.
    async fn drain(self: Arc<Self>, key: K) {
        while let Some(batch) = self.take(&key) {
            (self.flush)(key.clone(), batch).await;
        }
    }

    fn take(&self, key: &K) -> Option<Vec<J>> {
        let mut pending = self.lock();
        let jobs = pending.get_mut(key)?;
        if jobs.is_empty() {
            pending.remove(key);
            return None;
        }
        let mut weight = 0;
        let count = jobs
            .iter()
            .take_while(|job| {
                let fits = weight == 0 || weight + (self.weight)(job) <= self.max_batch;
                weight += (self.weight)(job);
                fits
            })
            .count();
        Some(jobs.drain(..count).collect())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Vec<J>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::{mpsc, oneshot};

    /// Jobs arriving while a flush is blocked are written together in the next one,
    /// within the batch limit.
    #[tokio::test]
    async fn jobs_that_arrive_during_a_flush_share_the_next_one() {
        let (batches_tx, mut batches) = mpsc::channel::<Vec<u32>>(8);
        let (gate_tx, gate) = oneshot::channel::<()>();
        let gate = Arc::new(Mutex::new(Some(gate)));
        let flush = move |_key: &'static str, jobs: Vec<u32>| -> Flush {
            let batches_tx = batches_tx.clone();
            let gate = gate.lock().unwrap().take();
            Box::pin(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                batches_tx.send(jobs).await.unwrap();
            })
        };
        let grouper = Grouper::new(flush, |_| 1, 3, TaskTracker::new());

        grouper.submit("t", 1);
        tokio::task::yield_now().await;
        for job in 2..=6 {
            grouper.submit("t", job);
        }
        gate_tx.send(()).unwrap();

        assert_eq!(batches.recv().await.unwrap(), [1]);
        assert_eq!(batches.recv().await.unwrap(), [2, 3, 4]);
        assert_eq!(batches.recv().await.unwrap(), [5, 6]);
    }
}
