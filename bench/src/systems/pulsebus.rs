//! pulsebus through its generated tonic client: one HTTP/2 connection per publisher
//! or subscriber, as separate services would have.

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use pulsebus::proto::pulsebus::v1 as pb;
use pulsebus::proto::pulsebus::v1::event_bus_client::EventBusClient;
use tonic::transport::{Channel, Endpoint};

use super::{AckToken, Acker, Deliveries, Delivery, Topic, WqDeliveries, WqDelivery, WqToken};

async fn client(addr: &str) -> Result<EventBusClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connect to pulsebus at {addr}"))?;
    Ok(EventBusClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

fn event(payload: Bytes) -> pb::Event {
    pb::Event {
        r#type: "bench.event".to_owned(),
        source: "pulsebus-bench".to_owned(),
        content_type: "application/octet-stream".to_owned(),
        data: Some(pb::event::Data::BinaryData(payload.into())),
        ..Default::default()
    }
}

/// A gRPC connection that publishes.
#[derive(Clone)]
pub struct PbPublisher(EventBusClient<Channel>);

impl PbPublisher {
    pub async fn connect(addr: &str) -> Result<Self> {
        Ok(Self(client(addr).await?))
    }

    pub async fn publish(&mut self, topic: &Topic, payloads: Vec<Bytes>) -> Result<()> {
        let req = pb::PublishRequest {
            topic: topic.flat(),
            events: payloads.into_iter().map(event).collect(),
        };
        self.0.publish(req).await.context("Publish")?;
        Ok(())
    }
}

/// Acks of one durable consumer.
pub struct PbAcker {
    client: EventBusClient<Channel>,
    topic: String,
    consumer: String,
}

impl PbAcker {
    pub async fn ack(&mut self, offset: i64) -> Result<()> {
        let req = pb::AckRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
            offset,
            ..Default::default()
        };
        self.client.ack(req).await.context("Ack")?;
        Ok(())
    }
}

async fn subscribe(addr: &str, req: pb::SubscribeRequest) -> Result<Deliveries> {
    let stream = client(addr)
        .await?
        .subscribe(req)
        .await
        .context("Subscribe")?
        .into_inner();
    Ok(stream.flat_map(deliveries).boxed())
}

/// The records of one stream message, one record or a batch, as deliveries in order
/// (nothing for the other messages).
fn deliveries(
    item: Result<pb::SubscribeResponse, tonic::Status>,
) -> impl futures::Stream<Item = Result<Delivery>> {
    use futures::future::Either;
    use futures::stream::iter;
    use pb::subscribe_response::Message;
    match item {
        Ok(pb::SubscribeResponse {
            message: Some(Message::Batch(b)),
        }) => Either::Right(iter(b.records.into_iter().map(|r| Ok(delivery(r))))),
        Ok(pb::SubscribeResponse {
            message: Some(Message::Record(r)),
        }) => Either::Left(iter(Some(Ok(delivery(r))))),
        Ok(_) => Either::Left(iter(None)),
        Err(status) => Either::Left(iter(Some(Err(
            anyhow::Error::new(status).context("Subscribe stream")
        )))),
    }
}

fn delivery(r: pb::Record) -> Delivery {
    let payload = match r.event.and_then(|e| e.data) {
        Some(pb::event::Data::BinaryData(b)) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let token = AckToken::Offset(r.offset);
    Delivery { payload, token }
}

pub async fn live(addr: &str, topic: &Topic, batch_records: u32) -> Result<Deliveries> {
    let start = pb::StartPosition {
        position: Some(pb::start_position::Position::Latest(
            pb::start_position::Latest {},
        )),
    };
    let req = pb::SubscribeRequest {
        topic: topic.flat(),
        start: Some(start),
        batch_records,
        ..Default::default()
    };
    subscribe(addr, req).await
}

/// A durable consumer from the start; `batch_records` > 0 asks for batches (see
/// `SubscribeRequest.batch_records`), which the stream flattens back into records.
pub async fn durable(
    addr: &str,
    topic: &Topic,
    name: &str,
    max_in_flight: u32,
    batch_records: u32,
) -> Result<(Deliveries, Acker)> {
    durable_from(addr, topic, name, (max_in_flight, batch_records), 0).await
}

/// A new durable consumer `name` from offset `from` (0: the start), with
/// `(max_in_flight, batch_records)` as in [`durable`].
pub async fn durable_from(
    addr: &str,
    topic: &Topic,
    name: &str,
    (max_in_flight, batch_records): (u32, u32),
    from: i64,
) -> Result<(Deliveries, Acker)> {
    let start = (from > 0).then_some(pb::StartPosition {
        position: Some(pb::start_position::Position::Offset(from)),
    });
    let req = pb::SubscribeRequest {
        topic: topic.flat(),
        consumer: name.to_owned(),
        start,
        max_in_flight,
        batch_records,
        ..Default::default()
    };
    let stream = subscribe(addr, req).await?;
    let acker = PbAcker {
        client: client(addr).await?,
        topic: topic.flat(),
        consumer: name.to_owned(),
    };
    Ok((stream, Acker::Pulsebus(acker)))
}

/// Acks of one work-queue subscriber, on its own connection: individual acks (`Ack {
/// offsets }`) for a shared consumer, a cumulative ack of the highest offset for an
/// exclusive one.
#[derive(Clone)]
pub struct WqAcker {
    client: EventBusClient<Channel>,
    topic: String,
    consumer: String,
    shared: bool,
}

impl WqAcker {
    pub async fn settle(&self, tokens: Vec<WqToken>) -> Result<()> {
        let mut offsets = Vec::with_capacity(tokens.len());
        for token in tokens {
            match token {
                WqToken::Offset(o) => offsets.push(o),
                WqToken::Nats(_) => anyhow::bail!("ack token from another system"),
            }
        }
        let mut req = pb::AckRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
            ..Default::default()
        };
        if self.shared {
            req.offsets = offsets;
        } else {
            req.offset = offsets.into_iter().max().unwrap_or_default();
        }
        self.client.clone().ack(req).await.context("Ack")?;
        Ok(())
    }
}

