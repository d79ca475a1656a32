//! `batch_records` is bounded.

use tonic::Code;
use tonic_types::StatusExt;

use super::batched;
use crate::helpers::*;

/// Above 10,000 records per batch, Subscribe is INVALID_ARGUMENT with a BadRequest
/// naming `batch_records`, and no consumer is created; 10,000 itself is accepted.
#[tokio::test]
async fn batch_records_above_ten_thousand_is_invalid_and_names_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .subscribe(batched("lessons", "report", 10_001))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    let violation = &err.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "batch_records");
    assert!(
        violation.description.contains("10000"),
        "{}",
        violation.description
    );
    let consumers = client
        .list_consumers(ListConsumersRequest {
            topic: "lessons".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().consumers.len())
        .unwrap_or(0);
    assert_eq!(consumers, 0, "a refused request changes nothing");

    publish(&mut client, "lessons", events("e", 1)).await;
    let mut stream = subscribe(&mut client, batched("lessons", "", 10_000)).await;
    assert_eq!(next_offsets_any(&mut stream).await, [1]);
}

/// The offsets of the next message that carries records.
async fn next_offsets_any(stream: &mut tonic::Streaming<SubscribeResponse>) -> Vec<i64> {
    loop {
        let records = super::Received::records_of(next_message(stream).await);
        if !records.is_empty() {
            return records.iter().map(|r| r.offset).collect();
        }
    }
}
