//! Bounded label values: a client can name any number of topics and consumers, but a
//! scrape must stay small, so only the first [`MAX_LABELLED_TOPICS`] topics (and
//! [`MAX_LABELLED_CONSUMERS`] consumers) this process sees get their own series; the
//! rest share the label value [`OTHER`].

use std::collections::HashSet;
use std::sync::Mutex;

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
