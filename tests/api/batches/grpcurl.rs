//! grpcurl users see batches as JSON.

use serde_json::{Value, json};

use crate::e2e::{GRPCURL_TIMEOUT, describe, grpcurl, run};
use crate::helpers::*;

/// Five events published, then `grpcurl Subscribe` with `batchRecords`: grpcurl prints
/// the records as `{"batch": {"records": [...]}}` messages holding offsets 1 to 5 in
/// order, and no lone `record`.
#[tokio::test]
async fn grpcurl_prints_a_batch_as_json_records() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "lessons", events("lesson.published", 5)).await;

    let body = json!({"topic": "lessons", "batchRecords": 64}).to_string();
    let addr = server.addr.to_string();
    let args = [
        "-plaintext",
        "-connect-timeout",
        "10",
        "-max-time",
        "3",
        "-d",
        &body,
        &addr,
        "pulsebus.v1.EventBus/Subscribe",
    ];
    let out = run(grpcurl(), args, GRPCURL_TIMEOUT).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("Code: DeadlineExceeded"),
        "grpcurl Subscribe ended with something other than its own deadline\n{}",
        describe(&out)
    );
    let messages: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("grpcurl printed bad JSON ({e})\n{}", describe(&out)));

    assert!(
        messages.iter().all(|m| m.get("record").is_none()),
        "{messages:?}"
    );
    let offsets: Vec<i64> = messages
        .iter()
        .filter_map(|m| m["batch"]["records"].as_array())
        .flatten()
        .map(|r| {
            r["offset"]
                .as_str()
                .and_then(|o| o.parse().ok())
                .expect("an int64 offset")
        })
        .collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5], "{}", describe(&out));
    let first = &messages.iter().find(|m| m.get("batch").is_some()).unwrap()["batch"];
    assert_eq!(first["records"][0]["event"]["type"], "lesson.published");
}
