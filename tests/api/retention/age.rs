//! Retention by age: events appended longer ago than `retention_age` go.

use super::*;

/// Backdates the first `n` events of `topic` by `age`, as if appended that long ago.
async fn backdate(sql: &PgPool, topic: &str, n: i64, age: &str) {
    sqlx::query(
        "UPDATE events SET appended_at = appended_at - $3::interval \
         WHERE topic = $1 AND \"offset\" <= $2",
    )
    .bind(topic)
    .bind(n)
    .bind(age)
    .execute(sql)
    .await
    .unwrap();
}

/// Only the events older than the age go; the younger ones stay, gapless.
#[tokio::test]
async fn retention_by_age_removes_the_events_older_than_the_age() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "aged", events(8)).await;
    backdate(&sql, "aged", 3, "2 hours").await;

    set_retention(&sql, "aged", Some(60 * 60 * 1000), None).await;
    wait_first_offset(&sql, "aged", 4).await;
    assert_eq!(
        retained_offsets(&mut client, "aged").await,
        (4..=8).collect::<Vec<_>>()
    );
}

/// With a tiny age everything goes: the first offset is then head + 1, and the next
/// event gets the next offset, not 1.
#[tokio::test]
async fn a_topic_emptied_by_age_continues_numbering_from_its_head() {
    let server = sweeping_server().await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "emptied", events(5)).await;

    set_retention(&sql, "emptied", Some(1), None).await;
    wait_first_offset(&sql, "emptied", 6).await;
    assert_eq!(stored(&sql, "emptied").await, 0);
    assert_eq!(
        retained_offsets(&mut client, "emptied").await,
        Vec::<i64>::new()
    );

    set_retention(&sql, "emptied", None, None).await;
    let results = publish(&mut client, "emptied", events(1)).await;
    assert_eq!(results[0].offset, 6);
}
