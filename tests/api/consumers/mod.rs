//! Durable consumers: Ack, resume, Seek, ListConsumers, DeleteConsumer, and their errors.

mod shared_updates;

use crate::helpers::*;
use tonic::Code;

async fn list(client: &mut Client<tonic::transport::Channel>, topic: &str) -> Vec<ConsumerInfo> {
    client
        .list_consumers(ListConsumersRequest {
            topic: topic.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .consumers
}

fn seek_to(topic: &str, consumer: &str, position: start_position::Position) -> SeekRequest {
    SeekRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        start: Some(StartPosition {
            position: Some(position),
        }),
    }
}

/// Ack, drop the stream, resubscribe: delivery resumes right after the ack, and what
/// was delivered but not acked comes again (at-least-once).
#[tokio::test]
async fn a_consumer_resumes_right_after_its_last_ack() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "jobs", events("job", 6)).await;
    let mut first = subscribe(&mut client, sub_req("jobs", "worker")).await;
    assert_eq!(next_offsets(&mut first, 5).await, [1, 2, 3, 4, 5]);
    assert_eq!(ack(&mut client, "jobs", "worker", 3).await, 3);
    drop(first);

    let mut again = subscribe(&mut client, sub_req("jobs", "worker")).await;

    assert_eq!(next_offsets(&mut again, 3).await, [4, 5, 6]);
}

/// Ack is cumulative and never moves backwards.
#[tokio::test]
async fn acks_are_cumulative_and_never_move_backwards() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 10)).await;
    subscribe(&mut client, sub_req("t", "c")).await;

    assert_eq!(ack(&mut client, "t", "c", 7).await, 7);
    assert_eq!(ack(&mut client, "t", "c", 4).await, 7);
    assert_eq!(list(&mut client, "t").await[0].committed_offset, 7);
}

/// 200 concurrent Ack calls for one consumer each answer a committed offset at least as
/// high as the one they acked, and the highest is what stays committed. (Whether they
/// shared UPDATEs cannot be seen from outside the server: when each call reaches it is
/// unknown; `acks_queued_behind_an_ack_update_share_the_next_one` proves the sharing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acks_each_answer_a_committed_offset_at_least_the_one_asked() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 200)).await;
    subscribe(&mut client, sub_req("t", "c")).await;

    let acks = (1..=200).map(|offset| {
        let mut client = client.clone();
        async move { (offset, ack(&mut client, "t", "c", offset).await) }
    });
    let answers = futures_join_all(acks).await;

    assert!(answers.iter().all(|(asked, committed)| committed >= asked));
    assert_eq!(list(&mut client, "t").await[0].committed_offset, 200);
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Ack errors: past the head, unknown topic, unknown consumer, ephemeral, negative.
#[tokio::test]
async fn bad_acks_get_clear_statuses() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 3)).await;
    subscribe(&mut client, sub_req("t", "c")).await;
    let try_ack = |topic: &str, consumer: &str, offset| {
        let mut client = client.clone();
        let req = AckRequest {
            topic: topic.into(),
            consumer: consumer.into(),
            offset,
            ..Default::default()
        };
        async move { client.ack(req).await.unwrap_err() }
    };

    let cases = [
        (
            try_ack("t", "c", 4).await,
            Code::FailedPrecondition,
            "past the head",
        ),
        (try_ack("nope", "c", 1).await, Code::NotFound, "nope"),
        (
            try_ack("t", "stranger", 1).await,
            Code::NotFound,
            "stranger",
        ),
        (
            try_ack("t", "", 1).await,
            Code::FailedPrecondition,
            "ephemeral",
        ),
        (try_ack("t", "c", -1).await, Code::InvalidArgument, "offset"),
        (
            try_ack("t", "bad name", 1).await,
            Code::InvalidArgument,
            "consumer",
        ),
    ];
    for (err, code, words) in cases {
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(words),
            "{:?} lacks {words:?}",
            err.message()
        );
    }
    assert_eq!(list(&mut client, "t").await[0].committed_offset, 0);
}

/// Seek on an attached stream: back replays, forward skips, without reconnecting.
#[tokio::test]
async fn seek_moves_an_attached_stream_back_and_forward() {
    use start_position::Position;
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 10)).await;
    let req = SubscribeRequest {
        max_in_flight: 3,
        ..sub_req("t", "c")
    };
    let mut stream = subscribe(&mut client, req).await;
    assert_eq!(next_offsets(&mut stream, 3).await, [1, 2, 3]);
    expect_heartbeat(&mut stream).await;

    let seeked = client
        .seek(seek_to("t", "c", Position::Offset(8)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seeked.committed_offset, 7);
    assert_eq!(next_offsets(&mut stream, 3).await, [8, 9, 10]);
    expect_heartbeat(&mut stream).await;

    client
        .seek(seek_to("t", "c", Position::Earliest(Default::default())))
        .await
        .unwrap();
    assert_eq!(next_offsets(&mut stream, 3).await, [1, 2, 3]);
}

/// Seek errors: unknown topic, missing consumer or start, start past the head.
#[tokio::test]
async fn bad_seeks_get_clear_statuses() {
    use start_position::Position;
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 2)).await;

    let err = client
        .seek(seek_to("nope", "c", Position::Offset(1)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .seek(seek_to("t", "", Position::Offset(1)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .seek(SeekRequest {
            start: None,
            ..seek_to("t", "c", Position::Offset(1))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .seek(seek_to("t", "c", Position::Offset(4)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

/// ListConsumers reports committed offset, lag, attachment and when the offset moved.
#[tokio::test]
async fn list_consumers_reports_offsets_lag_and_attachment() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 5)).await;
    let stream = subscribe(&mut client, sub_req("t", "attached")).await;
    subscribe(&mut client, sub_req("t", "gone")).await;
    ack(&mut client, "t", "attached", 2).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let consumers = loop {
        let consumers = list(&mut client, "t").await;
        if !consumers[1].attached || tokio::time::Instant::now() > deadline {
            break consumers;
        }
        tokio::task::yield_now().await;
    };

    let summary: Vec<_> = consumers
        .iter()
        .map(|c| (c.name.as_str(), c.committed_offset, c.lag, c.attached))
        .collect();
    assert_eq!(summary, [("attached", 2, 3, true), ("gone", 0, 5, false)]);
    assert!(
        consumers
            .iter()
            .all(|c| c.topic == "t" && c.updated_at.is_some())
    );
    drop(stream);
}

/// DeleteConsumer refuses an attached consumer and forgets a detached one.
#[tokio::test]
async fn delete_consumer_forgets_only_detached_consumers() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 3)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    next_record(&mut stream).await;
    let delete = || DeleteConsumerRequest {
        topic: "t".into(),
        consumer: "c".into(),
    };

    let err = client.delete_consumer(delete()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    drop(stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Err(e) = client.delete_consumer(delete()).await {
        assert_eq!(e.code(), Code::FailedPrecondition);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped stream never detached"
        );
        tokio::task::yield_now().await;
    }

    assert!(list(&mut client, "t").await.is_empty());
    let err = client.delete_consumer(delete()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
