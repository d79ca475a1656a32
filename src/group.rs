//! Group commit, generically: work for one key (a topic, a consumer) is written by one
//! task at a time; whatever arrives for that key while a write is in flight waits and
//! goes into the next write together. A lone caller starts at once (no timer), and the
//! batch grows with the load.
//!
//! Each job carries its own reply channel ([`reply_channel`]); the flush function
//! answers every job it is given. The queue per key is bounded by the callers waiting
//! on it (each caller waits for its reply), and one flush takes at most `max_batch`
//! units of work.
//!
//! A flush that panics does not wedge its key: its jobs are dropped unanswered (their
//! callers get [`FlushLost`], a server bug, reported as INTERNAL) and the jobs queued
//! behind it are flushed as usual.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt as _;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// A boxed flush future.
pub type Flush = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a batch of jobs for one key is written.
type FlushFn<K, J> = dyn Fn(K, Vec<J>) -> Flush + Send + Sync;

/// A grouped job was never answered: its flush panicked or was dropped. Always a
/// server bug, never a reason to retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a grouped write ended without answering (a server bug; see the server log)")]
pub struct FlushLost;

/// The receiving end of a job's reply.
pub struct Reply<T>(oneshot::Receiver<T>);

impl<T> Reply<T> {
    /// What the flush answered, or [`FlushLost`] if it never will.
    pub async fn wait(self) -> Result<T, FlushLost> {
        self.0.await.map_err(|_| FlushLost)
    }
}

/// A reply channel for one job: the flush sends on the first half.
pub fn reply_channel<T>() -> (oneshot::Sender<T>, Reply<T>) {
    let (tx, rx) = oneshot::channel();
    (tx, Reply(rx))
}

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
    K: Hash + Eq + Clone + Send + Sync + std::fmt::Debug + 'static,
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

    /// Flushes batches for `key` until nothing is waiting, then forgets the key. The
    /// key is forgotten even if this task is dropped midway (runtime shutdown).
    async fn drain(self: Arc<Self>, key: K) {
        let guard = ForgetOnDrop {
            grouper: &self,
            key: &key,
        };
        while let Some(batch) = self.take(&key) {
            self.flush_one(&key, batch).await;
        }
        std::mem::forget(guard);
    }

    /// Runs one flush; a panic drops its jobs (their callers see [`FlushLost`]).
    async fn flush_one(&self, key: &K, batch: Vec<J>) {
        let flush = AssertUnwindSafe(|| (self.flush)(key.clone(), batch));
        let outcome = match std::panic::catch_unwind(flush) {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        if let Err(panic) = outcome {
            let what = panic_message(&*panic);
            tracing::error!(
                ?key,
                panic = what,
                "a grouped write panicked; its callers get INTERNAL"
            );
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

    /// How many keys have queued or running work (bounded by the waiting callers).
    pub fn keys(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Vec<J>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets the key (dropping any jobs still queued under it, whose callers then see
/// [`FlushLost`]) when the drain task is dropped before it finished.
struct ForgetOnDrop<'a, K: Hash + Eq, J> {
    grouper: &'a Grouper<K, J>,
    key: &'a K,
}

impl<K: Hash + Eq, J> Drop for ForgetOnDrop<'_, K, J> {
    fn drop(&mut self) {
        let mut pending = self
            .grouper
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.remove(self.key);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

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

    type Job = (u32, oneshot::Sender<u32>);

    /// A flush that panics (in the future or while making it) answers its callers with
    /// `FlushLost`, and the key keeps working: the next jobs are flushed normally.
    #[tokio::test]
    async fn a_panicking_flush_fails_its_callers_and_frees_the_key() {
        let flush = |_key: &'static str, jobs: Vec<Job>| -> Flush {
            if jobs.iter().any(|(n, _)| *n == 13) {
                panic!("unlucky job while making the flush");
            }
            Box::pin(async move {
                for (n, reply) in jobs {
                    if n == 7 {
                        panic!("unlucky job inside the flush");
                    }
                    let _ = reply.send(n * 10);
                }
            })
        };
        let grouper = Grouper::new(flush, |_| 1, 1, TaskTracker::new());
        let ask = |n: u32| {
            let (tx, reply) = reply_channel();
            grouper.submit("t", (n, tx));
            reply
        };
        let (seven, thirteen, one) = (ask(7), ask(13), ask(1));
        assert_eq!(seven.wait().await, Err(FlushLost));
        assert_eq!(thirteen.wait().await, Err(FlushLost));
        assert_eq!(one.wait().await, Ok(10));
        assert_eq!(ask(2).wait().await, Ok(20), "the key is not wedged");
        let idle = async {
            while grouper.keys() > 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), idle)
            .await
            .expect("the key is forgotten once idle");
    }
}