/// A subscriber of the durable consumer `name`, created shared (with `ack_deadline`)
/// or exclusive by its first Subscribe; its records come from the start of the topic.
/// Stream and acks share one HTTP/2 connection, as one client's would.
pub async fn work_queue(
    addr: &str,
    topic: &Topic,
    name: &str,
    shared: bool,
    max_in_flight: u32,
    ack_deadline: std::time::Duration,
) -> Result<(WqDeliveries, super::WqAcker)> {
    let config = shared
        .then(|| {
            Ok::<_, anyhow::Error>(pb::ConsumerConfig {
                mode: pb::DeliveryMode::Shared as i32,
                ack_deadline: Some(ack_deadline.try_into()?),
                ..Default::default()
            })
        })
        .transpose()?;
    let req = pb::SubscribeRequest {
        topic: topic.flat(),
        consumer: name.to_owned(),
        max_in_flight,
        config,
        ..Default::default()
    };
    let mut client = client(addr).await?;
    let stream = client
        .subscribe(req)
        .await
        .context("Subscribe")?
        .into_inner();
    let deliveries = stream
        .filter_map(|item| async move {
            match item {
                Ok(pb::SubscribeResponse {
                    message: Some(pb::subscribe_response::Message::Record(r)),
                }) => {
                    let payload = match r.event.and_then(|e| e.data) {
                        Some(pb::event::Data::BinaryData(b)) => Bytes::from(b),
                        _ => Bytes::new(),
                    };
                    Some(Ok(WqDelivery {
                        id: r.offset as u64,
                        payload,
                        attempt: r.delivery_attempt,
                        token: WqToken::Offset(r.offset),
                    }))
                }
                Ok(_) => None,
                Err(status) => Some(Err(anyhow::Error::new(status).context("Subscribe stream"))),
            }
        })
        .boxed();
    let acker = WqAcker {
        client,
        topic: topic.flat(),
        consumer: name.to_owned(),
        shared,
    };
    Ok((deliveries, super::WqAcker::Pulsebus(acker.into())))
}

/// One connection for the growth scenario's single-call probes: Read, Seek,
/// ListConsumers, and a Subscribe started by time.
#[derive(Clone)]
pub struct PbProbe(EventBusClient<Channel>);

impl PbProbe {
    pub async fn connect(addr: &str) -> Result<Self> {
        Ok(Self(client(addr).await?))
    }

    /// One `Read` of up to `limit` records from offset `from`: how many came, the
    /// first one's append time, and the topic's head.
    pub async fn read(
        &mut self,
        topic: &Topic,
        from: i64,
        limit: u32,
    ) -> Result<(usize, Option<prost_types::Timestamp>, i64)> {
        let req = pb::ReadRequest {
            topic: topic.flat(),
            from_offset: from,
            limit,
            ..Default::default()
        };
        let page = self.0.read(req).await.context("Read")?.into_inner();
        let first = page.records.first().and_then(|r| r.appended_at);
        Ok((page.records.len(), first, page.head_offset))
    }

    /// Creates (or moves) the durable consumer `name` at offset 1 with a `Seek`.
    pub async fn seek_to_start(&mut self, topic: &Topic, name: &str) -> Result<()> {
        let req = pb::SeekRequest {
            topic: topic.flat(),
            consumer: name.to_owned(),
            start: Some(pb::StartPosition {
                position: Some(pb::start_position::Position::Offset(1)),
            }),
        };
        self.0.seek(req).await.context("Seek")?;
        Ok(())
    }

    /// One `ListConsumers` page of up to `page_size`: how many consumers it listed.
    pub async fn list_consumers(&mut self, topic: &Topic, page_size: u32) -> Result<usize> {
        let req = pb::ListConsumersRequest {
            topic: topic.flat(),
            page_size,
            ..Default::default()
        };
        let page = self.0.list_consumers(req).await.context("ListConsumers")?;
        Ok(page.into_inner().consumers.len())
    }

    /// Opens an ephemeral subscription starting at time `at` and waits for its first
    /// record (or batch); returns that record's offset and closes the stream.
    pub async fn first_from_time(
        &mut self,
        topic: &Topic,
        at: prost_types::Timestamp,
    ) -> Result<i64> {
        use pb::subscribe_response::Message;
        let req = pb::SubscribeRequest {
            topic: topic.flat(),
            start: Some(pb::StartPosition {
                position: Some(pb::start_position::Position::Time(at)),
            }),
            ..Default::default()
        };
        let mut stream = self
            .0
            .subscribe(req)
            .await
            .context("Subscribe")?
            .into_inner();
        while let Some(item) = stream.next().await {
            match item.context("Subscribe stream")?.message {
                Some(Message::Record(r)) => return Ok(r.offset),
                Some(Message::Batch(b)) if !b.records.is_empty() => return Ok(b.records[0].offset),
                _ => {}
            }
        }
        anyhow::bail!("the stream ended before a record")
    }
}
