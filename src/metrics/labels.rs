//! Bounded label values: a client can name any number of topics and consumers, but a
//! scrape must stay small, so only the first [`MAX_LABELLED_TOPICS`] topics (and
//! [`MAX_LABELLED_CONSUMERS`] consumers) this process sees get their own series; the
//! rest share the label value [`OTHER`]. And the label sets themselves.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;

/// Most distinct topic label values one server exports from its own counters.
pub const MAX_LABELLED_TOPICS: usize = 1000;
/// Most distinct (topic, consumer) pairs one server exports from its own counters.
pub const MAX_LABELLED_CONSUMERS: usize = 5000;
/// The label value of every topic or consumer past the bound.
pub const OTHER: &str = "_other";

/// A set of label values that stops growing at its bound.
#[derive(Debug)]
pub struct Bounded {
    seen: Mutex<HashSet<String>>,
    max: usize,
}

impl Bounded {
    /// An empty set of at most `max` values.
    pub fn new(max: usize) -> Self {
        Self {
            seen: Mutex::default(),
            max,
        }
    }

    /// `value` itself while there is room (or it already has a series), else [`OTHER`].
    pub fn label(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() >= self.max {
            return OTHER.to_owned();
        }
        seen.insert(value.to_owned());
        value.to_owned()
    }
}

/// A topic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

/// A topic and a consumer ("" for ephemeral subscriptions).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub topic: String,
    pub consumer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishLabels {
    pub topic: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedeliveryLabels {
    pub topic: String,
    pub consumer: String,
    pub reason: &'static str,
}

/// A gRPC method (`/package.Service/Method`) and the status code it ended with.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: &'static str,
    pub code: &'static str,
}

/// How a Publish request (or one of its events) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now.
    Ok,
    /// Already stored (a retry); every event of the request was, for the request.
    Duplicate,
    /// Refused for its content (INVALID_ARGUMENT and the like): nothing stored.
    Invalid,
    /// Refused for lack of permission: nothing stored.
    Denied,
    /// The server could not store it (database down, a bug).
    Error,
}

impl Outcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Duplicate => "duplicate",
            Self::Invalid => "invalid",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// Why a record goes out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeliveryReason {
    /// The subscriber nacked it.
    Nack,
    /// Its ack deadline passed.
    Deadline,
    /// The subscriber holding it left.
    SubscriberGone,
    /// An exclusive consumer went back to it (nack, seek back or a takeover).
    Rewind,
}

impl RedeliveryReason {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Nack => "nack",
            Self::Deadline => "deadline",
            Self::SubscriberGone => "subscriber_gone",
            Self::Rewind => "rewind",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_bound_share_one_label_and_known_ones_keep_theirs() {
        let set = Bounded::new(2);
        assert_eq!(set.label("a"), "a");
        assert_eq!(set.label("b"), "b");
        assert_eq!(set.label("c"), OTHER);
        assert_eq!(set.label("a"), "a");
    }
}
