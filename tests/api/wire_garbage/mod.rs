//! Garbage on the wire: request bodies that are not the protobuf they claim to be,
//! malformed gRPC frames, over-size messages, bytes that are not HTTP/2 at all, and
//! NUL characters that PostgreSQL cannot store. The server must answer each with the
//! right gRPC status (never hang, never drop the service) and keep serving normal
//! Publish and Read calls afterwards.
//!
//! Bodies are pseudo-random from fixed seeds, so a failure reproduces exactly. The
//! expected status of every random body is computed locally with the same decoding and
//! validation the server runs: an undecodable body is INTERNAL (tonic's answer to a
//! protobuf decode error), a decodable but invalid one the validator's exact status.

mod bodies;
mod oversize;
mod raw;

use crate::helpers::*;
use bodies::*;
use bytes::Bytes;
use prost::Message;
use raw::*;
use tonic::Code;

pub const PUBLISH: &str = "/pulsebus.v1.EventBus/Publish";
pub const SUBSCRIBE: &str = "/pulsebus.v1.EventBus/Subscribe";
pub const MIB: usize = 1024 * 1024;
/// The server's decode limit with default limits: max_request_bytes + 1 MiB of slack.
pub const DECODE_LIMIT: usize = 8 * MIB + MIB;

/// A normal Publish followed by a Read of it, on a fresh connection.
async fn assert_serving(server: &TestServer, round: usize) {
    let mut client = server.client().await;
    let topic = format!("still-serving-{round}");
    let results = publish(&mut client, &topic, vec![event("ok", "{\"round\":1}")]).await;
    assert_eq!(results.len(), 1);
    let records = read_all(&mut client, &topic).await;
    assert_eq!(records.len(), 1, "the event just published reads back");
    assert_eq!(records[0].offset, results[0].offset);
}

// ---------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------

/// 200 random bodies (100 to Publish, 100 to Subscribe) on one connection: each gets
/// exactly the status local decoding and validation predict, nothing hangs, and the
/// server keeps serving in between and afterwards.
#[tokio::test]
async fn random_bodies_get_the_predicted_status_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "garbage", vec![event("seed", "{}")]).await;
    let channel = server.channel().await;
    let (valid_pub, valid_sub) = (valid_publish(), valid_subscribe());
    let mut rng = Rng::new(0x5EED_0F6A_7BA6_E5E5);
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..200 {
        let (path, valid) = if i % 2 == 0 {
            (PUBLISH, &valid_pub)
        } else {
            (SUBSCRIBE, &valid_sub)
        };
        let body = garbage(&mut rng, valid);
        let want = expected(path, &body);
        let got = if path == PUBLISH {
            unary(&channel, path, Bytes::from(body.clone()))
                .await
                .map(drop)
        } else {
            server_stream(&channel, path, Bytes::from(body.clone())).await
        };
        match (&got, &want) {
            (Err(got), Some(want)) => assert_status(got, want, &body),
            // A body that happens to be a valid request (a mutation that kept it valid)
            // may succeed, or meet the log's state: no such topic, an id stored in
            // another topic, a consumer attached elsewhere. Nothing else.
            (Ok(()), None) => {}
            (Err(got), None) => assert!(
                matches!(
                    got.code(),
                    Code::NotFound | Code::AlreadyExists | Code::FailedPrecondition
                ),
                "{got:?}, body {body:02x?}"
            ),
            (Ok(()), Some(want)) => panic!("{path} accepted {body:02x?}; expected {want:?}"),
        }
        let code = got.err().map_or(Code::Ok, |s| s.code());
        *tally.entry(format!("{path} {code:?}")).or_default() += 1;
        if i % 50 == 49 {
            assert_serving(&server, i).await;
        }
    }
    println!("outcomes: {tally:?}");
    // The garbage must have reached the decoder and the validator, not just one of them.
    for outcome in [
        "/pulsebus.v1.EventBus/Publish Internal",
        "/pulsebus.v1.EventBus/Publish InvalidArgument",
        "/pulsebus.v1.EventBus/Subscribe Internal",
        "/pulsebus.v1.EventBus/Subscribe InvalidArgument",
    ] {
        assert!(tally.contains_key(outcome), "no {outcome} in {tally:?}");
    }
    // The same connection still works for a normal call.
    let mut client = Client::new(channel);
    publish(&mut client, "garbage", vec![event("after", "{}")]).await;
    assert_serving(&server, 200).await;
}

/// Frames that break gRPC's framing are INTERNAL, answered at once, and harmless.
#[tokio::test]
async fn malformed_frames_are_internal_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let valid = valid_publish();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no message at all", vec![]),
        ("half a header", vec![0, 0, 0]),
        ("a header and no message", frame(0, 100, &[])),
        (
            "a truncated message",
            frame(0, valid.len() as u32, &valid[..10]),
        ),
        (
            "compressed without grpc-encoding",
            frame(1, valid.len() as u32, &valid),
        ),
        (
            "an unknown compression flag",
            frame(7, valid.len() as u32, &valid),
        ),
        ("a valid message, then garbage", {
            let mut b = framed(&valid);
            b.extend(framed(&[0xFF; 7]));
            b
        }),
    ];
    for path in [PUBLISH, SUBSCRIBE] {
        for (what, body) in &cases {
            let status = raw_call(&channel, path, body.clone()).await;
            assert_eq!(status.code(), Code::Internal, "{path}: {what}: {status:?}");
        }
    }
    assert_serving(&server, 0).await;
}

