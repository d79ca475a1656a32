//! What the gRPC layer tells the metrics: how each Publish ended, each record a
//! Subscribe stream sends and how many streams are attached, each successful Ack.
//! Kept apart so each RPC function needs one line for it.

use tokio_stream::{Stream, StreamExt};

use super::validate;
use crate::error::ApiError;
use crate::log::LogError;
use crate::metrics::{Metrics, Outcome};
use crate::proto::pulsebus::v1 as pb;
use crate::subscribe::{Delivery, Item};

/// A Publish request on its way, remembered for its metrics before it is consumed.
pub struct Publish {
    topic: String,
    events: usize,
}

impl Publish {
    /// The topic label (only a valid name, so garbage cannot become a series) and
    /// the number of events of `req`.
    pub fn of(req: &pb::PublishRequest) -> Self {
        let valid = validate::topic("topic", &req.topic).is_ok();
        Self {
            topic: if valid {
                req.topic.clone()
            } else {
                String::new()
            },
            events: req.events.len(),
        }
    }

    /// Counts the request and its events by how it ended.
    pub fn ended(self, metrics: &Metrics, result: &Result<pb::PublishResponse, ApiError>) {
        let (outcome, duplicates) = match result {
            Ok(reply) => (
                Outcome::Ok,
                reply.results.iter().filter(|r| r.duplicate).count(),
            ),
            Err(err) => (outcome(err), 0),
        };
        metrics.published(&self.topic, outcome, self.events, duplicates);
    }
}

/// How a refused Publish is counted.
fn outcome(err: &ApiError) -> Outcome {
    match err {
        ApiError::Invalid { .. } | ApiError::TooLarge { .. } => Outcome::Invalid,
        ApiError::Log(LogError::IdInOtherTopic { .. }) => Outcome::Invalid,
        ApiError::Auth(_) => Outcome::Denied,
        ApiError::NotImplemented { .. } | ApiError::Log(_) | ApiError::Subscribe(_) => {
            Outcome::Error
        }
    }
}

/// `items` of a subscription to `topic` by `consumer`, counting each record sent and
/// the stream as attached until it is dropped.
pub fn subscription<S: Stream<Item = Item>>(
    metrics: &Metrics,
    topic: &str,
    consumer: Option<&str>,
    items: S,
) -> impl Stream<Item = Item> + use<S> {
    let attached = metrics.attached(topic);
    let (metrics, topic, consumer) = (
        metrics.clone(),
        topic.to_owned(),
        consumer.map(str::to_owned),
    );
    items.map(move |item| {
        let _ = &attached;
        if let Ok(Delivery::Record { .. }) = &item {
            metrics.delivered(&topic, consumer.as_deref());
        }
        item
    })
}
