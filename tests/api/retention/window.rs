//! The tail window never serves a record retention removed.

use super::*;

/// A subscriber that is behind while retention removes the records it has not read
/// yet gets none of them from the server's memory: after what was already on its way
/// (bounded by the stream's buffers), the next record is the first retained one.
#[tokio::test]
#[ignore = "needs the eviction trigger of helper/topics (any DELETE on events evicts the window); fails without it"]
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
    let jump = jump.expect("the removed records are skipped, not served from memory");
    assert!(
        offsets[jump] < 100,
        "only a stream's buffers' worth was already sent: {}",
        offsets[jump]
    );
    assert_eq!(offsets[jump + 1], 901);
    assert_eq!(&offsets[jump + 1..], &(901..=1000).collect::<Vec<_>>()[..]);
}
