//! NATS JetStream through async-nats: a file-storage stream per run (subjects
//! `<run>.>`), one client connection per publisher or subscriber; live subscribers are
//! ordered consumers (deliver new), durable consumers are pull consumers with ack
//! policy "all" (cumulative acks, like pulsebus and the PostgreSQL baseline).

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;

use super::{
    AckToken, Acker, Deliveries, Delivery, Topic, WqAcker, WqDeliveries, WqDelivery, WqToken,
};

async fn context(url: &str) -> Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| format!("connect to NATS at {url}"))?;
    Ok(jetstream::new(client))
}

pub async fn prepare(url: &str, run: &str) -> Result<()> {
    let js = context(url).await?;
    js.create_stream(stream::Config {
        name: run.to_owned(),
        subjects: vec![format!("{run}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(anyhow::Error::msg)
    .context("create stream")?;
    Ok(())
}

pub async fn delete_stream(url: &str, run: &str) -> Result<()> {
    let js = context(url).await?;
    js.delete_stream(run)
        .await
        .map_err(anyhow::Error::msg)
        .context("delete stream")?;
    Ok(())
}

/// A NATS connection that publishes and waits for JetStream acks.
#[derive(Clone)]
pub struct NatsPublisher(jetstream::Context);

impl NatsPublisher {
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self(context(url).await?))
    }

    /// One message: publish and await its ack. Several: all in flight, then every ack.
    pub async fn publish(&mut self, topic: &Topic, payloads: Vec<Bytes>) -> Result<()> {
        let subject = topic.subject();
        let mut acks = Vec::with_capacity(payloads.len());
        for p in payloads {
            let ack = self.0.publish(subject.clone(), p).await;
            acks.push(ack.map_err(anyhow::Error::msg).context("publish")?);
        }
        // Acks come back in order: awaiting them one by one waits for the last.
        for ack in acks {
            ack.await
                .map_err(anyhow::Error::msg)
                .context("publish ack")?;
        }
        Ok(())
    }
}

fn delivery(m: jetstream::Message) -> Delivery {
    Delivery {
        payload: m.message.payload.clone(),
        token: AckToken::Nats(Box::new(m)),
    }
}

pub async fn live(url: &str, topic: &Topic) -> Result<Deliveries> {
    let js = context(url).await?;
    let stream = js
        .get_stream(&topic.run)
        .await
        .map_err(anyhow::Error::msg)?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: topic.subject(),
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(anyhow::Error::msg)
        .context("create ordered consumer")?;
    let messages = consumer.messages().await.map_err(anyhow::Error::msg)?;
    Ok(messages
        .map(|m| m.map(delivery).map_err(anyhow::Error::msg))
        .boxed())
}

pub async fn durable(
    url: &str,
    topic: &Topic,
    name: &str,
    max_in_flight: u32,
) -> Result<(Deliveries, Acker)> {
    let js = context(url).await?;
    let stream = js
        .get_stream(&topic.run)
        .await
        .map_err(anyhow::Error::msg)?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            name,
            consumer::pull::Config {
                durable_name: Some(name.to_owned()),
                filter_subject: topic.subject(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::All,
                max_ack_pending: i64::from(max_in_flight),
                ..Default::default()
            },
        )
        .await
        .map_err(anyhow::Error::msg)
        .context("create durable consumer")?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(max_in_flight.min(1000) as usize)
        .messages()
        .await
        .map_err(anyhow::Error::msg)?;
    let deliveries = messages
        .map(|m| m.map(delivery).map_err(anyhow::Error::msg))
        .boxed();
    Ok((deliveries, Acker::Nats))
}

/// A work-queue stream for the run (retention `WorkQueue`: a message is removed once
/// acked), file storage like [`prepare`]'s.
pub async fn prepare_work_queue(url: &str, run: &str) -> Result<()> {
    let js = context(url).await?;
    js.create_stream(stream::Config {
        name: run.to_owned(),
        subjects: vec![format!("{run}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .map_err(anyhow::Error::msg)
    .context("create work-queue stream")?;
    Ok(())
}

/// Creates the durable pull consumer `name` that work-queue subscribers share:
/// explicit acks (one per message), from the start, at most `max_ack_pending` unacked
/// across its subscribers, redelivered after `ack_wait`.
pub async fn create_work_queue_consumer(
    url: &str,
    topic: &Topic,
    name: &str,
    max_ack_pending: i64,
    ack_wait: std::time::Duration,
) -> Result<()> {
    let js = context(url).await?;
    let stream = js
        .get_stream(&topic.run)
        .await
        .map_err(anyhow::Error::msg)?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: topic.subject(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_ack_pending,
            ..Default::default()
        })
        .await
        .map_err(anyhow::Error::msg)
        .context("create work-queue consumer")?;
    Ok(())
}

/// One subscriber of the shared pull consumer `name`, on its own connection, pulling
/// batches of up to `batch` messages.
pub async fn work_queue(
    url: &str,
    topic: &Topic,
    name: &str,
    batch: u32,
) -> Result<(WqDeliveries, WqAcker)> {
    let js = context(url).await?;
    let stream = js
        .get_stream(&topic.run)
        .await
        .map_err(anyhow::Error::msg)?;
    let consumer: consumer::PullConsumer = stream
        .get_consumer(name)
        .await
        .map_err(anyhow::Error::msg)
        .context("get work-queue consumer")?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(batch.clamp(1, 1000) as usize)
        .messages()
        .await
        .map_err(anyhow::Error::msg)?;
    let deliveries = messages
        .map(|m| {
            let m = m.map_err(anyhow::Error::msg)?;
            let info = m.info().map_err(anyhow::Error::msg)?;
            let (id, attempt) = (info.stream_sequence, info.delivered.max(1) as u32);
            Ok(WqDelivery {
                id,
                payload: m.message.payload.clone(),
                attempt,
                token: WqToken::Nats(Box::new(m)),
            })
        })
        .boxed();
    Ok((deliveries, WqAcker::Nats))
}
