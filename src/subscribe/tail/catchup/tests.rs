use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

use super::*;
use crate::subscribe::tail::test_records::record;

fn req(topic: &str, from: i64, to: i64) -> PageRequest<'_> {
    PageRequest {
        topic,
        from,
        to,
        types: &[],
        limit: 500,
        max_bytes: usize::MAX,
    }
}

/// The run PostgreSQL would return from `start` through `end` (every offset stored).
fn run(topic: &str, start: i64, end: i64) -> Run {
    let records = (start..=end).map(|o| SharedRecord::new(record(topic, o)));
    Run::new(start, end, records.collect())
}

fn offsets(page: &Page) -> Vec<i64> {
    page.records.iter().map(|r| r.record().offset).collect()
}

async fn must_not_read(_start: i64, _to: i64) -> Result<Run, LogError> {
    panic!("served from memory, no read expected")
}

/// Subscribers that miss the same run at once wait for one read, and each gets its
/// own page of it.
#[tokio::test]
async fn readers_missing_the_same_run_together_share_one_read() {
    let catchup = Catchup::new(DEFAULT_CACHE_BYTES);
    let reads = AtomicUsize::new(0);
    let (open, gate) = oneshot::channel::<()>();
    let gate = tokio::sync::Mutex::new(Some(gate));
    let read = |start: i64, to: i64| {
        reads.fetch_add(1, Ordering::SeqCst);
        let gate = &gate;
        async move {
            if let Some(gate) = gate.lock().await.take() {
                let _ = gate.await;
            }
            Ok(run("t", start, to.min(1000)))
        }
    };
    let (a, b) = (req("t", 5, 5000), req("t", 640, 5000));
    let first = catchup.page(&a, read);
    let second = catchup.page(&b, read);
    let opener = async {
        tokio::task::yield_now().await;
        let _ = open.send(());
    };
    let (first, second, ()) = tokio::join!(first, second, opener);

    assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for both");
    let first = first.expect("shared").unwrap();
    assert_eq!(offsets(&first), (5..505).collect::<Vec<_>>());
    assert_eq!(first.scanned_to, 504, "cut at the limit");
    let second = second.expect("shared").unwrap();
    assert_eq!(offsets(&second), (640..=1000).collect::<Vec<_>>());
    assert_eq!(second.scanned_to, 1000, "the run's end");
}

/// A kept run serves later subscribers from memory, never past their head.
#[tokio::test]
async fn a_kept_run_serves_later_readers_without_reading_and_stops_at_their_head() {
    let catchup = Catchup::new(DEFAULT_CACHE_BYTES);
    let read = |start, _to| async move { Ok(run("t", start, 1000)) };
    catchup
        .page(&req("t", 1, 5000), read)
        .await
        .unwrap()
        .unwrap();

    let page = catchup
        .page(&req("t", 900, 950), must_not_read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offsets(&page), (900..=950).collect::<Vec<_>>());
    assert_eq!(page.scanned_to, 950);
}

/// A read that ends before the next subscriber's position leaves the run partial; the
/// next read starts after it.
#[tokio::test]
async fn a_partial_run_is_continued_from_its_end() {
    let catchup = Catchup::new(DEFAULT_CACHE_BYTES);
    let read = |start, _to| async move { Ok(run("t", start, 300)) };
    catchup
        .page(&req("t", 1, 300), read)
        .await
        .unwrap()
        .unwrap();

    let starts = std::sync::Mutex::new(Vec::new());
    let read = |start, to| {
        starts.lock().unwrap().push(start);
        async move { Ok(run("t", start, to)) }
    };
    let page = catchup
        .page(&req("t", 301, 400), read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*starts.lock().unwrap(), [301]);
    assert_eq!(offsets(&page), (301..=400).collect::<Vec<_>>());
}

/// After a removal nothing of the topic is served from memory, and a read that
/// started before it is not kept.
#[tokio::test]
async fn a_removal_drops_the_topics_runs_and_a_read_begun_before_is_not_kept() {
    let catchup = Catchup::new(DEFAULT_CACHE_BYTES);
    let read = |start, _to| async move { Ok(run("t", start, 1000)) };
    catchup
        .page(&req("t", 1, 1000), read)
        .await
        .unwrap()
        .unwrap();
    catchup.removed("t");
    assert_eq!(catchup.bytes(), 0);

    let racing = |start, _to| {
        catchup.removed("t");
        async move { Ok(run("t", start, 1000)) }
    };
    catchup
        .page(&req("t", 1, 1000), racing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(catchup.bytes(), 0, "begun before the removal: not kept");

    let reads = AtomicUsize::new(0);
    let read = |start, _to| {
        reads.fetch_add(1, Ordering::SeqCst);
        async move { Ok(run("t", start, 1000)) }
    };
    catchup
        .page(&req("t", 10, 1000), read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), 1, "read again");
    assert!(catchup.bytes() > 0, "and kept this time");
}

/// The runs stay within their byte bound, the oldest going first.
#[tokio::test]
async fn kept_runs_stay_within_the_byte_bound_oldest_first() {
    let one_run = run("t", 1, 1000).bytes;
    let catchup = Catchup::new(2 * one_run);
    for start in [1, 1001, 2001] {
        let read = |start, _to| async move { Ok(run("t", start, start + 999)) };
        catchup
            .page(&req("t", start, 5000), read)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(catchup.bytes() <= 2 * one_run);
    let reads = AtomicUsize::new(0);
    let read = |start, _to| {
        reads.fetch_add(1, Ordering::SeqCst);
        async move { Ok(run("t", start, start + 999)) }
    };
    catchup
        .page(&req("t", 2500, 5000), must_not_read)
        .await
        .unwrap()
        .unwrap();
    catchup
        .page(&req("t", 1, 5000), read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reads.load(Ordering::SeqCst),
        1,
        "the oldest run was evicted"
    );
}

/// A type filter, or a cache of size 0, reads PostgreSQL alone.
#[tokio::test]
async fn filtered_reads_and_a_disabled_cache_do_not_share() {
    let catchup = Catchup::new(DEFAULT_CACHE_BYTES);
    let types = ["lesson.published".to_owned()];
    let filtered = PageRequest {
        types: &types,
        ..req("t", 1, 100)
    };
    assert!(catchup.page(&filtered, must_not_read).await.is_none());
    let off = Catchup::new(0);
    assert!(off.page(&req("t", 1, 100), must_not_read).await.is_none());
}
