//! DeleteTopic: the topic, its events and consumers go, nothing of them is served again
//! (from PostgreSQL or this replica's memory), and attached subscribers block it unless
//! forced.

use super::{get, reason};
use crate::helpers::*;
use pulsebus::proto::pulsebus::v1::DeleteTopicRequest;
use tonic::Code;

/// How `stream` ends, past whatever records it still brings.
async fn stream_end(
    stream: &mut tonic::Streaming<pulsebus::proto::pulsebus::v1::SubscribeResponse>,
) -> Result<Option<pulsebus::proto::pulsebus::v1::SubscribeResponse>, tonic::Status> {
    let end = async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(WAIT, end)
        .await
        .expect("the stream ends in time")
}

fn delete(name: &str, force: bool) -> DeleteTopicRequest {
    DeleteTopicRequest {
        name: name.into(),
        force,
    }
}

/// A deleted topic's events and consumers are gone; publishing to the name again
/// starts a new topic at offset 1, and a new subscriber sees only the new event
/// although the old ones were in this server's tail window.
#[tokio::test]
async fn a_deleted_topic_is_gone_and_a_new_one_of_its_name_starts_at_offset_one() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "grades", events("old", 3)).await;
    let mut stream = subscribe(&mut client, sub_req("grades", "audit")).await;
    assert_eq!(next_offsets(&mut stream, 3).await, vec![1, 2, 3]);
    ack(&mut client, "grades", "audit", 3).await;
    drop(stream);
    let gone = settle(
        std::time::Duration::from_millis(20),
        || async {
            server
                .client()
                .await
                .delete_topic(delete("grades", false))
                .await
        },
        |r| r.is_ok(),
    )
    .await
    .0
    .unwrap()
    .into_inner();
    assert_eq!((gone.events_deleted, gone.consumers_deleted), (3, 1));
    assert_eq!(
        get(&mut client, "grades").await.unwrap_err().code(),
        Code::NotFound
    );

    let results = publish(&mut client, "grades", events("new", 1)).await;
    assert_eq!(results[0].offset, 1);
    let records = read_all(&mut client, "grades").await;
    let types: Vec<_> = records
        .iter()
        .map(|r| r.event.as_ref().unwrap().r#type.clone())
        .collect();
    assert_eq!(types, vec!["new"]);
    let mut fresh = subscribe(&mut client, sub_req("grades", "audit")).await;
    let first = next_record(&mut fresh).await;
    assert_eq!(
        (first.offset, first.event.unwrap().r#type.as_str()),
        (1, "new")
    );
}

/// While a durable consumer has a subscriber attached, DeleteTopic is
/// FAILED_PRECONDITION (SUBSCRIBERS_ATTACHED) and deletes nothing; with force it
/// deletes, and the attached stream ends with NOT_FOUND.
#[tokio::test]
async fn attached_subscribers_block_deletion_unless_forced_and_then_their_stream_ends() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "grades", events("e", 2)).await;
    let mut stream = subscribe(&mut client, sub_req("grades", "audit")).await;
    assert_eq!(next_offsets(&mut stream, 2).await, vec![1, 2]);

    let err = client
        .delete_topic(delete("grades", false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "SUBSCRIBERS_ATTACHED");
    assert_eq!(get(&mut client, "grades").await.unwrap().head_offset, 2);

    client.delete_topic(delete("grades", true)).await.unwrap();
    let ended = stream_end(&mut stream).await;
    assert_eq!(ended.unwrap_err().code(), Code::NotFound);
}

/// A replica that did not delete the topic hears of it: its subscribers' streams end
/// and it serves nothing of the old topic from memory.
#[tokio::test]
async fn another_replica_forgets_a_topic_deleted_elsewhere() {
    let first = TestServer::start().await;
    let second = TestServer::start_on(first.database_url.clone(), |_| {}).await;
    let mut on_second = second.client().await;
    publish(&mut on_second, "grades", events("old", 2)).await;
    let mut stream = subscribe(&mut on_second, sub_req("grades", "")).await;
    assert_eq!(next_offsets(&mut stream, 2).await, vec![1, 2]);

    first
        .client()
        .await
        .delete_topic(delete("grades", true))
        .await
        .unwrap();
    let ended = stream_end(&mut stream).await;
    assert_eq!(ended.unwrap_err().code(), Code::NotFound);

    publish(&mut first.client().await, "grades", events("new", 1)).await;
    let mut fresh = subscribe(&mut on_second, sub_req("grades", "")).await;
    let record = next_record(&mut fresh).await;
    assert_eq!(
        (record.offset, record.event.unwrap().r#type.as_str()),
        (1, "new")
    );
}
