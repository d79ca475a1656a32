//! The tail window never serves a record retention removed.

use super::*;

/// A subscriber that is behind while retention removes the records it has not read
/// yet gets none of them from the server's memory: after what was already on its way
/// (bounded by the stream's buffers, well below the 900 removed), the next record is
/// the first retained one.
#[tokio::test]
async fn a_subscriber_never_gets_a_removed_record_from_memory() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    let big = "x".repeat(8 * 1024);
    let batch: Vec<Event> = (0..1000)
        .map(|_| event("big", &format!("{{\"pad\":\"{big}\"}}")))
        .collect();
    let mut stream = subscribe(&mut client, sub_req("windowed", "")).await;
    publish(&mut client, "windowed", batch).await;
    assert_eq!(next_record(&mut stream).await.offset, 1);

    set_retention(&sql, "windowed", None, Some(100)).await;
    wait_first_offset(&sql, "windowed", 901).await;

    let mut offsets = vec![1];
    while *offsets.last().unwrap() < 1000 {
        offsets.push(next_record(&mut stream).await.offset);
    }
    let jump = offsets.windows(2).position(|w| w[1] != w[0] + 1);
    // What was fetched before the removal (the stream's buffers: a few hundred records
    // of 8 KiB here) still arrives, like rows of a read whose snapshot predates the
    // DELETE; without the eviction the window would serve all 1000 without a jump.
    let jump = jump.expect("the removed records are skipped, not served from memory");
    assert_eq!(offsets[jump + 1], 901);
    assert_eq!(&offsets[jump + 1..], &(901..=1000).collect::<Vec<_>>()[..]);
}
