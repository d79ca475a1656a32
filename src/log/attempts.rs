//! Delivery attempts of an exclusive consumer's records that came back (a nack's
//! rewind, a subscriber that left holding them), as kept in `consumers.attempts`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Unsettled deliveries of an exclusive consumer's records that came back, by offset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attempts(BTreeMap<i64, u32>);

impl Attempts {
    /// The delivery attempt the record's next delivery is.
    pub fn next_attempt(&self, offset: i64) -> u32 {
        self.0.get(&offset).map_or(1, |n| n.saturating_add(1))
    }

    /// Whether the record's next delivery would go past `max_deliveries` (0: no limit).
    pub fn exhausted(&self, offset: i64, max_deliveries: u32) -> bool {
        max_deliveries > 0 && self.next_attempt(offset) > max_deliveries
    }

    /// Counts one more unsettled delivery of every record delivered up to
    /// `last_delivered` that is neither committed nor acked, and forgets what is at or
    /// below `committed` or above `limit`.
    pub(super) fn came_back(
        mut self,
        committed: i64,
        last_delivered: i64,
        acked: &[i64],
        limit: i64,
    ) -> Self {
        self.0.retain(|&o, _| o > committed && o <= limit);
        for offset in committed + 1..=last_delivered.min(limit) {
            if !acked.contains(&offset) {
                *self.0.entry(offset).or_default() += 1;
            }
        }
        self
    }
}

#[cfg(test)]
impl Attempts {
    /// Attempts from (offset, count) pairs.
    pub(super) fn from_pairs(pairs: &[(i64, u32)]) -> Self {
        Self(pairs.iter().copied().collect())
    }
}
