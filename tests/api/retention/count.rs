//! Retention by count, gapless offsets, and OUT_OF_RANGE below the first offset.

use tonic::Code;

use super::*;

/// The newest `retention_events` stay, the offsets from the first retained one are
/// gapless, and new events are numbered on from the head.
#[tokio::test]
async fn retention_by_count_keeps_the_newest_events_with_gapless_offsets() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "counted", events(25)).await;

    set_retention(&sql, "counted", None, Some(10)).await;
    wait_first_offset(&sql, "counted", 16).await;
    assert_eq!(
        retained_offsets(&mut client, "counted").await,
        (16..=25).collect::<Vec<_>>()
    );
    assert_eq!(stored(&sql, "counted").await, 10);

    let results = publish(&mut client, "counted", events(5)).await;
    assert_eq!(
        results.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [26, 27, 28, 29, 30]
    );
    wait_first_offset(&sql, "counted", 21).await;
    assert_eq!(
        retained_offsets(&mut client, "counted").await,
        (21..=30).collect::<Vec<_>>()
    );
}

/// A topic without a retention limit keeps everything, beside one that has one.
#[tokio::test]
async fn topics_without_a_limit_keep_every_event() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "kept", events(30)).await;
    publish(&mut client, "trimmed", events(30)).await;

    set_retention(&sql, "trimmed", None, Some(1)).await;
    wait_first_offset(&sql, "trimmed", 30).await;

    assert_eq!(first_offset(&sql, "kept").await, 1);
    assert_eq!(stored(&sql, "kept").await, 30);
}

fn assert_out_of_range(status: &tonic::Status, first_offset: i64) {
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("first retained offset {first_offset}")),
        "{}",
        status.message()
    );
    let info = tonic_types::StatusExt::get_details_error_info(status).expect("error info");
    assert_eq!(info.reason, "OFFSET_OUT_OF_RANGE");
    assert_eq!(info.metadata["first_offset"], first_offset.to_string());
}

/// Read, Seek and an ephemeral Subscribe from an offset that retention removed fail
/// with OUT_OF_RANGE naming the first retained offset; from the start they begin there.
#[tokio::test]
async fn offsets_below_the_first_retained_one_are_out_of_range_naming_it() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "ranged", events(20)).await;
    set_retention(&sql, "ranged", None, Some(5)).await;
    wait_first_offset(&sql, "ranged", 16).await;

    let read = ReadRequest {
        topic: "ranged".into(),
        from_offset: 3,
        limit: 10,
        types: vec![],
    };
    assert_out_of_range(&client.read(read).await.unwrap_err(), 16);

    let seek = SeekRequest {
        topic: "ranged".into(),
        consumer: "c".into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Offset(15)),
        }),
    };
    assert_out_of_range(&client.seek(seek).await.unwrap_err(), 16);

    let mut ephemeral = sub_req("ranged", "");
    ephemeral.start = Some(StartPosition {
        position: Some(start_position::Position::Offset(1)),
    });
    assert_out_of_range(&client.subscribe(ephemeral).await.unwrap_err(), 16);

    let earliest = SeekRequest {
        topic: "ranged".into(),
        consumer: "c".into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Earliest(
                start_position::Earliest {},
            )),
        }),
    };
    let moved = client.seek(earliest).await.unwrap().into_inner();
    assert_eq!(
        moved.committed_offset, 15,
        "earliest is the first retained offset"
    );
    let mut from_start = subscribe(&mut client, sub_req("ranged", "")).await;
    assert_eq!(next_offsets(&mut from_start, 5).await, [16, 17, 18, 19, 20]);
}