/// A unary call with two messages handles at most the first: the second is never
/// stored, whatever the status.
#[tokio::test]
async fn a_second_message_in_a_unary_call_is_never_published() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let request = |topic: &str| {
        PublishRequest {
            topic: topic.into(),
            events: vec![event("x", "{}")],
        }
        .encode_to_vec()
    };
    let mut body = framed(&request("first"));
    body.extend(framed(&request("second")));
    let status = raw_call(&channel, PUBLISH, body).await;
    assert!(
        matches!(status.code(), Code::Ok | Code::Internal),
        "{status:?}"
    );
    let mut client = server.client().await;
    let err = client
        .read(ReadRequest {
            topic: "second".into(),
            ..Default::default()
        })
        .await
        .expect_err("the second message was not published");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_serving(&server, 0).await;
}

/// A NUL in a string the log stores in a TEXT column (here `subject`; PostgreSQL text
/// cannot hold NUL) is INVALID_ARGUMENT naming the field, and valid publishes to the
/// same topic at the same moment, which group commit may put in the same transaction,
/// still succeed.
#[tokio::test]
async fn nul_in_a_text_field_is_invalid_argument_and_spares_concurrent_publishes() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut bad_answers = Vec::new();
    let mut good_failures = Vec::new();
    for _ in 0..10 {
        let (mut good, mut bad) = (client.clone(), client.clone());
        let good = tokio::spawn(async move {
            good.publish(PublishRequest {
                topic: "shared".into(),
                events: vec![event("ok", "{}")],
            })
            .await
        });
        let bad = tokio::spawn(async move {
            bad.publish(PublishRequest {
                topic: "shared".into(),
                events: vec![Event {
                    subject: "a\0b".into(),
                    ..event("x", "{}")
                }],
            })
            .await
        });
        let (good, bad) = (good.await.unwrap(), bad.await.unwrap());
        bad_answers.push(bad.expect_err("a NUL in subject is refused"));
        good_failures.extend(good.err());
    }
    assert_serving(&server, 0).await;
    let mut problems: Vec<String> = bad_answers
        .iter()
        .filter(|s| {
            s.code() != Code::InvalidArgument || !s.message().starts_with("events[0].subject: ")
        })
        .map(|s| format!("the NUL subject got {:?} {:?}", s.code(), s.message()))
        .collect();
    problems.extend(good_failures.iter().map(|s| {
        format!(
            "a valid publish beside it got {:?} {:?}",
            s.code(),
            s.message()
        )
    }));
    assert!(
        problems.is_empty(),
        "{} problems in 10 rounds:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Bytes that are not HTTP/2 (or HTTP/2 frames that make no sense) end that connection
/// only; the server keeps serving others.
#[tokio::test]
async fn non_http2_bytes_close_the_connection_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let mut rng = Rng::new(0x0BAD_C0FF_EE00_0001);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for i in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let mut bytes = if i % 2 == 0 {
            Vec::new()
        } else {
            preface.to_vec()
        };
        let n = 1 + rng.below(4096);
        bytes.extend(rng.bytes(n));
        // The server may close before reading everything: a failed write is fine. Our
        // end of the stream then tells it no more bytes will come.
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await;
        assert!(closed.is_ok(), "connection {i} still open after {WAIT:?}");
    }
    assert_serving(&server, 0).await;
}

/// A NUL in a Read or Subscribe type filter is INVALID_ARGUMENT naming the filter. (The
/// second server starts with an empty in-memory tail, so the filter reaches PostgreSQL.)
#[tokio::test]
async fn nul_in_a_type_filter_is_invalid_argument() {
    let first = TestServer::start().await;
    let mut client = first.client().await;
    publish(&mut client, "t", vec![event("ok", "{}")]).await;
    let database_url = first.database_url.clone();
    first.stop().await;
    let server = TestServer::start_on(database_url, |_| {}).await;
    let mut client = server.client().await;
    let read = client
        .read(ReadRequest {
            topic: "t".into(),
            types: vec!["a\0".into()],
            ..Default::default()
        })
        .await
        .map(drop);
    let mut request = sub_req("t", "");
    request.types = vec!["a\0".into()];
    let subscribe = match client.subscribe(request).await {
        Err(status) => Err(status),
        // Opened: what matters is how the stream then ends.
        Ok(stream) => {
            let first = tokio::time::timeout(WAIT, stream.into_inner().message()).await;
            first.expect("the stream answers in time").map(drop)
        }
    };
    assert_serving(&server, 0).await;
    let answers = [("Read", read), ("Subscribe", subscribe)];
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(_, outcome)| {
            !outcome.as_ref().is_err_and(|s| {
                s.code() == Code::InvalidArgument && s.message().starts_with("types[0]: ")
            })
        })
        .map(|(rpc, outcome)| format!("{rpc}: {outcome:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "not INVALID_ARGUMENT types[0]:\n{}",
        wrong.join("\n")
    );
}
