//! Records shared by the tail window and every stream that sends them.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::log::Record;

/// A record as the tail window and every subscriber it goes to share it: one copy in
/// memory however many streams send it, and its wire encoding made once, by whichever
/// stream sends it first (fan-out to hundreds of subscribers would otherwise clone,
/// convert and encode the same record once per subscriber).
#[derive(Debug)]
pub struct SharedRecord {
    record: Record,
    wire: OnceLock<Bytes>,
}

impl SharedRecord {
    /// Shares `record`.
    pub fn new(record: Record) -> Arc<Self> {
        Arc::new(Self {
            record,
            wire: OnceLock::new(),
        })
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The record's encoding, made by `encode` on first use and shared after that.
    pub fn wire(&self, encode: impl FnOnce(&Record) -> Bytes) -> Bytes {
        self.wire.get_or_init(|| encode(&self.record)).clone()
    }

    /// The record itself, cloned only when someone else still shares it.
    pub fn into_record(self: Arc<Self>) -> Record {
        Arc::try_unwrap(self).map_or_else(|shared| shared.record.clone(), |s| s.record)
    }
}

impl PartialEq for SharedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.record == other.record
    }
}
