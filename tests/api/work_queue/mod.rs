//! Work queues: shared and key-shared consumers, individual acks, nacks, ack deadlines,
//! redelivery back-off and dead letters. One file per behaviour.

mod bad_input;
mod crash;
mod dead_letters;
mod exclusive_acks;
mod exclusive_attempts;
mod key_shared;
mod redelivery;
mod restart;
mod shared;

use std::time::Duration;

use tonic::transport::Channel;

use crate::helpers::*;

/// A ConsumerConfig of `mode` with an ack deadline and back-off, the rest default.
pub fn config(mode: DeliveryMode, deadline: Duration, backoff: Duration) -> ConsumerConfig {
    ConsumerConfig {
        mode: mode as i32,
        ack_deadline: Some(proto_duration(deadline)),
        min_backoff: Some(proto_duration(backoff)),
        max_backoff: Some(proto_duration(backoff * 8)),
        ..Default::default()
    }
}

pub fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A Subscribe request for a shared-mode consumer.
pub fn shared_sub(topic: &str, consumer: &str, config: &ConsumerConfig) -> SubscribeRequest {
    SubscribeRequest {
        config: Some(config.clone()),
        ..sub_req(topic, consumer)
    }
}

/// Acks `offsets` of `consumer` one by one (individual acks).
pub async fn ack_each(client: &mut Client<Channel>, topic: &str, consumer: &str, offsets: &[i64]) {
    let req = AckRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        offsets: offsets.to_vec(),
        ..Default::default()
    };
    tokio::time::timeout(WAIT, client.ack(req))
        .await
        .expect("the ack is answered in time")
        .expect("the ack succeeds");
}

/// Nacks `offsets` with an optional delay.
pub async fn nack(
    client: &mut Client<Channel>,
    topic: &str,
    consumer: &str,
    offsets: &[i64],
    delay: Option<Duration>,
) {
    let req = NackRequest {
        topic: topic.into(),
        consumer: consumer.into(),
        offsets: offsets.to_vec(),
        delay: delay.map(proto_duration),
        ..Default::default()
    };
    tokio::time::timeout(WAIT, client.nack(req))
        .await
        .expect("the nack is answered in time")
        .expect("the nack succeeds");
}

/// The consumer as ListConsumers shows it.
pub async fn consumer_info(
    client: &mut Client<Channel>,
    topic: &str,
    consumer: &str,
) -> ConsumerInfo {
    let req = ListConsumersRequest {
        topic: topic.into(),
        ..Default::default()
    };
    let list = client.list_consumers(req).await.unwrap().into_inner();
    list.consumers
        .into_iter()
        .find(|c| c.name == consumer)
        .expect("the consumer is listed")
}
