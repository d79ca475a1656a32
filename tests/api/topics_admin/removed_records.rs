//! Events deleted from PostgreSQL (here by SQL, as an operator would; retention and
//! DeleteTopic go through the same trigger) leave every server's memory too.

use std::time::Duration;

use crate::helpers::*;

/// The first record a new subscriber from earliest gets, with its type.
async fn first_record(server: &TestServer, topic: &str) -> (i64, String) {
    let mut client = server.client().await;
    let mut stream = subscribe(&mut client, sub_req(topic, "")).await;
    let record = next_record(&mut stream).await;
    (record.offset, record.event.unwrap().r#type)
}

/// Records in the tail window (published through this server, delivered live) are
/// deleted by SQL: new subscribers from earliest start at the first remaining one,
/// once the server heard of the delete, and Read agrees.
#[tokio::test]
async fn records_deleted_by_sql_are_no_longer_served_from_memory() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let mut live = subscribe(&mut client, sub_req("t", "")).await;
    publish(&mut client, "t", events("x", 5)).await;
    assert_eq!(next_offsets(&mut live, 5).await, [1, 2, 3, 4, 5]);
    assert_eq!(first_record(&server, "t").await.0, 1);

    let sql = server.sql().await;
    sqlx::query(r#"DELETE FROM events WHERE topic = 't' AND "offset" <= 3"#)
        .execute(&sql)
        .await
        .unwrap();

    let every = Duration::from_millis(20);
    let (first, _) = settle(every, || first_record(&server, "t"), |f| f.0 == 4).await;
    assert_eq!(
        first.0, 4,
        "a new subscriber starts at the first remaining record"
    );
    let offsets: Vec<i64> = read_all(&mut client, "t")
        .await
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, [4, 5]);
}

/// A topic deleted by SQL and published to again starts at offset 1, and what new
/// subscribers get is the new topic's record, not the old one still in memory.
#[tokio::test]
async fn a_topic_deleted_by_sql_and_created_again_serves_only_its_new_records() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("old", 3)).await;
    assert_eq!(first_record(&server, "t").await, (1, "old".to_owned()));

    let sql = server.sql().await;
    let mut tx = sql.begin().await.unwrap();
    for statement in [
        "DELETE FROM events WHERE topic = 't'",
        "DELETE FROM topics WHERE name = 't'",
    ] {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let results = publish(&mut client, "t", events("new", 1)).await;
    assert_eq!(results[0].offset, 1, "a topic created again starts at 1");

    let every = Duration::from_millis(20);
    let new = (1, "new".to_owned());
    let (first, _) = settle(every, || first_record(&server, "t"), |f| *f == new).await;
    assert_eq!(first, new);
    let types: Vec<String> = read_all(&mut client, "t")
        .await
        .into_iter()
        .map(|r| r.event.unwrap().r#type)
        .collect();
    assert_eq!(types, ["new"]);
}
